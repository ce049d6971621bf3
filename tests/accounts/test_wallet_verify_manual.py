import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Wallet
from accounts.services import InvalidInput, wallet_verify_manual_request
from core.exceptions import ConflictError, NotFound, PermissionRefused
from core.models import AdminAction, DualControlRequest
from core.services import dual_control_approve, dual_control_reject, dual_control_request_make
from tests.factories import (
    WalletFactory,
    bank_admin,
    compliance_officer,
    customer,
    super_admin,
)

pytestmark = pytest.mark.django_db

EVIDENCE = "Customer showed the wallet app on a video call, ticket SUP-123."


@pytest.fixture
def wallet():
    return WalletFactory(user=customer())


@pytest.fixture
def neema():
    return compliance_officer(email="neema@ntzs.test")


@pytest.fixture
def salim():
    return super_admin(email="salim@ntzs.test")


def test_maker_then_a_different_checker_verifies_the_wallet(wallet, neema, salim):
    request = wallet_verify_manual_request(
        user=wallet.user, address=wallet.address, evidence=EVIDENCE, maker=neema
    )
    wallet.refresh_from_db()
    assert not wallet.is_verified

    dual_control_approve(request_id=request.pk, checker=salim)

    wallet.refresh_from_db()
    assert wallet.is_verified
    assert wallet.verification_method == Wallet.VerificationMethod.MANUAL
    request.refresh_from_db()
    assert (request.decision, request.maker, request.checker) == ("approved", neema, salim)
    assert list(AdminAction.objects.order_by("at").values_list("actor", "action")) == [
        (neema.pk, "wallet_verify_manual.request"),
        (salim.pk, "wallet_verify_manual.approve"),
    ]


def test_the_maker_may_not_approve_their_own_request(wallet, neema):
    request = wallet_verify_manual_request(
        user=wallet.user, address=wallet.address, evidence=EVIDENCE, maker=neema
    )

    with pytest.raises(PermissionRefused, match="different person"):
        dual_control_approve(request_id=request.pk, checker=neema)

    wallet.refresh_from_db()
    assert not wallet.is_verified


@pytest.mark.parametrize("make_checker", [bank_admin, customer], ids=["bank_admin", "customer"])
def test_a_checker_without_the_role_is_refused(wallet, neema, make_checker):
    request = wallet_verify_manual_request(
        user=wallet.user, address=wallet.address, evidence=EVIDENCE, maker=neema
    )

    with pytest.raises(PermissionRefused):
        dual_control_approve(request_id=request.pk, checker=make_checker(email="x@ntzs.test"))

    wallet.refresh_from_db()
    assert not wallet.is_verified


@pytest.mark.parametrize("make_maker", [bank_admin, customer], ids=["bank_admin", "customer"])
def test_a_maker_without_the_role_is_refused(wallet, make_maker):
    with pytest.raises(PermissionRefused, match="platform_compliance"):
        wallet_verify_manual_request(
            user=wallet.user,
            address=wallet.address,
            evidence=EVIDENCE,
            maker=make_maker(email="x@ntzs.test"),
        )

    assert not DualControlRequest.objects.exists()
    assert not AdminAction.objects.exists()


def test_a_rejected_request_leaves_the_wallet_unverified(wallet, neema, salim):
    request = wallet_verify_manual_request(
        user=wallet.user, address=wallet.address, evidence=EVIDENCE, maker=neema
    )

    dual_control_reject(request_id=request.pk, checker=salim, reason="Video call was not live.")

    wallet.refresh_from_db()
    assert not wallet.is_verified
    assert AdminAction.objects.filter(action="wallet_verify_manual.reject").exists()


def test_the_request_needs_evidence(wallet, neema):
    with pytest.raises(InvalidInput, match="evidence"):
        wallet_verify_manual_request(
            user=wallet.user, address=wallet.address, evidence="  ", maker=neema
        )

    assert not DualControlRequest.objects.exists()


def test_an_unknown_wallet_is_refused(neema):
    with pytest.raises(NotFound, match="has not registered the wallet"):
        wallet_verify_manual_request(
            user=customer(), address="0x" + "ab" * 20, evidence=EVIDENCE, maker=neema
        )


def test_an_already_verified_wallet_is_refused(neema):
    verified = WalletFactory(user=customer(), verified=True)

    with pytest.raises(ConflictError, match="already verified"):
        wallet_verify_manual_request(
            user=verified.user, address=verified.address, evidence=EVIDENCE, maker=neema
        )


