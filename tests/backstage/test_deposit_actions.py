"""The deposit actions of Backstage through the real admin URLs: each a confirmation page (GET
shows what will happen and changes nothing; POST calls the service with the logged-in person),
allowed or refused by role, the refusal in the service's own words."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from core.models import AdminAction, DualControlRequest
from deposits.models import BankStaff, DepositApproval, DepositRequest
from deposits.services.bank import deposit_bank_approve
from deposits.services.intake import DepositInput, deposit_create
from deposits.services.transitions import deposit_payment_confirm
from minting.models import MintAttempt, MintTransaction, SignerAccount
from tests.backstage.conftest import transfer
from tests.factories import bank_admin

pytestmark = pytest.mark.django_db


def _act(deposit, name: str) -> str:
    return reverse("admin:deposits_depositrequest_action", args=[deposit.pk, name])


def _detail(deposit) -> str:
    return reverse("admin:deposits_depositrequest_change", args=[deposit.pk])


def _status(deposit) -> str:
    return DepositRequest.objects.values_list("status", flat=True).get(pk=deposit.pk)


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"]) if response.context else ""


def _actions_on(deposit) -> list[str]:
    return list(
        AdminAction.objects.filter(target_type="deposit", target_id=str(deposit.pk))
        .order_by("at")
        .values_list("action", flat=True)
    )


# --- Bank transfer: bank approval, platform approval, rejections --------------------------------


def test_a_bank_admin_confirms_the_transfer_and_compliance_approves_it(
    login, nmb_admin, neema, amina, nmb, client
):
    deposit = transfer(amina, nmb, amount=5_000)

    login(nmb_admin)
    bank = client.post(
        _act(deposit, "bank-approve"),
        {"amount_received_tzs": "5,000", "bank_reference": "NMB-REF-001"},
    )
    assert bank.status_code == 302 and bank.url == _detail(deposit)
    approval = DepositApproval.objects.get(deposit=deposit)
    assert (approval.type, approval.approver, approval.bank_reference) == (
        "bank",
        nmb_admin,
        "NMB-REF-001",
    )
    assert approval.amount_received_tzs == 5_000
    assert _status(deposit) == "submitted"

    login(neema)
    platform = client.post(_act(deposit, "platform-approve"), follow=True)

    assert "the deposit is now mint_pending" in _messages(platform)
    assert _status(deposit) == "mint_pending"
    assert DepositRequest.objects.get(pk=deposit.pk).psp_reference == "NMB-REF-001"
    assert _actions_on(deposit) == ["deposit.bank_approved", "deposit.platform_approved"]
    actors = AdminAction.objects.filter(target_id=str(deposit.pk)).order_by("at")
    assert [a.actor for a in actors] == [nmb_admin, neema]


def test_the_bank_approval_page_shows_what_will_happen_and_changes_nothing(
    login, nmb_admin, amina, nmb
):
    deposit = transfer(amina, nmb, amount=5_000)

    page = login(nmb_admin).get(_act(deposit, "bank-approve"))

    body = page.content.decode()
    assert page.status_code == 200
    assert str(deposit.pk) in body
    assert "TSh 5,000" in body
    assert "amina@ntzs.test" in body and amina.test_wallet.address in body
    assert "deposits.services.bank.deposit_bank_approve" in body
    assert "waits for the platform approval" in body
    assert 'name="amount_received_tzs"' in body and 'name="bank_reference"' in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert DepositApproval.objects.count() == 0
    assert _actions_on(deposit) == []
    assert _status(deposit) == "submitted"


def test_a_bank_admin_cannot_reach_another_banks_deposit(login, nmb_admin, juma, exim):
    other = transfer(juma, exim)
    client = login(nmb_admin)

    page = client.get(_act(other, "bank-approve"))
    forged = client.post(
        _act(other, "bank-approve"), {"amount_received_tzs": "5000", "bank_reference": "X-1"}
    )

    assert page.status_code == 404
    assert forged.status_code == 404
    assert DepositApproval.objects.count() == 0
    assert _status(other) == "submitted"


def test_compliance_cannot_give_the_bank_approval(login, neema, amina, nmb):
    deposit = transfer(amina, nmb)

    refused = login(neema).post(
        _act(deposit, "bank-approve"), {"amount_received_tzs": "5000", "bank_reference": "R-1"}
    )

    assert refused.status_code == 200
    assert "is not a bank admin" in _messages(refused)
    assert DepositApproval.objects.count() == 0
    assert _actions_on(deposit) == []


def test_a_bank_admin_cannot_give_the_platform_approval(login, nmb_admin, amina, nmb):
    deposit = transfer(amina, nmb)

    refused = login(nmb_admin).post(_act(deposit, "platform-approve"))

    assert refused.status_code == 200
    assert "may not review bank transfers as compliance" in _messages(refused)
    assert DepositApproval.objects.count() == 0


def test_a_superuser_without_a_role_is_refused_every_action(login, root, amina, nmb):
    deposit = transfer(amina, nmb)
    client = login(root)

    for name in ("bank-approve", "platform-approve", "bank-reject", "cancel", "retry-mint"):
        assert client.get(_act(deposit, name)).status_code == 403
        assert client.post(_act(deposit, name), {"reason": "x"}).status_code == 403
    assert DepositApproval.objects.count() == 0
    assert _status(deposit) == "submitted"


def test_a_super_admin_may_give_the_bank_approval(login, salim, amina, nmb):
    deposit = transfer(amina, nmb)

    done = login(salim).post(
        _act(deposit, "bank-approve"), {"amount_received_tzs": "5000", "bank_reference": "S-9"}
    )

    assert done.status_code == 302
    assert DepositApproval.objects.get(deposit=deposit).approver == salim


def test_another_amount_received_holds_the_deposit(login, nmb_admin, amina, nmb):
    deposit = transfer(amina, nmb, amount=5_000)

    done = login(nmb_admin).post(
        _act(deposit, "bank-approve"),
        {"amount_received_tzs": "4000", "bank_reference": "NMB-SHORT"},
        follow=True,
    )

    assert "on hold (amount mismatch" in _messages(done)
    assert DepositRequest.objects.get(pk=deposit.pk).hold_reason.startswith("amount mismatch")


def test_the_same_person_cannot_give_both_approvals(login, salim, amina, nmb):
    deposit = transfer(amina, nmb)
    client = login(salim)
    client.post(
        _act(deposit, "bank-approve"), {"amount_received_tzs": "5000", "bank_reference": "S-1"}
    )

    refused = client.post(_act(deposit, "platform-approve"))

    assert "need two different people" in _messages(refused)
    assert _status(deposit) == "submitted"


def test_the_bank_rejects_with_a_reason(login, nmb_admin, amina, nmb):
    deposit = transfer(amina, nmb)
    client = login(nmb_admin)

    without = client.post(_act(deposit, "bank-reject"), {"reason": ""})
    assert without.status_code == 200 and _status(deposit) == "submitted"
    done = client.post(_act(deposit, "bank-reject"), {"reason": "No such transfer arrived."})

    assert done.status_code == 302
    assert _status(deposit) == "rejected"
    approval = DepositApproval.objects.get(deposit=deposit)
    assert (approval.type, approval.decision, approval.reason) == (
        "bank",
        "rejected",
        "No such transfer arrived.",
    )
    assert _actions_on(deposit) == ["deposit.bank_rejected"]


def test_compliance_rejects_with_a_reason(login, neema, amina, nmb):
    deposit = transfer(amina, nmb)

    login(neema).post(_act(deposit, "platform-reject"), {"reason": "Source of funds unclear."})

    assert _status(deposit) == "rejected"
    assert _actions_on(deposit) == ["deposit.platform_rejected"]


def test_a_post_without_the_csrf_token_is_refused(staff_otp_login, nmb_admin, amina, nmb):
    deposit = transfer(amina, nmb)
    client = Client(enforce_csrf_checks=True)
    staff_otp_login(client, nmb_admin)

    forged = client.post(
        _act(deposit, "bank-approve"), {"amount_received_tzs": "5000", "bank_reference": "C-1"}
    )

    assert forged.status_code == 403
    assert DepositApproval.objects.count() == 0


# --- Cancel, maker actions, lanes -------------------------------------------------------------


def test_compliance_cancels_a_submitted_deposit_with_a_reason(login, neema, amina, nmb):
    deposit = transfer(amina, nmb)

    login(neema).post(_act(deposit, "cancel"), {"reason": "Customer asked to cancel."})

    assert _status(deposit) == "cancelled"
    assert _actions_on(deposit) == ["deposit.cancel"]


def test_a_bank_admin_cannot_cancel(login, nmb_admin, amina, nmb):
    deposit = transfer(amina, nmb)

    refused = login(nmb_admin).post(_act(deposit, "cancel"), {"reason": "no"})

    assert "may not cancel deposits" in _messages(refused)
    assert _status(deposit) == "submitted"


def _mobile_money(user, amount: int = 5_000) -> DepositRequest:
    deposit, _created = deposit_create(
        user=user,
        data=DepositInput(
            amount_tzs=amount,
            payment_provider="zenopay",
            wallet_id=user.test_wallet.pk,
            buyer_phone="+255712345678",
        ),
    )
    return deposit


def test_a_manual_confirmation_only_makes_a_four_eyes_request(login, neema, amina):
    deposit = _mobile_money(amina)

    done = login(neema).post(
        _act(deposit, "confirm-manual"),
        {
            "transid": "ZP-777",
            "amount_tzs": "5000",
            "phone": "0712 345 678",
            "evidence": "Dashboard entry 12:01, status COMPLETED.",
        },
        follow=True,
    )

    made = DualControlRequest.objects.get()
    assert (made.action, made.maker, made.decision) == ("deposit_confirm_manual", neema, "pending")
    assert made.params == {"transid": "ZP-777", "amount_tzs": 5000, "phone": "0712 345 678"}
    assert "Nothing has changed yet" in _messages(done)
    assert _status(deposit) == "submitted"


def test_a_manual_confirmation_for_another_amount_is_refused_in_the_services_words(
    login, neema, amina
):
    deposit = _mobile_money(amina)

    refused = login(neema).post(
        _act(deposit, "confirm-manual"),
        {"transid": "ZP-778", "amount_tzs": "4000", "phone": "", "evidence": "seen"},
    )

    assert "never mints another amount" in _messages(refused)
    assert DualControlRequest.objects.count() == 0


def test_a_hold_release_only_makes_a_four_eyes_request(login, nmb_admin, neema, amina, nmb):
    deposit = transfer(amina, nmb, amount=5_000)
    deposit_bank_approve(
        deposit_id=deposit.pk, actor=nmb_admin, bank_reference="NMB-4K", amount_received_tzs=4_000
    )

    login(neema).post(
        _act(deposit, "hold-release"),
        {"resolution": "cancel_and_orphan", "evidence": "Statement shows 4,000."},
    )

    made = DualControlRequest.objects.get()
    assert (made.action, made.params["resolution"]) == ("deposit_hold_release", "cancel_and_orphan")
    assert DepositRequest.objects.get(pk=deposit.pk).hold_reason.startswith("amount mismatch")


def test_a_refund_record_of_an_unpaid_deposit_only_makes_a_four_eyes_request(
    login, neema, amina, nmb
):
    deposit = transfer(amina, nmb)

    login(neema).post(_act(deposit, "refund"), {"evidence": "Returned by bank, ref RF-1."})

    made = DualControlRequest.objects.get()
    assert (made.action, made.maker) == ("deposit_refund_record", neema)
    assert _status(deposit) == "submitted"


def _paid(user, amount: int = 5_000) -> DepositRequest:
    deposit = _mobile_money(user, amount)
    deposit_payment_confirm(
        deposit_id=deposit.pk, amount_tzs=amount, psp_reference=f"TX-{amount}", source="poll"
    )
    return deposit


def test_a_super_admin_routes_a_deposit_to_the_safe_and_back(login, salim, amina):
    deposit = _paid(amina)
    client = login(salim)

    client.post(_act(deposit, "route-to-safe"), {"reason": "Key rotation."})
    assert _status(deposit) == "mint_requires_safe"
    client.post(_act(deposit, "route-to-worker"), {"reason": "Rotation done."})

    assert _status(deposit) == "mint_pending"
    assert _actions_on(deposit) == ["mint.route_to_safe", "mint.route_to_worker"]


def test_compliance_cannot_route_a_deposit_to_the_safe(login, neema, amina):
    deposit = _paid(amina)

    refused = login(neema).post(_act(deposit, "route-to-safe"), {"reason": "why not"})

    assert "super_admin" in _messages(refused)
    assert _status(deposit) == "mint_pending"


def test_the_customer_who_is_staff_cannot_act_on_their_own_deposit(login, neema, nmb):
    from tests.factories import KycCaseFactory, WalletFactory

    KycCaseFactory(user=neema, approved=True)
    neema.test_wallet = WalletFactory(user=neema, verified=True)
    deposit = transfer(neema, nmb)

    refused = login(neema).post(_act(deposit, "cancel"), {"reason": "mine"})

    assert "it is their own" in _messages(refused)
    assert _status(deposit) == "submitted"


# --- Retry failed mints (single and bulk) ----------------------------------------------------


def _failed_mint(user, chain, amount: int, *, live_nonce: int | None = None) -> DepositRequest:
    """A paid deposit whose mint failed (set up directly: the pipeline's own failure proof is
    tested in tests/minting). With ``live_nonce``, an attempt whose nonce the chain has not
    mined yet: its retry cannot be proven safe."""
    deposit = _paid(user, amount)
    mint = MintTransaction.objects.create(
        deposit=deposit,
        chain_id=31337,
        contract_address=chain.address,
        to_address=deposit.wallet.address,
        amount_units=amount * 10**18,
        status=MintTransaction.Status.FAILED,
        error="execution reverted: recipient blacklisted",
    )
    DepositRequest.objects.filter(pk=deposit.pk).update(status="mint_failed")
    if live_nonce is not None:
        signer, _created = SignerAccount.objects.get_or_create(
            address="0x" + "cd" * 20, chain_id=31337
        )
        MintAttempt.objects.create(
            mint_transaction=mint,
            signer=signer,
            nonce=live_nonce,
            tx_hash=f"0x{live_nonce:064x}",
            raw_tx="0x00",
            max_fee_per_gas=1,
            max_priority_fee_per_gas=1,
            gas_limit=100_000,
            status=MintAttempt.Status.REJECTED,
        )
    return deposit


def test_compliance_retries_a_failed_mint(login, neema, amina, chain_settings):
    deposit = _failed_mint(amina, chain_settings, 5_000)
    client = login(neema)

    page = client.get(_act(deposit, "retry-mint"))
    assert "recipient blacklisted" in page.content.decode()
    assert _status(deposit) == "mint_failed"
    done = client.post(_act(deposit, "retry-mint"), follow=True)

    assert "queued for minting" in _messages(done)
    assert _status(deposit) == "mint_pending"
    assert MintTransaction.objects.get(deposit=deposit).status == "pending"
    assert _actions_on(deposit) == ["mint.retry"]


def test_a_bank_admin_cannot_retry_a_mint(login, amina, chain_settings, settlement_bank):
    from deposits.models import BankStaff
    from tests.factories import bank_admin

    crdb_admin = bank_admin(email="admin@crdb.ntzs.test")
    BankStaff.objects.create(user=crdb_admin, bank=settlement_bank)
    deposit = _failed_mint(amina, chain_settings, 5_000)

    refused = login(crdb_admin).post(_act(deposit, "retry-mint"))

    assert "may not retry mints" in _messages(refused)
    assert _status(deposit) == "mint_failed"


def test_a_bulk_retry_goes_on_per_row_and_shows_each_outcome(login, neema, amina, chain_settings):
    provable = _failed_mint(amina, chain_settings, 5_000)
    unprovable = _failed_mint(amina, chain_settings, 6_000, live_nonce=10**9)
    changelist = reverse("admin:deposits_depositrequest_changelist")
    client = login(neema)
    selected = {"action": "retry_failed_mints", "_selected_action": [provable.pk, unprovable.pk]}

    confirm = client.post(changelist, selected)
    assert confirm.status_code == 200
    assert 'name="confirm"' in confirm.content.decode()
    assert _status(provable) == _status(unprovable) == "mint_failed"
    results = client.post(changelist, {**selected, "confirm": "yes"})

    body = results.content.decode()
    rows = body.split('id="bulk-results"')[1]
    assert "queued for minting" in rows
    assert "cannot be retried: an earlier transaction can still land" in rows
    assert _status(provable) == "mint_pending"
    assert _status(unprovable) == "mint_failed"


def test_a_bank_admin_is_offered_no_bulk_action(login, nmb_admin, amina, nmb):
    deposit = transfer(amina, nmb)
    changelist = reverse("admin:deposits_depositrequest_changelist")
    client = login(nmb_admin)

    listed = client.get(changelist).content.decode()
    forged = client.post(
        changelist,
        {"action": "retry_failed_mints", "_selected_action": [deposit.pk], "confirm": "yes"},
        follow=True,
    )

    assert "retry_failed_mints" not in listed
    assert "cancel_unpaid_deposits" not in listed
    # No action is open to them: the POST is only the list again, nothing retried.
    assert "Select deposit to view" in forged.content.decode()
    assert 'id="bulk-results"' not in forged.content.decode()
    assert AdminAction.objects.count() == 0


def test_a_bulk_retry_with_the_node_down_shows_each_rows_error_and_changes_nothing(
    login, neema, amina, chain_settings, settings
):
    first = _failed_mint(amina, chain_settings, 5_000)
    second = _failed_mint(amina, chain_settings, 6_000)
    settings.BASE_SEPOLIA_RPC_URL = "http://127.0.0.1:9"  # nothing listens there
    settings.BASE_SEPOLIA_RPC_URL_BACKUP = ""

    results = login(neema).post(
        reverse("admin:deposits_depositrequest_changelist"),
        {
            "action": "retry_failed_mints",
            "_selected_action": [first.pk, second.pk],
            "confirm": "yes",
        },
    )

    assert results.status_code == 200
    rows = results.content.decode().split('id="bulk-results"')[1]
    assert rows.count('class="bulk-refused"') == 2
    assert _status(first) == _status(second) == "mint_failed"
    assert AdminAction.objects.count() == 0


def test_a_bulk_cancel_asks_for_a_reason_and_goes_on_per_row(
    login, nmb_admin, neema, amina, juma, nmb
):
    stale = transfer(amina, nmb, amount=5_000)
    held = transfer(juma, nmb, amount=6_000)
    deposit_bank_approve(
        deposit_id=held.pk, actor=nmb_admin, bank_reference="H-9", amount_received_tzs=1_000
    )
    changelist = reverse("admin:deposits_depositrequest_changelist")
    client = login(neema)
    selected = {"action": "cancel_unpaid_deposits", "_selected_action": [stale.pk, held.pk]}

    confirm = client.post(changelist, selected)
    without_reason = client.post(changelist, {**selected, "confirm": "yes", "reason": ""})
    assert 'name="reason"' in confirm.content.decode()
    assert 'id="bulk-results"' not in without_reason.content.decode()
    assert _status(stale) == "submitted"
    results = client.post(
        changelist, {**selected, "confirm": "yes", "reason": "Unpaid for a week."}
    )

    rows = results.content.decode().split('id="bulk-results"')[1]
    assert rows.count('class="bulk-done"') == 1 and rows.count('class="bulk-refused"') == 1
    assert _status(stale) == "cancelled"
    assert _status(held) == "submitted"
    assert _actions_on(stale) == ["deposit.cancel"]
    assert DepositRequest.objects.get(pk=stale.pk).status_reason == "Unpaid for a week."


def test_the_settlement_banks_admin_reads_no_four_eyes_evidence_on_the_deposit(
    login, neema, amina, settlement_bank, staff_otp_login
):
    """Every mobile-money deposit belongs to the settlement bank: its bank admin may open the
    deposit, but the maker's evidence (payment references, phones) is for the action's roles
    only, as on the four-eyes pages."""
    deposit = _mobile_money(amina)
    login(neema).post(
        _act(deposit, "confirm-manual"),
        {
            "transid": "ZP-779",
            "amount_tzs": "5000",
            "phone": "0712 345 678",
            "evidence": "Dashboard entry 12:09, payer 0712 345 678.",
        },
    )
    assert DualControlRequest.objects.filter(action="deposit_confirm_manual").count() == 1
    settlement_admin = bank_admin(email="baraka@crdb.ntzs.test")
    BankStaff.objects.create(user=settlement_admin, bank=settlement_bank)
    other = Client()
    staff_otp_login(other, settlement_admin)

    page = other.get(reverse("admin:deposits_depositrequest_change", args=[deposit.pk]))

    assert page.status_code == 200
    assert "Dashboard entry 12:09" not in page.content.decode()
    compliance_page = login(neema).get(
        reverse("admin:deposits_depositrequest_change", args=[deposit.pk])
    )
    assert "Dashboard entry 12:09" in compliance_page.content.decode()
