"""The staff role groups and their permissions, as the data migrations leave them. A
transactional test (the live server's) flushes the database, data migrations' rows
included; tests that come after it and need the roles put them back with this."""

from __future__ import annotations

import importlib
from pathlib import Path

from django.apps import apps
from django.conf import settings

from core.permissions import role_permissions_grant


def staff_roles_restore() -> None:
    groups = importlib.import_module("accounts.migrations.0002_role_groups")
    role_permissions_grant(
        apps,
        {
            role: [f"accounts.{code}" for code in groups.ACCOUNTS_PERMISSIONS.get(role, [])]
            for role in groups.ROLE_GROUPS
        },
    )
    for path in sorted(Path(settings.BASE_DIR).glob("*/migrations/*_role_permissions.py")):
        module = importlib.import_module(f"{path.parent.parent.name}.migrations.{path.stem}")
        role_permissions_grant(apps, module.ROLE_PERMISSIONS)
