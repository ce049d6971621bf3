"""Banks and bank staff, managed by super admins (DESIGN §4, §9).

A bank customers can choose (active) must show them where to pay: an account name and number.
The ZenoPay settlement flag marks at most one bank (a database constraint too), always an
active one, and is internal: customers see a bank's name, account and instructions, so those
never mention ZenoPay. A bank is never deleted (its deposits and staff point at it); it is
deactivated. ``BankStaff`` names the one bank a ``bank_admin`` acts for. Every change writes
an ``AdminAction``.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from core.exceptions import ConflictError, NotFound, ServiceError
from core.roles import BANK_ADMIN, SUPER_ADMIN, require_role, user_has_role
from core.services import admin_action_record
from core.text import text_free_storable
from deposits.models import Bank, BankStaff, DepositRequest

BANK_MANAGER_ROLES = (SUPER_ADMIN,)
# Customer-visible text that would tell customers where ZenoPay settles (issue 11 removed it).
_INTERNAL_WORD = "zenopay"
_CUSTOMER_VISIBLE = ("name", "account_name", "transfer_instructions")


class BankRefused(ServiceError):
    """Bank details that cannot be saved; ``field`` names the form field to mark."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class BankDetails:
    name: str
    status: str = Bank.Status.ACTIVE
    account_name: str = ""
    account_number: str = ""
    transfer_instructions: str = ""
    is_zenopay_settlement: bool = False


def _field_max(name: str) -> int:
    return Bank._meta.get_field(name).max_length or 4000


def bank_details_check(*, details: BankDetails, bank_id: uuid.UUID | None = None) -> BankDetails:
    """The details cleaned, or a refusal naming the field (also called by the Backstage form,
    so a person sees the sentence next to the field before anything is saved)."""
    cleaned = BankDetails(
        name=text_free_storable(details.name, max_length=_field_max("name")),
        status=details.status,
        account_name=text_free_storable(
            details.account_name, max_length=_field_max("account_name")
        ),
        account_number=text_free_storable(
            details.account_number, max_length=_field_max("account_number")
        ),
        transfer_instructions=text_free_storable(details.transfer_instructions, max_length=4000),
        is_zenopay_settlement=bool(details.is_zenopay_settlement),
    )
    if not cleaned.name:
        raise BankRefused(_("Enter the bank's name."), field="name")
    if cleaned.status not in Bank.Status.values:
        raise BankRefused(_("A bank is either active or inactive."), field="status")
    for field in _CUSTOMER_VISIBLE:
        if _INTERNAL_WORD in getattr(cleaned, field).lower():
            raise BankRefused(
                _(
                    "Customers read the bank's name, account name and instructions; leave "
                    "ZenoPay out of them (the settlement flag records it)."
                ),
                field=field,
            )
    if cleaned.status == Bank.Status.ACTIVE and not (
        cleaned.account_name and cleaned.account_number
    ):
        raise BankRefused(
            _(
                "An active bank needs the account name and number customers pay into; enter "
                "both, or save the bank as inactive."
            ),
            field="account_number" if cleaned.account_name else "account_name",
        )
    # Mobile-money deposits need an active settlement bank (deposits.services.intake): the
    # flag on an inactive bank would turn mobile money off with no word to anyone.
    if cleaned.is_zenopay_settlement and cleaned.status != Bank.Status.ACTIVE:
        raise BankRefused(
            _(
                "The ZenoPay settlement bank must stay active: mobile-money deposits are "
                "recorded against it. Keep the bank active, or move the flag to another "
                "active bank first."
            ),
            field="status",
        )
    others = Bank.objects.exclude(pk=bank_id) if bank_id else Bank.objects.all()
    if others.filter(name=cleaned.name).exists():
        raise BankRefused(
            _("There is already a bank named %(name)s; choose another name.")
            % {"name": cleaned.name},
            field="name",
        )
    if cleaned.is_zenopay_settlement:
        current = others.filter(is_zenopay_settlement=True).first()
        if current is not None:
            raise BankRefused(
                _(
                    "%(bank)s is already the ZenoPay settlement bank; clear its flag first "
                    "(only one bank may have it)."
                )
                % {"bank": current.name},
                field="is_zenopay_settlement",
            )
    return cleaned


def _save(bank: Bank, details: BankDetails) -> None:
    for field, value in asdict(details).items():
        setattr(bank, field, value)
    try:
        with transaction.atomic():
            bank.save()
    except IntegrityError:  # a concurrent save took the name or the settlement flag
        raise ConflictError(
            _(
                "Another bank took this name or the ZenoPay settlement flag meanwhile; reload "
                "the banks and try again."
            )
        ) from None


@transaction.atomic
def bank_create(*, actor, details: BankDetails) -> Bank:
    require_role(actor, *BANK_MANAGER_ROLES, doing=_("manage banks"))
    details = bank_details_check(details=details)
    bank = Bank()
    _save(bank, details)
    admin_action_record(
        actor=actor,
        action="bank.create",
        target_type="bank",
        target_id=bank.pk,
        params=asdict(details),
        outcome="created",
    )
    return bank


