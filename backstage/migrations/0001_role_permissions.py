"""Second-factor devices in Backstage: a super admin sees them and deletes a lost one (the
person enrols again at their next login). No one adds or edits another person's device."""

from django.db import migrations

from core.permissions import role_permissions_grant, role_permissions_revoke

# role -> model permissions ("app_label.codename") it is granted here.
ROLE_PERMISSIONS = {
    "super_admin": [
        "otp_totp.view_totpdevice",
        "otp_totp.delete_totpdevice",
        "otp_static.view_staticdevice",
        "otp_static.delete_staticdevice",
    ],
}


def grant(apps, schema_editor):
    role_permissions_grant(apps, ROLE_PERMISSIONS)


def revoke(apps, schema_editor):
    role_permissions_revoke(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_role_groups"),
        ("otp_static", "0003_add_timestamps"),
        ("otp_totp", "0003_add_timestamps"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
