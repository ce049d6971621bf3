"""Incident records and reports (DESIGN §9): compliance officers and super admins read, open
and update incidents; bank admins see none. No one deletes one (the record is the history)."""

from django.db import migrations

from core.permissions import role_permissions_grant, role_permissions_revoke

INCIDENTS = [
    "backstage.view_incident",
    "backstage.add_incident",
    "backstage.change_incident",
]

# role -> model permissions ("app_label.codename") it is granted here.
ROLE_PERMISSIONS = {
    "platform_compliance": INCIDENTS,
    "super_admin": INCIDENTS,
}


def grant(apps, schema_editor):
    role_permissions_grant(apps, ROLE_PERMISSIONS)


def revoke(apps, schema_editor):
    role_permissions_revoke(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_role_groups"),
        ("backstage", "0002_incident"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
