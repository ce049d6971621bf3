"""Reconciliation entries under four eyes (DESIGN §4, §9): two super admins, the beneficiary
never acts, a mint log claimed once, the chain's facts checked (amount, address, kind)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from core.exceptions import ConflictError, PermissionRefused
from core.models import AdminAction, DualControlRequest
from core.services import dual_control_approve
from deposits.models import DepositRequest
from minting.models import MintLogClaim
from reconciliation.models import ReconciliationEntry
from reconciliation.services.entries import EntryRefused, reconciliation_entry_request
from tests.deposits.conftest import settlement_bank  # noqa: F401 - shared bank
from tests.factories import WalletFactory, compliance_officer, customer, super_admin

NTZS = 10**18
OUTSIDER = "0x00000000000000000000000000000000000000A1"


def mint_outside(chain, to: str, units: int) -> tuple[str, int]:
    """A mint made directly on the contract with the minter key, outside the system."""
    receipt = chain.transact(chain.minter_key, chain.contract.functions.mint(to, units))
    return "0x" + bytes(receipt["transactionHash"]).hex(), receipt["logs"][0]["logIndex"]


def burn_outside(chain, holder: str, units: int) -> tuple[str, int]:
    receipt = chain.transact(chain.admin_key, chain.contract.functions.burn(holder, units))
    return "0x" + bytes(receipt["transactionHash"]).hex(), receipt["logs"][0]["logIndex"]


@pytest.fixture
def makers(db):
    return super_admin(email="maker@ntzs.test"), super_admin(email="checker@ntzs.test")


@pytest.mark.django_db
def test_an_entry_needs_two_super_admins_and_claims_its_mint_log(chain_settings, makers):
    maker, checker = makers
    tx_hash, log_index = mint_outside(chain_settings, OUTSIDER, 7 * NTZS + 1)
    request = reconciliation_entry_request(
        maker=maker,
        entry_type="test_mint",
        amount_units=7 * NTZS + 1,
        reason="smoke test of the new RPC provider",
        tx_hash=tx_hash,
        log_index=log_index,
        evidence="ticket OPS-12",
    )
    assert ReconciliationEntry.objects.count() == 0  # nothing before the checker
    with pytest.raises(PermissionRefused, match="different person"):
        dual_control_approve(request_id=request.pk, checker=maker)

    dual_control_approve(request_id=request.pk, checker=checker, reason="seen on the explorer")

    entry = ReconciliationEntry.objects.get()
    assert (entry.created_by, entry.approved_by) == (maker, checker)
    assert entry.amount_units == 7 * NTZS + 1
    assert entry.to_address == OUTSIDER and entry.block_number is not None
    assert entry.dual_control_request_id == request.pk and entry.notes == "ticket OPS-12"
    claim = MintLogClaim.objects.get(tx_hash=tx_hash, log_index=log_index)
    assert claim.reconciliation_entry_id == entry.pk and claim.deposit_id is None
    assert set(AdminAction.objects.values_list("action", flat=True)) == {
        "reconciliation.entry.request",
        "reconciliation.entry.approve",
    }


@pytest.mark.django_db
def test_only_super_admins_make_or_check_an_entry(chain_settings, makers):
    maker, _ = makers
    officer = compliance_officer(email="officer@ntzs.test")
    with pytest.raises(PermissionRefused, match="super_admin"):
        reconciliation_entry_request(
            maker=officer, entry_type="other", amount_units=NTZS, reason="x", block_number=1
        )
    request = reconciliation_entry_request(
        maker=maker, entry_type="other", amount_units=NTZS, reason="x", block_number=1
    )
    with pytest.raises(PermissionRefused, match="super_admin"):
        dual_control_approve(request_id=request.pk, checker=officer)
    assert ReconciliationEntry.objects.count() == 0


@pytest.mark.django_db
def test_the_owner_of_the_wallet_an_entry_names_neither_makes_nor_checks_it(chain_settings, makers):
    maker, checker = makers
    wallet = WalletFactory(user=checker, verified=True)
    tx_hash, log_index = mint_outside(chain_settings, wallet.address, NTZS)
    with pytest.raises(PermissionRefused):
        reconciliation_entry_request(
            maker=checker,
            entry_type="test_mint",
            amount_units=NTZS,
            reason="my own test mint",
            tx_hash=tx_hash,
            log_index=log_index,
        )
    request = reconciliation_entry_request(
        maker=maker,
        entry_type="test_mint",
        amount_units=NTZS,
        reason="test mint to a colleague",
        tx_hash=tx_hash,
        log_index=log_index,
    )
    with pytest.raises(PermissionRefused):
        dual_control_approve(request_id=request.pk, checker=checker)
    dual_control_approve(request_id=request.pk, checker=super_admin(email="third@ntzs.test"))
    assert ReconciliationEntry.objects.get().approved_by.email == "third@ntzs.test"


@pytest.mark.django_db
def test_one_mint_log_is_claimed_once(chain_settings, makers, paid_deposit_claim):
    maker, checker = makers
    tx_hash, log_index = mint_outside(chain_settings, OUTSIDER, NTZS)
    args = {
        "entry_type": "untracked_mint",
        "amount_units": NTZS,
        "reason": "minted with an admin key",
        "tx_hash": tx_hash,
        "log_index": log_index,
    }
    request = reconciliation_entry_request(maker=maker, **args)
    with pytest.raises(ConflictError, match="already waiting for a checker"):
        reconciliation_entry_request(maker=maker, **args)
    dual_control_approve(request_id=request.pk, checker=checker)

    with pytest.raises(EntryRefused, match="already claimed by entry"):
        reconciliation_entry_request(maker=maker, **args)
    # a deposit's claim on the same log (the worker, a Safe record) is refused by the database
    with pytest.raises(IntegrityError), transaction.atomic():
        paid_deposit_claim(tx_hash, log_index)
    assert MintLogClaim.objects.count() == 1
    assert ReconciliationEntry.objects.count() == 1


@pytest.mark.django_db
def test_a_log_claimed_by_a_deposit_after_the_request_fails_the_approval(
    chain_settings, makers, paid_deposit_claim
):
    maker, checker = makers
    tx_hash, log_index = mint_outside(chain_settings, OUTSIDER, NTZS)
    request = reconciliation_entry_request(
        maker=maker,
        entry_type="untracked_mint",
        amount_units=NTZS,
        reason="r",
        tx_hash=tx_hash,
        log_index=log_index,
    )
    paid_deposit_claim(tx_hash, log_index)
    with pytest.raises(EntryRefused, match="already claimed by deposit"):
        dual_control_approve(request_id=request.pk, checker=checker)
    assert ReconciliationEntry.objects.count() == 0
    request.refresh_from_db()
    assert request.decision == DualControlRequest.Decision.PENDING


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "to", "match"),
    [
        (NTZS + 1, None, "moved 1000000000000000000 base units, not 1000000000000000001"),
        (NTZS, "0x00000000000000000000000000000000000000B2", "not of 0x"),
        (-NTZS, None, "must be positive"),
    ],
)
def test_a_wrong_amount_address_or_sign_is_refused(chain_settings, makers, amount, to, match):
    maker, _ = makers
    tx_hash, log_index = mint_outside(chain_settings, OUTSIDER, NTZS)
    with pytest.raises(EntryRefused, match=match):
        reconciliation_entry_request(
            maker=maker,
            entry_type="untracked_mint",
            amount_units=amount,
            reason="r",
            tx_hash=tx_hash,
            log_index=log_index,
            to_address=to or "",
        )
    assert DualControlRequest.objects.count() == 0


@pytest.mark.django_db
def test_a_burn_is_a_negative_entry_naming_a_burn_log_and_claims_nothing(chain_settings, makers):
    maker, checker = makers
    holder = chain_settings.admin_address  # burns its own tokens (no allowance needed)
    mint_outside(chain_settings, holder, 3 * NTZS)
    tx_hash, log_index = burn_outside(chain_settings, holder, NTZS + NTZS // 2)
    with pytest.raises(EntryRefused, match="must be negative"):
        reconciliation_entry_request(
            maker=maker,
            entry_type="burn",
            amount_units=NTZS + NTZS // 2,
            reason="r",
            tx_hash=tx_hash,
            log_index=log_index,
        )
    with pytest.raises(EntryRefused, match="is not a mint"):
        reconciliation_entry_request(
            maker=maker,
            entry_type="manual_correction",
            amount_units=NTZS + NTZS // 2,
            reason="r",
            tx_hash=tx_hash,
            log_index=log_index,
        )
    request = reconciliation_entry_request(
        maker=maker,
        entry_type="burn",
        amount_units=-(NTZS + NTZS // 2),
        reason="burnt on the holder's request",
        tx_hash=tx_hash,
        log_index=log_index,
    )
    dual_control_approve(request_id=request.pk, checker=checker)
    entry = ReconciliationEntry.objects.get()
    assert entry.amount_units == -(NTZS + NTZS // 2) and entry.to_address == holder
    assert MintLogClaim.objects.count() == 0


@pytest.mark.django_db
def test_an_opening_balance_states_its_block_and_no_transaction(chain_settings, makers):
    maker, checker = makers
    with pytest.raises(EntryRefused, match="stated at a block"):
        reconciliation_entry_request(
            maker=maker, entry_type="opening_balance", amount_units=NTZS, reason="legacy"
        )
    request = reconciliation_entry_request(
        maker=maker,
        entry_type="opening_balance",
        amount_units=10**6 * NTZS,
        reason="supply of the legacy token before this system",
        block_number=5,
    )
    dual_control_approve(request_id=request.pk, checker=checker)
    assert ReconciliationEntry.objects.get().block_number == 5


@pytest.fixture
def paid_deposit_claim(db, settlement_bank):  # noqa: F811 - the imported fixture
    """Claims a log for a deposit (what the worker or a Safe record would insert)."""
    from deposits.models import DepositRequest

    def _claim(tx_hash: str, log_index: int) -> MintLogClaim:
        person = customer(email="owner@ntzs.test")
        wallet = WalletFactory(user=person, verified=True)
        deposit = DepositRequest.objects.create(
            user=person,
            bank=settlement_bank,
            wallet=wallet,
            chain="base",
            amount_tzs=1,
            payment_provider="zenopay",
            buyer_phone="+255712345678",
            status="minted",
        )
        return MintLogClaim.objects.create(
            chain_id=31337, tx_hash=tx_hash, log_index=log_index, deposit=deposit
        )

    return _claim


@pytest.mark.django_db
def test_the_command_makes_the_request_and_another_super_admin_approves_it(chain_settings, makers):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    maker, checker = makers
    tx_hash, log_index = mint_outside(chain_settings, OUTSIDER, 2 * NTZS)
    with pytest.raises(CommandError, match="not a whole number"):
        call_command(
            "reconciliation_entry",
            "--actor",
            maker.email,
            "--type",
            "test_mint",
            "--amount-units",
            "2e18",
            "--reason",
            "r",
        )
    with pytest.raises(CommandError, match="must be positive"):
        call_command(
            "reconciliation_entry",
            "--actor",
            maker.email,
            "--type",
            "test_mint",
            "--amount-units",
            "-1",
            "--reason",
            "r",
            "--block",
            "1",
        )
    call_command(
        "reconciliation_entry",
        "--actor",
        maker.email,
        "--type",
        "test_mint",
        "--amount-units",
        str(2 * NTZS),
        "--reason",
        "recovery",
        "--tx-hash",
        tx_hash,
        "--log-index",
        str(log_index),
    )
    request = DualControlRequest.objects.get(action="reconciliation.entry")
    call_command("dual_control_approve", str(request.pk), "--actor", checker.email)
    entry = ReconciliationEntry.objects.get()
    assert (entry.created_by, entry.approved_by, entry.amount_units) == (maker, checker, 2 * NTZS)


@pytest.mark.django_db
def test_a_mint_an_open_deposit_waits_for_is_attached_not_explained_by_an_entry(
    chain_settings,
    makers,
    settlement_bank,  # noqa: F811
):
    maker, _ = makers
    owner = customer(email="waiting@ntzs.test")
    wallet = WalletFactory(user=owner, verified=True)
    deposit = DepositRequest.objects.create(  # set up directly: a paid deposit whose mint failed
        user=owner,
        wallet=wallet,
        bank=settlement_bank,
        amount_tzs=5_000,
        payment_provider=DepositRequest.Provider.ZENOPAY,
        status=DepositRequest.Status.MINT_FAILED,
    )
    tx_hash, log_index = mint_outside(chain_settings, wallet.address, 5_000 * NTZS)

    with pytest.raises(EntryRefused, match=f"Deposit {deposit.pk} waits for exactly this mint"):
        reconciliation_entry_request(
            maker=maker,
            entry_type="untracked_mint",
            amount_units=5_000 * NTZS,
            reason="found on chain",
            tx_hash=tx_hash,
            log_index=log_index,
        )
    assert not DualControlRequest.objects.exists()
