"""The reconciliation app's model permissions for the staff roles (DESIGN §9), read by
Backstage (backstage/admin/base.py): the indexed chain, the cursors, the entries and the
snapshots are ledgers, view-only for compliance officers and super admins; bank admins see
none. Entries are made only through the four-eyes service (reconciliation.services.entries),
on the reconciliation page."""

from django.db import migrations

from core.permissions import role_permissions_grant, role_permissions_revoke

LEDGERS = [
    "reconciliation.view_chaintransfer",
    "reconciliation.view_tokenroleevent",
    "reconciliation.view_indexercursor",
    "reconciliation.view_reconciliationentry",
    "reconciliation.view_supplysnapshot",
]

# role -> model permissions ("app_label.codename") it is granted here.
ROLE_PERMISSIONS = {
    "platform_compliance": LEDGERS,
    "super_admin": LEDGERS,
}


def grant(apps, schema_editor):
    role_permissions_grant(apps, ROLE_PERMISSIONS)


def revoke(apps, schema_editor):
    role_permissions_revoke(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_role_groups"),
        ("reconciliation", "0004_snapshot_treasury"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
