"""The deposits app's model permissions for the staff roles (DESIGN §9), read by Backstage
(backstage/admin/base.py). Bank admins see deposits only, and only their bank's (the
admin's queryset, deposits.selectors.deposits_visible_to); the ledgers are view-only for
everyone. No role may add, change or delete a deposit through the admin: statuses change only
through deposits.services."""

from django.db import migrations

from core.permissions import role_permissions_grant, role_permissions_revoke

# role -> model permissions ("app_label.codename") it is granted here.
ROLE_PERMISSIONS = {
    "bank_admin": [
        "deposits.view_depositrequest",
    ],
    "platform_compliance": [
        "deposits.view_bank",
        "deposits.view_bankstaff",
        "deposits.view_depositrequest",
        "deposits.view_deposittransition",
        "deposits.view_depositapproval",
        "deposits.view_paymentnotification",
        "deposits.view_orphanpayment",
        "deposits.view_limitevent",
        "deposits.view_webhookrefusalcount",
    ],
    "super_admin": [
        "deposits.view_bank",
        "deposits.view_bankstaff",
        "deposits.view_depositrequest",
        "deposits.view_deposittransition",
        "deposits.view_depositapproval",
        "deposits.view_paymentnotification",
        "deposits.view_orphanpayment",
        "deposits.view_limitevent",
        "deposits.view_webhookrefusalcount",
    ],
}


def grant(apps, schema_editor):
    role_permissions_grant(apps, ROLE_PERMISSIONS)


def revoke(apps, schema_editor):
    role_permissions_revoke(apps, ROLE_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_role_groups"),
        ("deposits", "0004_verbose_names"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
