"""The permission matrix of DESIGN §9, through the real Backstage URLs (not the services
alone): every role × every action that has a screen, table-driven.

Each row arranges what its action needs, then each persona — a bank admin, a compliance
officer, a super admin carrying Django's superuser flag and one without it, a Django superuser
without a role and a member of staff without a role — logs in with the second factor passed
and does it through the screen. Allowed: the effect happens (a status, a row). Refused: the
effect does not happen, and the answer is a 403 / 404, or the page shows the service's own
refusal sentence (the button may be hidden, the forged POST still reaches the service).

A bank admin acts on a deposit of their own bank in every row, so that what refuses them is
the role rule and not the bank scoping; the bank scoping has its own tests at the end (another
bank's deposits in lists, detail, search, filters, bulk and action pages, alerts, the audit
log and the four-eyes pages). Mobile-money deposits belong to the ZenoPay settlement bank, so
those rows use that bank's admin. Last, every registered screen is refused to people without
a role.

The Safe lane's rows (batch file, record a Safe tx hash, void an export, a consumed Safe
nonce) are in ``SAFE_LANE_ROWS`` below, kept empty here: the Safe-lane screens and their
role tests are tests/backstage/test_safe_lane.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from accounts.models import KycCase
from backstage import minting_page
from backstage.admin.site import site
from backstage.deposit_actions import ACTIONS as DEPOSIT_ACTIONS
from backstage.deposit_actions import BULK_ACTIONS
from core.clock import today_utc
from core.models import AdminAction, Alert, DualControlRequest, TaskHeartbeat
from core.roles import PLATFORM_COMPLIANCE
from core.services import admin_action_record
from deposits.models import (
    Bank,
    BankStaff,
    DepositApproval,
    DepositRequest,
    OrphanPayment,
    PaymentNotification,
)
from deposits.services.bank import deposit_bank_approve
from deposits.services.intake import DepositInput, deposit_create
from deposits.services.operator import deposit_refund_record_request
from deposits.services.transitions import deposit_payment_confirm
from minting.chain import account_address
from minting.models import DailyIssuance, MintAttempt, MintTransaction, SignerAccount
from minting.services.lanes import mint_route_to_safe
from tests.backstage.conftest import transfer
from tests.factories import (
    KycCaseFactory,
    UserFactory,
    WalletFactory,
    bank_admin,
    compliance_officer,
    customer,
    super_admin,
)
from tests.support.anvil import DEV_PRIVATE_KEYS

pytestmark = pytest.mark.django_db

BANK_ADMIN = "bank_admin"
COMPLIANCE = "compliance"
SUPER_ADMIN = "super_admin"
SUPERUSER = "superuser_without_role"
STAFF = "staff_without_role"
# A super admin without Django's superuser flag: the role alone must do what the flag adds.
PLAIN_SUPER_ADMIN = "super_admin_without_superuser_flag"
PERSONAS = (BANK_ADMIN, COMPLIANCE, SUPER_ADMIN, PLAIN_SUPER_ADMIN, SUPERUSER, STAFF)
OPERATORS = frozenset({COMPLIANCE, SUPER_ADMIN})
SUPER_ONLY = frozenset({SUPER_ADMIN})
EVERY_ROLE = frozenset({BANK_ADMIN, COMPLIANCE, SUPER_ADMIN})
PHONE = "+255712345678"
CHANGELIST = "/backstage/deposits/depositrequest/"
MINTING = "/backstage/minting/"
FOUR_EYES = "/backstage/four-eyes/"
ORPHANS = "/backstage/orphans/"


# --- The world every row starts from ------------------------------------------------------------


@dataclass
class World:
    people: dict[str, Any]
    settlement_admin: Any
    nmb: Bank
    exim: Bank
    settlement: Bank
    amina: Any
    juma: Any
    rehema: Any  # a second compliance officer: the maker whose request others decide
    fatma: Any  # a second super admin: arranges what only a super admin may do

    def persona(self, name: str, row: Row):
        if name == BANK_ADMIN and row.bank == "settlement":
            return self.settlement_admin
        return self.people[name]


@pytest.fixture
def world(
    nmb_admin, neema, salim, root, nmb, exim, settlement_bank, amina, juma, settings
) -> World:
    settings.MINTER_PRIVATE_KEY = DEV_PRIVATE_KEYS[1]  # the minting page's signer
    settlement_admin = bank_admin(email="baraka@crdb.ntzs.test")
    BankStaff.objects.create(user=settlement_admin, bank=settlement_bank)
    return World(
        people={
            BANK_ADMIN: nmb_admin,
            COMPLIANCE: neema,
            SUPER_ADMIN: salim,
            SUPERUSER: root,
            STAFF: UserFactory(email="staff@ntzs.test", is_staff=True),
            PLAIN_SUPER_ADMIN: super_admin(email="hamisi@ntzs.test", full_name="Hamisi Juma"),
        },
        settlement_admin=settlement_admin,
        nmb=nmb,
        exim=exim,
        settlement=settlement_bank,
        amina=amina,
        juma=juma,
        rehema=compliance_officer(email="rehema@ntzs.test", full_name="Rehema Ally"),
        fatma=super_admin(email="fatma@ntzs.test", full_name="Fatma Issa"),
    )


# --- Arranging: deposits and records in the states the actions need ---------------------------


def _status(deposit) -> str:
    return DepositRequest.objects.values_list("status", flat=True).get(pk=deposit.pk)


def _mobile_money(w: World, amount: int = 5_000) -> DepositRequest:
    deposit, _created = deposit_create(
        user=w.amina,
        data=DepositInput(
            amount_tzs=amount,
            payment_provider="zenopay",
            wallet_id=w.amina.test_wallet.pk,
            buyer_phone=PHONE,
        ),
    )
    return deposit


def _paid(w: World) -> DepositRequest:
    deposit = _mobile_money(w)
    deposit_payment_confirm(
        deposit_id=deposit.pk, amount_tzs=5_000, psp_reference="TX-PAID-1", source="poll"
    )
    return deposit


def _in_safe_lane(w: World) -> DepositRequest:
    deposit = _paid(w)
    mint_route_to_safe(deposit_id=deposit.pk, actor=w.fatma, reason="key rotation")
    return deposit


def _held(w: World) -> DepositRequest:
    deposit = transfer(w.amina, w.nmb, amount=5_000)
    deposit_bank_approve(
        deposit_id=deposit.pk,
        actor=w.people[BANK_ADMIN],
        bank_reference="NMB-SHORT-1",
        amount_received_tzs=4_000,
    )
    return deposit


def _failed_mint(w: World, chain) -> DepositRequest:
    """A paid deposit whose mint failed and whose retry the chain can prove safe (no attempt
    was ever signed), set up directly as tests/backstage/test_deposit_actions.py does."""
    deposit = _paid(w)
    MintTransaction.objects.create(
        deposit=deposit,
        chain_id=31337,
        contract_address=chain.address,
        to_address=deposit.wallet.address,
        amount_units=5_000 * 10**18,
        status=MintTransaction.Status.FAILED,
        error="execution reverted: recipient blacklisted",
    )
    DepositRequest.objects.filter(pk=deposit.pk).update(status="mint_failed")
    return deposit


def _refund_request(w: World) -> DualControlRequest:
    """Rehema's four-eyes request to record a refund of Amina's unpaid NMB transfer."""
    deposit = transfer(w.amina, w.nmb)
    return deposit_refund_record_request(
        deposit_id=deposit.pk, evidence="Returned by NMB, ref RF-77.", maker=w.rehema
    )


def _orphan(w: World) -> dict:
    return {
        "orphan": OrphanPayment.objects.create(
            psp_reference="TXORPHAN1", amount_tzs=5_000, phone="255712345678", reason="late"
        ),
        "deposit": _mobile_money(w),
    }


def _signer(*, sending: bool) -> SignerAccount:
    return SignerAccount.objects.create(
        address=account_address(DEV_PRIVATE_KEYS[1]),
        chain_id=31337,
        next_nonce=4,
        last_mined_nonce=4,
        sending_enabled=sending,
    )


def _pending_case(w: World) -> KycCase:
    return KycCaseFactory(user=customer(email="zawadi@ntzs.test", full_name="Zawadi Mrema"))


def _new_customer_wallet(w: World):
    return WalletFactory(user=customer(email="zawadi@ntzs.test"))


# --- Acting through the screens -----------------------------------------------------------------


def _act(deposit, name: str) -> str:
    return reverse("admin:deposits_depositrequest_action", args=[deposit.pk, name])


def _detail(deposit) -> str:
    return reverse("admin:deposits_depositrequest_change", args=[deposit.pk])


def _post(client, url: str, data: dict | None = None):
    return client.post(url, data or {}, follow=True)


def _bulk(name: str, **data):
    def act(client, deposit):
        return _post(
            client,
            CHANGELIST,
            {"action": name, "_selected_action": [deposit.pk], "confirm": "yes", **data},
        )

    return act


def _requests(action: str) -> int:
    return DualControlRequest.objects.filter(action=action, decision="pending").count()


# --- The rows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    allowed: frozenset[str]
    arrange: Callable[[World], Any]
    act: Callable[[Any, Any], Any]  # (client, what arrange returned) -> the final response
    happened: Callable[[Any, Any], bool]  # (what arrange returned, response) -> the effect
    # persona -> the service's sentence shown when it refuses (otherwise a 403 / 404).
    refusals: dict[str, str] = field(default_factory=dict)
    bank: str = "nmb"  # the bank whose admin plays the bank_admin persona
    covers: tuple[str, ...] = ()  # the screens' action names this row exercises


def _appears(deposit_of: Callable[[Any], Any] = lambda d: d):
    def happened(thing, response) -> bool:
        return response.status_code == 200 and str(deposit_of(thing).pk) in (
            response.content.decode()
        )

    return happened


def _page_ok(marker: str):
    return lambda thing, response: (
        response.status_code == 200 and marker in response.content.decode()
    )


NOT_BANK_ADMIN = "is not a bank admin"
NOT_COMPLIANCE = "may not review bank transfers as compliance"
NOT_OPERATOR = "needs one of the roles platform_compliance, super_admin"

ROWS: list[Row] = [
    # Deposit views (bank admins: their own bank's only).
    Row(
        "deposit list",
        EVERY_ROLE,
        lambda w: transfer(w.amina, w.nmb),
        lambda c, d: c.get(CHANGELIST),
        _appears(),
    ),
    Row(
        "deposit detail",
        EVERY_ROLE,
        lambda w: transfer(w.amina, w.nmb),
        lambda c, d: c.get(_detail(d)),
        _page_ok("amina@ntzs.test"),
    ),
    Row(
        "deposit search",
        EVERY_ROLE,
        lambda w: transfer(w.amina, w.nmb),
        lambda c, d: c.get(CHANGELIST, {"q": d.transfer_reference}),
        _appears(),
    ),
    # Bank approval and rejection: the deposit's own bank (the bank admin's) and another bank.
    Row(
        "bank approval, own bank",
        frozenset({BANK_ADMIN, SUPER_ADMIN}),
        lambda w: transfer(w.amina, w.nmb),
        lambda c, d: _post(
            c, _act(d, "bank-approve"), {"amount_received_tzs": "5000", "bank_reference": "R-1"}
        ),
        lambda d, r: DepositApproval.objects.filter(deposit=d, type="bank").exists(),
        refusals={COMPLIANCE: NOT_BANK_ADMIN},
        covers=("bank-approve",),
    ),
    Row(
        "bank approval, another bank",
        SUPER_ONLY,
        lambda w: transfer(w.juma, w.exim),
        lambda c, d: _post(
            c, _act(d, "bank-approve"), {"amount_received_tzs": "5000", "bank_reference": "R-2"}
        ),
        lambda d, r: DepositApproval.objects.filter(deposit=d, type="bank").exists(),
        refusals={COMPLIANCE: NOT_BANK_ADMIN},  # the bank admin: 404, not their bank's
    ),
    Row(
        "bank rejection, own bank",
        frozenset({BANK_ADMIN, SUPER_ADMIN}),
        lambda w: transfer(w.amina, w.nmb),
        lambda c, d: _post(c, _act(d, "bank-reject"), {"reason": "No such transfer."}),
        lambda d, r: _status(d) == "rejected",
        refusals={COMPLIANCE: NOT_BANK_ADMIN},
        covers=("bank-reject",),
    ),
    Row(
        "bank rejection, another bank",
        SUPER_ONLY,
        lambda w: transfer(w.juma, w.exim),
        lambda c, d: _post(c, _act(d, "bank-reject"), {"reason": "No such transfer."}),
        lambda d, r: _status(d) == "rejected",
        refusals={COMPLIANCE: NOT_BANK_ADMIN},
    ),
    # Platform approval and rejection.
    Row(
        "platform approval",
        OPERATORS,
        lambda w: transfer(w.amina, w.nmb),
        lambda c, d: _post(c, _act(d, "platform-approve")),
        lambda d, r: DepositApproval.objects.filter(deposit=d, type="platform").exists(),
        refusals={BANK_ADMIN: NOT_COMPLIANCE},
        covers=("platform-approve",),
    ),
    Row(
        "platform rejection",
        OPERATORS,
        lambda w: transfer(w.amina, w.nmb),
        lambda c, d: _post(c, _act(d, "platform-reject"), {"reason": "Source unclear."}),
        lambda d, r: _status(d) == "rejected",
        refusals={BANK_ADMIN: NOT_COMPLIANCE},
        covers=("platform-reject",),
    ),
    # KYC review.
    Row(
        "KYC approval",
        OPERATORS,
        _pending_case,
        lambda c, case: _post(
            c,
            reverse("admin:accounts_kyccase_changelist"),
            {"action": "approve_cases", "_selected_action": [case.pk]},
        ),
        lambda case, r: KycCase.objects.get(pk=case.pk).status == "approved",
    ),
    Row(
        "KYC rejection with a reason",
        OPERATORS,
        _pending_case,
        lambda c, case: _post(
            c,
            reverse("admin:accounts_kyccase_reject", args=[case.pk]),
            {"reason": "The ID card photo is unreadable."},
        ),
        lambda case, r: KycCase.objects.get(pk=case.pk).status == "rejected",
    ),
    # Four-eyes makers on deposits.
    Row(
        "manual ZenoPay confirmation (maker)",
        OPERATORS,
        _mobile_money,
        lambda c, d: _post(
            c,
            _act(d, "confirm-manual"),
            {
                "transid": "ZP-901",
                "amount_tzs": "5000",
                "phone": "0712 345 678",
                "evidence": "Dashboard entry 10:02, COMPLETED.",
            },
        ),
        lambda d, r: _requests("deposit_confirm_manual") == 1 and _status(d) == "submitted",
        refusals={BANK_ADMIN: NOT_OPERATOR},
        bank="settlement",
        covers=("confirm-manual",),
    ),
    Row(
        "hold release (maker)",
        OPERATORS,
        _held,
        lambda c, d: _post(
            c,
            _act(d, "hold-release"),
            {"resolution": "cancel_and_orphan", "evidence": "Statement shows 4,000."},
        ),
        lambda d, r: _requests("deposit_hold_release") == 1,
        refusals={BANK_ADMIN: NOT_OPERATOR},
        covers=("hold-release",),
    ),
    Row(
        "refund record (maker)",
        OPERATORS,
        lambda w: transfer(w.amina, w.nmb),
        lambda c, d: _post(c, _act(d, "refund"), {"evidence": "Returned by NMB, ref RF-1."}),
        lambda d, r: _requests("deposit_refund_record") == 1 and _status(d) == "submitted",
        refusals={BANK_ADMIN: NOT_OPERATOR},
        covers=("refund",),
    ),
    # Deciding someone else's four-eyes request.
    Row(
        "four-eyes approval of another's request",
        OPERATORS,
        _refund_request,
        lambda c, req: _post(c, f"{FOUR_EYES}{req.pk}/approve/", {"approve-reason": "seen"}),
        lambda req, r: (
            DualControlRequest.objects.get(pk=req.pk).decision == "approved"
            and _status(DepositRequest(pk=req.target_id)) == "refunded"
        ),
        refusals={BANK_ADMIN: NOT_OPERATOR},
    ),
    Row(
        "four-eyes rejection of another's request",
        OPERATORS,
        _refund_request,
        lambda c, req: _post(c, f"{FOUR_EYES}{req.pk}/reject/", {"reject-reason": "no proof"}),
        lambda req, r: DualControlRequest.objects.get(pk=req.pk).decision == "rejected",
        refusals={BANK_ADMIN: NOT_OPERATOR},
    ),
    # Cancel, single and bulk.
    Row(
        "cancel",
        OPERATORS,
        lambda w: transfer(w.amina, w.nmb),
        lambda c, d: _post(c, _act(d, "cancel"), {"reason": "Customer asked."}),
        lambda d, r: _status(d) == "cancelled",
        refusals={BANK_ADMIN: "may not cancel deposits"},
        covers=("cancel",),
    ),
    Row(
        "bulk cancel of stale unpaid deposits",
        OPERATORS,
        lambda w: transfer(w.amina, w.nmb),
        _bulk("cancel_unpaid_deposits", reason="Unpaid for a week."),
        lambda d, r: _status(d) == "cancelled",
        # A bank admin is offered no bulk action: the POST is the list again.
        refusals={BANK_ADMIN: "Select deposit to view"},
        covers=("cancel_unpaid_deposits",),
    ),
    # Orphan payments.
    Row(
        "orphan attach (maker)",
        OPERATORS,
        _orphan,
        lambda c, t: _post(
            c,
            f"{ORPHANS}{t['orphan'].pk}/attach/",
            {"attach-deposit_id": str(t["deposit"].pk), "attach-evidence": "same phone"},
        ),
        lambda t, r: _requests("orphan_attach") == 1,
    ),
    Row(
        "orphan dismissal",
        OPERATORS,
        _orphan,
        lambda c, t: _post(
            c, f"{ORPHANS}{t['orphan'].pk}/dismiss/", {"dismiss-note": "M-Pesa reversal"}
        ),
        lambda t, r: OrphanPayment.objects.get(pk=t["orphan"].pk).status == "dismissed",
    ),
    # Lanes and minting control: super admins only.
    Row(
        "route to the Safe lane",
        SUPER_ONLY,
        _paid,
        lambda c, d: _post(c, _act(d, "route-to-safe"), {"reason": "Key rotation."}),
        lambda d, r: _status(d) == "mint_requires_safe",
        refusals={BANK_ADMIN: "super_admin", COMPLIANCE: "super_admin"},
        bank="settlement",
        covers=("route-to-safe",),
    ),
    Row(
        "back to the worker lane",
        SUPER_ONLY,
        _in_safe_lane,
        lambda c, d: _post(c, _act(d, "route-to-worker"), {"reason": "Rotation done."}),
        lambda d, r: _status(d) == "mint_pending",
        refusals={BANK_ADMIN: "super_admin", COMPLIANCE: "super_admin"},
        bank="settlement",
        covers=("route-to-worker",),
    ),
    Row(
        "cap override",
        SUPER_ONLY,
        lambda w: None,
        lambda c, _: _post(
            c, f"{MINTING}cap/", {"cap-cap_tzs": "250000000", "cap-reason": "board approval"}
        ),
        lambda _, r: DailyIssuance.objects.filter(
            day=today_utc(), cap_override_tzs=250_000_000
        ).exists(),
        refusals={COMPLIANCE: "may not override the daily cap"},
        covers=("cap",),
    ),
    Row(
        "stop minting",
        SUPER_ONLY,
        lambda w: _signer(sending=True),
        lambda c, s: _post(c, f"{MINTING}stop/", {"stop-reason": "incident"}),
        lambda s, r: not SignerAccount.objects.get(pk=s.pk).sending_enabled,
        refusals={COMPLIANCE: "may not stop or start minting"},
        covers=("stop",),
    ),
    Row(
        "start minting",
        SUPER_ONLY,
        lambda w: _signer(sending=False),
        lambda c, s: _post(
            c, f"{MINTING}start/", {"start-reason": "resolved", "start-keep_ledger": "on"}
        ),
        lambda s, r: SignerAccount.objects.get(pk=s.pk).sending_enabled,
        refusals={COMPLIANCE: "may not stop or start minting"},
        covers=("start",),
    ),
    Row(
        "request a MINT_LANE switch (four eyes)",
        SUPER_ONLY,
        lambda w: None,
        lambda c, _: _post(
            c, f"{MINTING}lane/", {"lane-lane": "safe_only", "lane-reason": "incident"}
        ),
        lambda _, r: DualControlRequest.objects.filter(
            action="mint_lane_set", decision="pending"
        ).exists(),
        refusals={COMPLIANCE: "may not switch MINT_LANE"},
        covers=("lane",),
    ),
    # People.
    Row(
        "manual wallet verification (maker)",
        OPERATORS,
        _new_customer_wallet,
        lambda c, wallet: _post(
            c,
            reverse("admin:accounts_wallet_verify", args=[wallet.pk]),
            {"evidence": "Video call on 1 Dec, ID card and wallet app shown."},
        ),
        lambda wallet, r: _requests("wallet_verify_manual") == 1,
    ),
    Row(
        "role grant request (four eyes)",
        SUPER_ONLY,
        lambda w: UserFactory(email="rehema@nmb.ntzs.test"),
        lambda c, grantee: _post(
            c,
            reverse("admin:accounts_user_roles", args=[grantee.pk]),
            {"grant": "1", "grant-role": "bank_admin", "grant-evidence": "Ticket OPS-311."},
        ),
        lambda grantee, r: _requests("staff_role_grant") == 1,
        refusals={COMPLIANCE: "may not request staff_role_grant"},
    ),
    Row(
        "role removal",
        SUPER_ONLY,
        lambda w: w.rehema,
        lambda c, person: _post(
            c,
            reverse("admin:accounts_user_roles", args=[person.pk]),
            {"remove": "1", "remove-role": PLATFORM_COMPLIANCE, "remove-reason": "Left."},
        ),
        lambda person, r: not person.groups.filter(name=PLATFORM_COMPLIANCE).exists(),
        refusals={COMPLIANCE: "may not remove staff roles"},
    ),
    Row(
        "API token revocation",
        SUPER_ONLY,
        lambda w: Token.objects.create(user=customer(email="zawadi@ntzs.test")),
        lambda c, token: _post(
            c,
            reverse("admin:accounts_user_token_revoke", args=[token.user_id]),
            {"reason": "Key pasted in a public chat."},
        ),
        lambda token, r: not Token.objects.filter(pk=token.pk).exists(),
    ),
    # Banks and bank staff.
    Row(
        "bank creation",
        SUPER_ONLY,
        lambda w: None,
        lambda c, _: _post(
            c,
            reverse("admin:deposits_bank_add"),
            {
                "name": "Azania Bank",
                "status": "active",
                "account_name": "nTZS Limited",
                "account_number": "0100 2233 4455",
            },
        ),
        lambda _, r: Bank.objects.filter(name="Azania Bank").exists(),
    ),
    Row(
        "bank change",
        SUPER_ONLY,
        lambda w: w.exim,
        lambda c, bank: _post(
            c,
            reverse("admin:deposits_bank_change", args=[bank.pk]),
            {"name": "Exim", "status": "inactive"},
        ),
        lambda bank, r: Bank.objects.get(pk=bank.pk).status == "inactive",
    ),
    Row(
        "bank staff assignment",
        SUPER_ONLY,
        lambda w: {"teller": bank_admin(email="rehema@exim.ntzs.test"), "bank": w.exim},
        lambda c, t: _post(
            c,
            reverse("admin:deposits_bankstaff_add"),
            {"user": t["teller"].pk, "bank": t["bank"].pk},
        ),
        lambda t, r: BankStaff.objects.filter(user=t["teller"], bank=t["bank"]).exists(),
    ),
    Row(
        "bank staff removal",
        SUPER_ONLY,
        lambda w: BankStaff.objects.get(bank=w.settlement),
        lambda c, row: _post(
            c, reverse("admin:deposits_bankstaff_delete", args=[row.pk]), {"post": "yes"}
        ),
        lambda row, r: not BankStaff.objects.filter(pk=row.pk).exists(),
    ),
    # The pages of the four-eyes queue, the orphans and minting.
    Row(
        "four-eyes queue",
        EVERY_ROLE,
        lambda w: None,
        lambda c, _: c.get(FOUR_EYES),
        _page_ok('id="content"'),
    ),
    Row(
        "orphan payments queue",
        OPERATORS,
        _orphan,
        lambda c, t: c.get(ORPHANS),
        _page_ok("TXORPHAN1"),
    ),
    Row(
        "minting page",
        OPERATORS,
        lambda w: None,
        lambda c, _: c.get(MINTING),
        _page_ok('id="content"'),
    ),
]

# Rows whose action reads the chain (the retry proves on anvil that no attempt can land).
CHAIN_ROWS: list[Row] = [
    Row(
        "retry a failed mint",
        OPERATORS,
        lambda w: w,  # the failed mint is arranged with the chain (see the test)
        lambda c, d: _post(c, _act(d, "retry-mint")),
        lambda d, r: _status(d) == "mint_pending",
        refusals={BANK_ADMIN: "may not retry mints"},
        bank="settlement",
        covers=("retry-mint",),
    ),
    Row(
        "bulk retry of failed mints",
        OPERATORS,
        lambda w: w,
        _bulk("retry_failed_mints"),
        lambda d, r: _status(d) == "mint_pending",
        refusals={BANK_ADMIN: "Select deposit to view"},
        bank="settlement",
        covers=("retry_failed_mints",),
    ),
]

# --- Safe lane: DESIGN §9's "Safe batch file, record Safe tx hash, void an exported payload"
# and "record a consumed Safe nonce (two people)". Their screens and role tests belong to the
# Safe-lane helper (tests/backstage/test_safe_lane.py); their rows join the matrix here.
SAFE_LANE_ROWS: list[Row] = [
    # The pages that read no chain; exporting, voiding and the nonce record read it and are
    # tested per role in tests/backstage/test_safe_lane.py.
    Row(
        "Safe lane queue",
        OPERATORS,
        _in_safe_lane,
        lambda c, d: c.get(reverse("admin:safe_queue")),
        _appears(),
    ),
    Row(
        "record Safe tx hash form",
        OPERATORS,
        _in_safe_lane,
        lambda c, d: c.get(f"{reverse('admin:safe_record')}?deposit={d.pk}"),
        _page_ok('name="tx_hash"'),
    ),
]


# --- Alerts, audit log, heartbeats, notifications (DESIGN §9's last-but-one row) --------------
# Bank admins: the alerts and the audit of their own bank's deposits (the scoping tests below);
# task heartbeats are about the whole system and the notifications ledger carries every
# customer's payment answers, so bank admins read none of either (a deposit's own
# notifications are on its page, without the raw body).


def _alert(w: World) -> Alert:
    deposit = transfer(w.amina, w.nmb)
    return Alert.objects.create(kind="deposit_stuck", key=str(deposit.pk), deposit_id=deposit.pk)


def _audited(w: World) -> AdminAction:
    deposit = transfer(w.amina, w.nmb)
    return admin_action_record(
        actor=w.rehema,
        action="deposit.cancel",
        target_type="deposit",
        target_id=deposit.pk,
        outcome="refused",
        reason="AUDIT-MARKER",
    )


OPERATIONS_ROWS: list[Row] = [
    Row(
        "alerts list",
        EVERY_ROLE,
        _alert,
        lambda c, alert: c.get(reverse("admin:core_alert_changelist")),
        lambda alert, r: r.status_code == 200 and "deposit_stuck" in _text(r),
    ),
    Row(
        "alert acknowledgement",
        EVERY_ROLE,
        _alert,
        lambda c, alert: _post(
            c,
            reverse("admin:operations_alert_acknowledge", args=[alert.pk]),
            {"note": "Calling NMB about it."},
        ),
        lambda alert, r: Alert.objects.get(pk=alert.pk).acknowledged_at is not None,
    ),
    Row(
        "audit log",
        EVERY_ROLE,
        _audited,
        lambda c, row: c.get(reverse("admin:core_adminaction_changelist")),
        lambda row, r: r.status_code == 200 and "AUDIT-MARKER" in _text(r),
    ),
    Row(
        "task heartbeats",
        OPERATORS,
        lambda w: TaskHeartbeat.objects.create(task_name="deposits.poll_payments"),
        lambda c, beat: c.get(reverse("admin:core_taskheartbeat_changelist")),
        lambda beat, r: r.status_code == 200 and "deposits.poll_payments" in _text(r),
    ),
    Row(
        "payment notifications ledger",
        OPERATORS,
        lambda w: PaymentNotification.objects.create(
            kind="webhook", order_id="ORDER-MARKER-1", body="{}", outcome="ignored"
        ),
        lambda c, n: c.get(reverse("admin:deposits_paymentnotification_changelist")),
        lambda n, r: r.status_code == 200 and "ORDER-MARKER-1" in _text(r),
    ),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("row", OPERATIONS_ROWS, ids=lambda row: row.name)
def test_each_role_is_allowed_or_refused_each_operations_view(row, persona, world, login):
    thing = row.arrange(world)
    client = login(world.persona(persona, row))

    response = row.act(client, thing)

    _assert_outcome(row, persona, thing, response)


def _text(response) -> str:
    return response.content.decode()


def _role(persona: str) -> str:
    """The row's column a persona answers to: both super admins are the super_admin one."""
    return SUPER_ADMIN if persona == PLAIN_SUPER_ADMIN else persona