def test_one_pending_request_per_wallet(wallet, neema, salim):
    wallet_verify_manual_request(
        user=wallet.user, address=wallet.address, evidence=EVIDENCE, maker=neema
    )

    with pytest.raises(ConflictError, match="already waiting"):
        wallet_verify_manual_request(
            user=wallet.user, address=wallet.address, evidence=EVIDENCE, maker=salim
        )


def test_staff_may_not_verify_their_own_wallet_manually(neema, salim):
    own = WalletFactory(user=neema)
    with pytest.raises(PermissionRefused, match="it is their own"):
        wallet_verify_manual_request(
            user=own.user, address=own.address, evidence=EVIDENCE, maker=neema
        )

    other_own = WalletFactory(user=salim)
    request = wallet_verify_manual_request(
        user=other_own.user, address=other_own.address, evidence=EVIDENCE, maker=neema
    )
    with pytest.raises(PermissionRefused, match="it is their own"):
        dual_control_approve(request_id=request.pk, checker=salim)
    other_own.refresh_from_db()
    assert not other_own.is_verified


def test_approval_fails_cleanly_if_the_wallet_was_verified_meanwhile(wallet, neema, salim):
    request = wallet_verify_manual_request(
        user=wallet.user, address=wallet.address, evidence=EVIDENCE, maker=neema
    )
    Wallet.objects.filter(pk=wallet.pk).update(
        verified_at="2026-03-01T09:00:00Z", verification_method="message_signature"
    )

    with pytest.raises(ConflictError, match="already verified"):
        dual_control_approve(request_id=request.pk, checker=salim)

    request.refresh_from_db()
    wallet.refresh_from_db()
    assert request.decision == "pending"
    assert wallet.verification_method == "message_signature"


def test_generic_maker_call_is_validated_by_the_registered_action(neema):
    with pytest.raises(NotFound):
        dual_control_request_make(
            action="wallet_verify_manual",
            target_id="not-a-wallet",
            params={},
            evidence=EVIDENCE,
            maker=neema,
        )


def test_command_creates_the_request_and_prints_its_id(wallet, neema, salim, capsys):
    call_command(
        "wallet_verify_manual",
        wallet.address.lower(),
        "--user",
        wallet.user.email,
        "--evidence",
        EVIDENCE,
        "--actor",
        "neema@ntzs.test",
    )

    request = DualControlRequest.objects.get()
    assert capsys.readouterr().out.strip() == str(request.pk)
    assert (request.action, request.target_id, request.maker) == (
        "wallet_verify_manual",
        str(wallet.pk),
        neema,
    )
    assert request.evidence == EVIDENCE

    dual_control_approve(request_id=request.pk, checker=salim)
    wallet.refresh_from_db()
    assert wallet.verification_method == Wallet.VerificationMethod.MANUAL


def test_command_refuses_the_wrong_role(wallet):
    bank_admin(email="baraka@bank.ntzs.test")

    with pytest.raises(CommandError, match="may not verify wallets manually") as exc:
        call_command(
            "wallet_verify_manual",
            wallet.address,
            "--user",
            wallet.user.email,
            "--evidence",
            EVIDENCE,
            "--actor",
            "baraka@bank.ntzs.test",
        )

    assert exc.value.returncode != 0
    assert not DualControlRequest.objects.exists()


def test_command_refuses_an_unknown_actor(wallet):
    with pytest.raises(CommandError, match="no active user"):
        call_command(
            "wallet_verify_manual",
            wallet.address,
            "--user",
            wallet.user.email,
            "--evidence",
            EVIDENCE,
            "--actor",
            "ghost@ntzs.test",
        )


def test_command_refuses_a_malformed_address(neema):
    with pytest.raises(CommandError, match="40 hexadecimal characters"):
        call_command(
            "wallet_verify_manual",
            "0x1234",
            "--user",
            "neema@ntzs.test",
            "--evidence",
            EVIDENCE,
            "--actor",
            "neema@ntzs.test",
        )


def test_command_names_the_account_and_refuses_another_accounts_address(wallet, neema):
    other = customer(email="juma@ntzs.test")

    with pytest.raises(CommandError, match="juma@ntzs.test has not registered the wallet"):
        call_command(
            "wallet_verify_manual",
            wallet.address,
            "--user",
            other.email,
            "--evidence",
            EVIDENCE,
            "--actor",
            "neema@ntzs.test",
        )

    assert not DualControlRequest.objects.exists()
