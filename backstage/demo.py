"""Demo users for the local stack, created through the real services (sign-up, KYC review,
wallet registration and a real EIP-191 signature), so the demo exercises the same paths a
person does."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from eth_account import Account
from eth_account.messages import encode_defunct

from accounts.models import KycCase, User
from accounts.services import (
    kyc_review,
    kyc_submit,
    user_sign_up,
    wallet_challenge_create,
    wallet_register,
    wallet_verify_signature,
)
from core.roles import BANK_ADMIN, PLATFORM_COMPLIANCE, SUPER_ADMIN
from deposits.models import Bank, BankStaff


def demo_refusal(command: str) -> str | None:
    """Why a demo command may not run here, or None. The demo tools make users with known
    passwords and act as Safe owners with a public dev key: only the local or test profile on
    the local chain (31337) may run them, whatever else is configured."""
    local_chain_id = settings.LOCAL_CHAIN_ID
    if settings.PROFILE not in {"local", "test"} or settings.CHAIN_ID != local_chain_id:
        return (
            f"{command} runs only in the local or test profile on the local chain (CHAIN_ID "
            f"{local_chain_id}); this is the {settings.PROFILE} profile with CHAIN_ID "
            f"{settings.CHAIN_ID}."
        )
    database = settings.DATABASES["default"]
    local_database = database["ENGINE"].endswith("sqlite3") or database.get("HOST") in LOOPBACK
    if not local_database:
        # The local profile with a real DATABASE_URL exported would otherwise write users with
        # published passwords (a super admin among them) into that database.
        return (
            f"{command} writes users with published passwords: it runs only against the "
            f"local SQLite database or a database on this machine, not {database.get('HOST')}."
        )
    return None


LOOPBACK = {"127.0.0.1", "localhost", "::1", "", None}


# anvil dev account 4 (public mnemonic): the demo customer's wallet.
DEMO_WALLET_KEY = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"


@dataclass(frozen=True)
class DemoUser:
    email: str
    password: str
    role: str | None
    label: str


DEMO_USERS = (
    DemoUser("super@ntzs.local", "Serengeti-Lion-2026", SUPER_ADMIN, "super admin"),
    DemoUser("bank@ntzs.local", "Zanzibar-Dhow-2026", BANK_ADMIN, "bank admin"),
    DemoUser(
        "compliance@ntzs.local", "Kilimanjaro-Peak-2026", PLATFORM_COMPLIANCE, "compliance officer"
    ),
    DemoUser(
        "customer@ntzs.local",
        "Ngorongoro-Crater-2026",
        None,
        "customer (KYC approved, wallet verified)",
    ),
)


def _user(demo: DemoUser) -> User:
    user = User.objects.filter(email=demo.email).first()
    if user is None:
        user = user_sign_up(email=demo.email, password=demo.password, full_name=demo.label.title())
    if demo.role:
        user.groups.add(Group.objects.get(name=demo.role))
        if not user.is_staff:
            User.objects.filter(pk=user.pk).update(is_staff=True)
    return user


def _customer_onboarding(customer: User, reviewer: User) -> None:
    if not customer.kyc_cases.filter(status=KycCase.Status.APPROVED).exists():
        case = customer.kyc_cases.filter(status=KycCase.Status.PENDING).first() or kyc_submit(
            user=customer, national_id="19900101123450000001", full_name="Demo Customer"
        )
        kyc_review(case_id=case.pk, actor=reviewer, decision=KycCase.Status.APPROVED)
    account = Account.from_key(DEMO_WALLET_KEY)
    # The customer's own registration (verified or open); another account's never counts.
    wallet = wallet_register(user=customer, address=account.address)
    if wallet.verified_at is None:
        challenge = wallet_challenge_create(user=customer, wallet_id=wallet.pk)
        signed = Account.sign_message(encode_defunct(text=challenge.message), DEMO_WALLET_KEY)
        wallet_verify_signature(
            user=customer,
            wallet_id=wallet.pk,
            challenge_id=challenge.pk,
            signature="0x" + signed.signature.hex().removeprefix("0x"),
        )


# Demo values before issue 11, replaced in a database seeded with them: customers saw the
# settlement bank's name, flag and all, and NMB's account only inside free-text instructions.
_OLD_SETTLEMENT_NAME = "CRDB Bank (ZenoPay settlement)"
_OLD_NMB_INSTRUCTIONS = "Account nTZS Ltd, 2040 1234 567, Dar es Salaam"
# Our accounts at the demo banks (made-up numbers), shown to customers making a transfer.
_DEMO_BANKS = {
    "CRDB Bank": {
        "account_name": "nTZS Limited",
        "account_number": "0150 3869 2104 00",
        "transfer_instructions": "Branch: Azikiwe, Dar es Salaam",
    },
    "NMB Bank": {
        "account_name": "nTZS Limited",
        "account_number": "2040 1234 567",
        "transfer_instructions": "Branch: Bank House, Dar es Salaam",
    },
}


def _bank(name: str, **flags) -> Bank:
    """The demo bank ``name`` with its account details; a database seeded before they existed
    gets them (nothing an operator changed since is overwritten)."""
    bank, _ = Bank.objects.get_or_create(name=name, defaults={**_DEMO_BANKS[name], **flags})
    missing = {key: value for key, value in _DEMO_BANKS[name].items() if not getattr(bank, key)}
    if missing:
        Bank.objects.filter(pk=bank.pk).update(**missing)
    return bank


def _banks(bank_admin: User) -> None:
    """ZenoPay settles at one bank (an internal flag: its name is the bank's name, nothing
    more, since customers see it); the demo bank admin acts for another (bank transfers)."""
    Bank.objects.filter(name=_OLD_SETTLEMENT_NAME).update(name="CRDB Bank")
    Bank.objects.filter(name="NMB Bank", transfer_instructions=_OLD_NMB_INSTRUCTIONS).update(
        transfer_instructions=""
    )
    _bank("CRDB Bank", is_zenopay_settlement=True)
    nmb = _bank("NMB Bank")
    BankStaff.objects.get_or_create(user=bank_admin, defaults={"bank": nmb})


@transaction.atomic
def demo_users_ensure() -> list[DemoUser]:
    users = {demo.email: _user(demo) for demo in DEMO_USERS}
    _customer_onboarding(users["customer@ntzs.local"], users["compliance@ntzs.local"])
    _banks(users["bank@ntzs.local"])
    return list(DEMO_USERS)
