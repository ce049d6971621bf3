"""Super admins add and edit user accounts in Backstage (never roles or the staff and
superuser flags: those fields are read-only there) and see the role groups. The accounts
view and KYC permissions were granted with the groups (0002_role_groups)."""

from django.db import migrations

from core.permissions import role_permissions_grant, role_permissions_revoke

# role -> model permissions ("app_label.codename") it is granted here.
ROLE_PERMISSIONS = {
    "super_admin": [
        "accounts.add_user",
        "accounts.change_user",
        "auth.view_group",
    ],
}


def grant(apps, schema_editor):
    role_permissions_grant(apps, ROLE_PERMISSIONS)


def revoke(apps, schema_editor):
    role_permissions_revoke(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_verbose_names"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
