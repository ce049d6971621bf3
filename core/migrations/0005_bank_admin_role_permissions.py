"""Bank admins read the alerts and the audit of their own bank's deposits (DESIGN §9), now
that an alert names the deposit it is about (0004). What they see is narrowed by
deposits.selectors (alerts_visible_to, admin_actions_visible_to); task heartbeats and
four-eyes requests are about the whole system, so they stay hidden from bank admins."""

from django.db import migrations

from core.permissions import role_permissions_grant, role_permissions_revoke

# role -> model permissions ("app_label.codename") it is granted here.
ROLE_PERMISSIONS = {
    "bank_admin": [
        "core.view_alert",
        "core.view_adminaction",
    ],
}


def grant(apps, schema_editor):
    role_permissions_grant(apps, ROLE_PERMISSIONS)


def revoke(apps, schema_editor):
    role_permissions_revoke(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_role_groups"),
        ("core", "0004_alert_acknowledgement"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