# What a customer reads to make a transfer: changed or removed under an open transfer, their
# money could go elsewhere than the account they were shown. Filling in a detail the bank did
# not have shows them more and changes nothing they acted on.
ACCOUNT_FIELDS = ("account_name", "account_number", "transfer_instructions")


def _refuse_account_change_under_open_transfers(bank: Bank, changed: dict) -> None:
    fields = [field for field in ACCOUNT_FIELDS if changed.get(field, {}).get("from")]
    if not fields:
        return
    waiting = DepositRequest.objects.filter(
        bank=bank,
        payment_provider=DepositRequest.Provider.BANK_TRANSFER,
        status=DepositRequest.Status.SUBMITTED,
    ).count()
    if waiting:
        raise ConflictError(
            _(
                "%(bank)s has %(n)d bank transfer(s) waiting with the account details customers "
                "were shown; changing %(fields)s now could send their money elsewhere. Wait until "
                "they are approved, rejected or cancelled, or create a new bank for the new "
                "account."
            )
            % {"bank": bank.name, "n": waiting, "fields": ", ".join(fields)}
        )


@transaction.atomic
def bank_update(*, actor, bank_id: uuid.UUID | str, details: BankDetails) -> Bank:
    """Change a bank's details; deactivating it (status inactive) is how a bank is retired,
    since its deposits keep pointing at it."""
    require_role(actor, *BANK_MANAGER_ROLES, doing=_("manage banks"))
    bank = Bank.objects.select_for_update().filter(pk=bank_id).first()
    if bank is None:
        raise NotFound(_("There is no bank %(id)s.") % {"id": bank_id})
    details = bank_details_check(details=details, bank_id=bank.pk)
    before = {field: getattr(bank, field) for field in asdict(details)}
    changed = {
        field: {"from": before[field], "to": value}
        for field, value in asdict(details).items()
        if before[field] != value
    }
    _refuse_account_change_under_open_transfers(bank, changed)
    if changed:
        _save(bank, details)
        admin_action_record(
            actor=actor,
            action="bank.update",
            target_type="bank",
            target_id=bank.pk,
            params=changed,
            outcome="updated",
        )
    return bank


def _user(user_id):
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound(_("There is no user %(id)s.") % {"id": user_id})
    return user


@transaction.atomic
def bank_staff_assign(*, actor, user_id, bank_id: uuid.UUID | str) -> BankStaff:
    """Name the bank a bank admin acts for (moving them if they acted for another)."""
    require_role(actor, *BANK_MANAGER_ROLES, doing=_("manage bank staff"))
    user = _user(user_id)
    if not user.is_active or not user_has_role(user, BANK_ADMIN):
        raise ConflictError(
            _(
                "%(user)s does not hold the bank_admin role; grant it first (four eyes), "
                "then assign the bank."
            )
            % {"user": user}
        )
    bank = Bank.objects.filter(pk=bank_id).first()
    if bank is None:
        raise NotFound(_("There is no bank %(id)s.") % {"id": bank_id})
    staff = BankStaff.objects.select_for_update().filter(user=user).first()
    previous = staff.bank_id if staff else None
    if staff is not None and previous == bank.pk:
        return staff
    if staff is None:
        try:
            with transaction.atomic():
                staff = BankStaff.objects.create(user=user, bank=bank)
        except IntegrityError:
            raise ConflictError(
                _("%(user)s was assigned a bank meanwhile; reload and try again.") % {"user": user}
            ) from None
    else:
        BankStaff.objects.filter(pk=staff.pk).update(bank=bank)
        staff.refresh_from_db()
    admin_action_record(
        actor=actor,
        action="bank_staff.assign",
        target_type="user",
        target_id=user.pk,
        params={
            "bank_id": str(bank.pk),
            "bank": bank.name,
            "previous_bank_id": str(previous or ""),
        },
        outcome="assigned",
    )
    return staff


@transaction.atomic
def bank_staff_remove(*, actor, user_id, reason: str = "") -> None:
    """The person no longer acts for any bank (their bank_admin role is removed apart)."""
    require_role(actor, *BANK_MANAGER_ROLES, doing=_("manage bank staff"))
    staff = BankStaff.objects.select_for_update().select_related("bank").filter(user_id=user_id)
    staff = staff.first()
    if staff is None:
        raise NotFound(_("User %(id)s acts for no bank.") % {"id": user_id})
    bank = staff.bank
    staff.delete()
    admin_action_record(
        actor=actor,
        action="bank_staff.remove",
        target_type="user",
        target_id=user_id,
        params={"bank_id": str(bank.pk), "bank": bank.name},
        outcome="removed",
        reason=text_free_storable(reason, max_length=1000),
    )
