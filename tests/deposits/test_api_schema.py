"""The OpenAPI schema: it validates with no warning (as CI runs it), documents the deposit
operations, and is served to staff only."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from django.conf import settings
from rest_framework.test import APIClient

from tests.factories import compliance_officer, customer

SCHEMA_COMMAND = ["manage.py", "spectacular", "--validate", "--fail-on-warn"]


def test_the_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    result = subprocess.run(
        [sys.executable, *SCHEMA_COMMAND, "--file", str(out)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    paths = yaml.safe_load(out.read_text())["paths"]
    assert set(paths["/api/v1/deposits"]) == {"get", "post"}
    assert set(paths["/api/v1/deposits/{deposit_id}"]) == {"get"}
    assert set(paths["/api/v1/deposits/{deposit_id}/check"]) == {"post"}
    create = paths["/api/v1/deposits"]["post"]
    assert {"201", "200", "400", "401", "403", "422", "429"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in create["parameters"])


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/"])
def test_schema_and_docs_are_for_staff_only(url):
    anonymous = APIClient().get(url)
    assert anonymous.status_code in (401, 403)
    person = APIClient()
    person.force_login(customer())
    assert person.get(url).status_code == 403
    staff = APIClient()
    staff.force_login(compliance_officer())
    assert staff.get(url).status_code == 200