def _assert_outcome(row: Row, persona: str, thing, response) -> None:
    role = _role(persona)
    if role in row.allowed:
        assert response.status_code == 200, f"{row.name}: {persona} got {response.status_code}"
        assert row.happened(thing, response), f"{row.name}: allowed to {persona}, nothing happened"
        return
    assert not row.happened(thing, response), f"{row.name}: refused to {persona}, yet it happened"
    sentence = row.refusals.get(role)
    if sentence is None:
        assert response.status_code in (403, 404), (
            f"{row.name}: {persona} got {response.status_code}, not a refusal"
        )
    else:
        assert sentence in _text(response), f"{row.name}: {persona} not told {sentence!r}"


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("row", [*ROWS, *SAFE_LANE_ROWS], ids=lambda row: row.name)
def test_each_role_is_allowed_or_refused_each_action(row, persona, world, login):
    thing = row.arrange(world)
    client = login(world.persona(persona, row))

    response = row.act(client, thing)

    _assert_outcome(row, persona, thing, response)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("row", CHAIN_ROWS, ids=lambda row: row.name)
def test_each_role_is_allowed_or_refused_a_retry(row, persona, world, login, chain_settings):
    deposit = _failed_mint(world, chain_settings)
    client = login(world.persona(persona, row))

    response = row.act(client, deposit)

    _assert_outcome(row, persona, deposit, response)
    if _role(persona) not in row.allowed:
        assert MintTransaction.objects.get(deposit=deposit).status == "failed"
        assert not MintAttempt.objects.exists()


