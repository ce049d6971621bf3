"""Model permissions of the staff role groups, granted by each app's own data migration
(DESIGN §3, §9): one way to grant and revoke, for every app. The functions take the app
registry they are given — a migration's historical ``apps`` or, in tests that flushed the
database, the real one — and import no model."""

from __future__ import annotations

from django.contrib.auth.management import create_permissions
from django.db.models import Q


def _permissions(apps, names: list[str]):
    Permission = apps.get_model("auth", "Permission")
    query = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    return Permission.objects.filter(query)


def _permissions_create(apps) -> None:
    """Permissions are normally created after migrate (post_migrate); the grants need them
    now, on a fresh database."""
    for app_config in apps.get_app_configs():
        if getattr(app_config, "models_module", None) is None:
            app_config.models_module = True
            create_permissions(app_config, verbosity=0)
            app_config.models_module = None
        else:
            create_permissions(app_config, verbosity=0)


def role_permissions_grant(apps, grants: dict[str, list[str]]) -> None:
    """Grant each role group (created if missing) its ``app_label.codename`` permissions; a
    misspelt name raises instead of granting nothing, silently."""
    _permissions_create(apps)
    Group = apps.get_model("auth", "Group")
    for role, names in grants.items():
        group, _ = Group.objects.get_or_create(name=role)
        permissions = list(_permissions(apps, names))
        if len(permissions) != len(set(names)):
            raise RuntimeError(f"Some of {names} do not exist; nothing was granted to {role}.")
        group.permissions.add(*permissions)


def role_permissions_revoke(apps, grants: dict[str, list[str]]) -> None:
    Group = apps.get_model("auth", "Group")
    for role, names in grants.items():
        group = Group.objects.filter(name=role).first()
        if group is not None:
            group.permissions.remove(*_permissions(apps, names))
