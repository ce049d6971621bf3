"""The core app's model permissions for the staff roles (DESIGN §9), read by Backstage
(backstage/admin/base.py): the audit, the four-eyes requests, alerts and heartbeats, view-only.
A four-eyes request is decided only through core.services, never by editing its row. Bank
admins get alerts once the alerts about their own bank's deposits can be told apart."""

from django.db import migrations

from core.permissions import role_permissions_grant, role_permissions_revoke

# role -> model permissions ("app_label.codename") it is granted here.
ROLE_PERMISSIONS = {
    "platform_compliance": [
        "core.view_adminaction",
        "core.view_dualcontrolrequest",
        "core.view_alert",
        "core.view_taskheartbeat",
    ],
    "super_admin": [
        "core.view_adminaction",
        "core.view_dualcontrolrequest",
        "core.view_alert",
        "core.view_taskheartbeat",
    ],
}


def grant(apps, schema_editor):
    role_permissions_grant(apps, ROLE_PERMISSIONS)


def revoke(apps, schema_editor):
    role_permissions_revoke(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_role_groups"),
        ("core", "0002_verbose_names"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