def test_every_action_of_the_deposit_and_minting_screens_has_a_row():
    covered = {name for row in [*ROWS, *CHAIN_ROWS] for name in row.covers}

    assert set(DEPOSIT_ACTIONS) <= covered
    assert set(BULK_ACTIONS) <= covered
    assert set(minting_page.ACTIONS) <= covered


# --- A bank admin never sees another bank's deposits ---------------------------------------------


@pytest.fixture
def exim_deposit(world) -> DepositRequest:
    """Juma's transfer to Exim, with an alert and an audit row about it, and a four-eyes
    request on it: none of it is NMB's admin's to see; nor is a system-wide alert."""
    deposit = transfer(world.juma, world.exim, amount=7_300)
    Alert.objects.create(kind="exim_stuck", key=str(deposit.pk), deposit_id=deposit.pk)
    Alert.objects.create(kind="minter_gas_low", key="minter")  # about no bank's deposit
    admin_action_record(
        actor=world.rehema,
        action="deposit.cancel",
        target_type="deposit",
        target_id=deposit.pk,
        outcome="refused",
        reason="EXIM-AUDIT",
    )
    deposit_refund_record_request(
        deposit_id=deposit.pk, evidence="EXIM-EVIDENCE returned", maker=world.rehema
    )
    return deposit


