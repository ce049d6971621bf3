"""The minting app's model permissions for the staff roles (DESIGN §9), read by Backstage
(backstage/admin/base.py): every minting record is a ledger, view-only for compliance officers
and super admins; bank admins see none. Minting changes (retry, Safe records, stop / start,
cap override) go through minting.services on their own screens."""

from django.db import migrations

from core.permissions import role_permissions_grant, role_permissions_revoke

# role -> model permissions ("app_label.codename") it is granted here.
ROLE_PERMISSIONS = {
    "platform_compliance": [
        "minting.view_tokendeployment",
        "minting.view_signeraccount",
        "minting.view_minttransaction",
        "minting.view_mintattempt",
        "minting.view_mintlogclaim",
        "minting.view_dailyissuance",
        "minting.view_safebatchexport",
        "minting.view_circuitstate",
        "minting.view_mintercheckrecord",
    ],
    "super_admin": [
        "minting.view_tokendeployment",
        "minting.view_signeraccount",
        "minting.view_minttransaction",
        "minting.view_mintattempt",
        "minting.view_mintlogclaim",
        "minting.view_dailyissuance",
        "minting.view_safebatchexport",
        "minting.view_circuitstate",
        "minting.view_mintercheckrecord",
    ],
}


def grant(apps, schema_editor):
    role_permissions_grant(apps, ROLE_PERMISSIONS)


def revoke(apps, schema_editor):
    role_permissions_revoke(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_role_groups"),
        ("minting", "0006_attempt_costs"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
