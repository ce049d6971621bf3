"""Creates the staff role groups. Each app grants its own permissions to them in its own
data migration (DESIGN §3)."""

from django.db import migrations

ROLE_GROUPS = ("bank_admin", "platform_compliance", "super_admin")
ACCOUNTS_PERMISSIONS = {
    "platform_compliance": ["view_user", "view_kyccase", "change_kyccase", "view_wallet"],
    "super_admin": ["view_user", "view_kyccase", "change_kyccase", "view_wallet"],
}


def create_groups(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name in ROLE_GROUPS:
        group, _ = Group.objects.get_or_create(name=name)
        codenames = ACCOUNTS_PERMISSIONS.get(name, [])
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="accounts", codename__in=codenames)
        )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