def _reaches(deposit) -> dict[str, tuple[Callable, str]]:
    """Every way into a deposit's facts through Backstage's lists, search, filters, detail,
    action pages and bulk action pages: (the request, the text the page repeats back from
    the request itself, such as a search term, which proves nothing)."""
    pk = str(deposit.pk)
    ways = {
        "list": (lambda c: c.get(CHANGELIST), ""),
        "search by id": (lambda c: c.get(CHANGELIST, {"q": pk}), pk),
        "search by reference": (
            lambda c: c.get(CHANGELIST, {"q": deposit.transfer_reference}),
            deposit.transfer_reference,
        ),
        "search by e-mail": (
            lambda c: c.get(CHANGELIST, {"q": "juma@ntzs.test"}),
            "juma@ntzs.test",
        ),
        "bank filter": (
            lambda c: c.get(CHANGELIST, {"bank__id__exact": str(deposit.bank_id)}),
            str(deposit.bank_id),
        ),
        "status filter": (lambda c: c.get(CHANGELIST, {"status__exact": "submitted"}), ""),
        "amount sort": (lambda c: c.get(CHANGELIST, {"o": "-4"}), ""),
        # Django's "doesn't exist" message repeats the id typed into the address.
        "detail": (lambda c: c.get(_detail(deposit), follow=True), pk),
        "alerts": (lambda c: c.get(reverse("admin:core_alert_changelist")), ""),
        "audit log": (lambda c: c.get(reverse("admin:core_adminaction_changelist")), ""),
        "audit log by target": (
            lambda c: c.get(
                reverse("admin:core_adminaction_changelist"),
                {"target_type": "deposit", "target_id": pk},
            ),
            pk,
        ),
        "four-eyes queue": (lambda c: c.get(FOUR_EYES), ""),
        "history": (
            lambda c: c.get(
                reverse("admin:deposits_depositrequest_history", args=[pk]), follow=True
            ),
            pk,
        ),
        "delete page": (
            lambda c: c.get(reverse("admin:deposits_depositrequest_delete", args=[pk])),
            pk,
        ),
        "alert detail": (
            lambda c: c.get(
                reverse(
                    "admin:core_alert_change",
                    args=[Alert.objects.get(deposit_id=deposit.pk).pk],
                )
            ),
            "",
        ),
        "audit row detail": (
            lambda c: c.get(
                reverse(
                    "admin:core_adminaction_change",
                    args=[AdminAction.objects.get(reason="EXIM-AUDIT").pk],
                ),
                follow=True,
            ),
            "",
        ),
        "four-eyes request page": (
            lambda c: c.get(
                f"{FOUR_EYES}{DualControlRequest.objects.get(target_id=pk).pk}/", follow=True
            ),
            "",
        ),
        # Django's autocomplete answers from the deposit screen's own queryset.
        "autocomplete": (
            lambda c: c.get(
                "/backstage/autocomplete/",
                {
                    "app_label": "deposits",
                    "model_name": "deposittransition",
                    "field_name": "deposit",
                    "term": "juma",
                },
            ),
            "",
        ),
    }
    for name in BULK_ACTIONS:
        ways[f"bulk {name}"] = (
            lambda c, name=name: c.post(
                CHANGELIST,
                {"action": name, "_selected_action": [pk], "confirm": "yes", "reason": "x"},
            ),
            "",
        )
    for name in DEPOSIT_ACTIONS:
        ways[f"action page {name}"] = (lambda c, name=name: c.get(_act(deposit, name)), "")
    return ways


