"""scripts/audit.py (`make audit`): what a pip-audit report means for CI, on a recorded
sample. Fails only on a fixed, not-ignored vulnerability or an ignore past its review date."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "audit.py"
SAMPLE = Path(__file__).with_name("pip_audit_sample.json")
TODAY = dt.date(2026, 12, 2)

_spec = importlib.util.spec_from_file_location("ntzs_audit_script", SCRIPT)
audit = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = audit  # dataclasses look their module up while the class is made
_spec.loader.exec_module(audit)

IGNORE_REQUESTS = """
[[ignore]]
id = "CVE-2026-0002"
package = "requests"
reason = "Only the netrc path is affected; we never read netrc."
review_by = 2027-01-31
"""


def _report(*dependencies) -> dict:
    sample = json.loads(SAMPLE.read_text())
    by_name = {d["name"]: d for d in sample["dependencies"]}
    return {"dependencies": [by_name[name] for name in dependencies], "fixes": []}


def _decide(report, ignore_text="", today=TODAY):
    return audit.audit_decide(report, audit.ignores_load(ignore_text), today=today)


def test_a_vulnerability_with_a_fixed_version_fails():
    decision = _decide(_report("django"))
    assert not decision.ok
    assert decision.failures == [
        "django 5.2.19: GHSA-aaaa-bbbb-cccc is fixed in 5.2.20; upgrade (uv lock "
        "--upgrade-package) or add it to .pip-audit-ignore.toml with a reason and a review date."
    ]


def test_a_vulnerability_without_a_fix_passes_with_a_note():
    decision = _decide(_report("celery", "web3"))
    assert decision.ok
    assert decision.notices == [
        "celery 5.6.0: PYSEC-2026-11 has no fixed version yet (not failed)."
    ]
    assert decision.audited == 2


def test_an_ignored_vulnerability_passes_until_its_review_date():
    decision = _decide(_report("requests"), IGNORE_REQUESTS, today=dt.date(2027, 1, 31))
    assert decision.ok
    assert "ignored until 2027-01-31" in decision.notices[0]


def test_an_ignore_past_its_review_date_fails():
    decision = _decide(_report("requests"), IGNORE_REQUESTS, today=dt.date(2027, 2, 1))
    assert not decision.ok
    assert "is ignored only until 2027-01-31" in decision.failures[0]


def test_an_ignore_for_another_package_does_not_hide_a_finding():
    text = IGNORE_REQUESTS.replace("CVE-2026-0002", "CVE-2026-0001")  # django's alias
    decision = _decide(_report("django"), text)
    assert not decision.ok


def test_skipped_packages_are_counted_not_failed():
    decision = _decide(_report("aiohttp", "amqp", "web3"))
    assert decision.ok
    assert (decision.audited, decision.skipped) == (1, 2)


@pytest.mark.parametrize(
    "entry, complaint",
    [
        ('[[ignore]]\nid = "X-1"\nreview_by = 2027-01-01\n', "needs a reason"),
        ('[[ignore]]\nid = "X-1"\nreason = "r"\n', "needs review_by"),
        ('[[ignore]]\nid = "X-1"\nreason = "r"\nreview_by = "soon"\n', "needs review_by"),
        ('[[ignore]]\nreason = "r"\nreview_by = 2027-01-01\n', "needs an id"),
    ],
)
def test_an_ignore_entry_without_id_reason_or_review_date_is_refused(entry, complaint):
    with pytest.raises(audit.AuditError, match=complaint):
        audit.ignores_load(entry)


def test_the_committed_ignore_list_is_valid():
    text = (REPO / ".pip-audit-ignore.toml").read_text()
    ignores = audit.ignores_load(text)  # an invalid entry raises AuditError
    tables = [line for line in text.splitlines() if line.strip() == "[[ignore]]"]
    assert len(ignores) == len(tables)  # every table was read, none silently skipped


def _run(tmp_path, *args):
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--report", str(SAMPLE), "--today", "2026-12-02", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_script_exits_non_zero_on_the_sample_and_names_each_failure(tmp_path):
    ignore = tmp_path / "ignore.toml"
    ignore.write_text(IGNORE_REQUESTS)
    result = _run(tmp_path, "--ignore-file", str(ignore))
    assert result.returncode == 1
    assert "audit: FAIL: django 5.2.19: GHSA-aaaa-bbbb-cccc is fixed in 5.2.20" in result.stdout
    assert "requests" not in result.stdout.split("FAIL")[-1]
    assert (
        "audit: 4 package(s) audited, 2 could not be looked up (skipped), 1 failing finding(s)."
    ) in result.stdout


def test_a_malformed_report_is_an_error_not_a_pass(tmp_path):
    report = tmp_path / "report.json"
    report.write_text('{"not": "a report"}')
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--report", str(report)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no 'dependencies' list" in result.stderr