def test_a_bank_admin_never_sees_another_banks_deposit(world, exim_deposit, login):
    own = transfer(world.amina, world.nmb, amount=5_000)
    client = login(world.people[BANK_ADMIN])
    secrets = (
        str(exim_deposit.pk),
        "juma@ntzs.test",
        "7,300",
        "7300",
        "exim_stuck",
        "minter_gas_low",
        "EXIM-",
    )

    for way, (reach, echoed) in _reaches(exim_deposit).items():
        response = reach(client)
        body = _text(response).replace(echoed, "") if echoed else _text(response)
        assert response.status_code in (200, 403, 404), f"{way}: {response.status_code}"
        for secret in secrets:
            assert secret not in body, f"{way} shows {secret!r}"

    listed = _text(client.get(CHANGELIST))
    assert str(own.pk) in listed  # their own bank's deposit is there all along
    assert _status(exim_deposit) == "submitted"
    assert DepositApproval.objects.count() == 0


def test_compliance_sees_every_banks_deposit_and_alert(world, exim_deposit, login):
    client = login(world.people[COMPLIANCE])

    assert str(exim_deposit.pk) in _text(client.get(CHANGELIST))
    alerts = _text(client.get(reverse("admin:core_alert_changelist")))
    assert "exim_stuck" in alerts and "minter_gas_low" in alerts
    assert "EXIM-AUDIT" in _text(client.get(reverse("admin:core_adminaction_changelist")))


# --- Every screen: no role, no screen ---------------------------------------------------------


@pytest.mark.parametrize("persona", [SUPERUSER, STAFF])
def test_a_person_without_a_role_opens_no_screen_at_all(persona, world, login):
    """Whatever is registered in Backstage, now or later: its list, add form and the custom
    pages answer 403 to a Django superuser without a role and to staff without one."""
    client = login(world.people[persona])
    pages = [reverse("admin:minting"), FOUR_EYES, ORPHANS]
    for model in site._registry:
        opts = model._meta
        pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))

    opened = [page for page in pages if client.get(page).status_code != 403]

    assert opened == []
