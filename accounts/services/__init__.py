"""Writes of the accounts app: KYC, wallets and their ownership proof (sign-up in ``signup``).

Every function is keyword-only and atomic; a refusal raises a ``ServiceError`` whose message
is one sentence a person can act on. Staff actions write a ``core.AdminAction`` in the same
transaction (the four-eyes wallet verification does so through ``core.services``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils import is_checksum_address, to_checksum_address
from eth_utils.exceptions import ValidationError as EthValidationError

from accounts.models import KycCase, User, Wallet, WalletChallenge
from accounts.selectors import user_wallet_get
from accounts.services.common import InvalidInput, _clean_full_name, _parse_uuid, _require_role
from accounts.services.signup import user_sign_up
from core.clock import now
from core.exceptions import ConflictError, NotFound, PermissionRefused
from core.models import DualControlRequest
from core.roles import PLATFORM_COMPLIANCE, SUPER_ADMIN
from core.services import (
    DualControlAction,
    admin_action_record,
    dual_control_action_register,
    dual_control_request_make,
)

__all__ = ["InvalidInput", "user_sign_up"]  # re-exported for existing callers

logger = logging.getLogger(__name__)

KYC_REVIEWER_ROLES = (PLATFORM_COMPLIANCE, SUPER_ADMIN)
WALLET_VERIFY_MANUAL = "wallet_verify_manual"
WALLET_VERIFY_MANUAL_ROLES = (PLATFORM_COMPLIANCE, SUPER_ADMIN)
WALLET_CHALLENGE_TTL = dt.timedelta(minutes=10)

NIDA_DIGITS = 20
EVIDENCE_MIN_LENGTH = 10

_NIDA_SEPARATORS = re.compile(r"[\s\-]+")
_NIDA_FORMAT = re.compile(rf"[0-9]{{{NIDA_DIGITS}}}")  # ASCII digits only, not any \d
_ADDRESS_FORMAT = re.compile(r"0x[0-9a-fA-F]{40}")
_SIGNATURE_FORMAT = re.compile(r"(0x)?[0-9a-fA-F]{130}")
_ZERO_ADDRESS = "0x" + "0" * 40


# --- KYC ---------------------------------------------------------------------------------------


def kyc_national_id_normalize(value: str) -> str:
    """A NIDA number as 20 ASCII digits; spaces and dashes people type are dropped."""
    digits = _NIDA_SEPARATORS.sub("", value or "")
    if not digits:
        raise InvalidInput(_("Enter your NIDA number."), field="national_id")
    if not _NIDA_FORMAT.fullmatch(digits):
        raise InvalidInput(
            _(
                "A NIDA number has exactly %(n)d digits (spaces and dashes are allowed); "
                "check the number on your national ID card."
            )
            % {"n": NIDA_DIGITS},
            field="national_id",
        )
    return digits


@transaction.atomic
def kyc_submit(*, user: User, national_id: str, full_name: str) -> KycCase:
    national_id = kyc_national_id_normalize(national_id)
    full_name = _clean_full_name(full_name, required=True)
    if KycCase.objects.filter(user=user, status=KycCase.Status.APPROVED).exists():
        raise ConflictError(_("Your identity is already verified; there is nothing to submit."))
    try:
        with transaction.atomic():
            case = KycCase.objects.create(user=user, national_id=national_id, full_name=full_name)
    except IntegrityError:  # kyc_one_pending_per_user
        raise ConflictError(
            _("Your previous submission is still being reviewed; wait for its result.")
        ) from None
    logger.info("KYC case submitted case=%s user=%s", case.pk, user.pk)
    return case


@transaction.atomic
def kyc_review(
    *, case_id: uuid.UUID | str, actor: User, decision: str, reason: str = ""
) -> KycCase:
    """Approve or reject a pending KYC case (``decision`` is ``approved`` or ``rejected``)."""
    _require_role(actor, KYC_REVIEWER_ROLES, _("review KYC cases"))
    if decision not in (KycCase.Status.APPROVED, KycCase.Status.REJECTED):
        raise InvalidInput(_("A KYC decision is either approved or rejected."), field="decision")
    reason = (reason or "").strip()
    if decision == KycCase.Status.REJECTED and not reason:
        raise InvalidInput(
            _("A rejection needs a reason the customer can act on; give one with the decision."),
            field="reason",
        )
    pk = _parse_uuid(case_id, what=_("KYC case"))
    case = KycCase.objects.filter(pk=pk).only("user_id", "status").first()
    if case is None:
        raise NotFound(_("There is no KYC case %(id)s.") % {"id": pk})
    if case.user_id == actor.pk:
        raise PermissionRefused(_("You may not review your own KYC case; ask a colleague."))
    updated = KycCase.objects.filter(pk=pk, status=KycCase.Status.PENDING).update(
        status=decision, reviewed_by=actor, reviewed_at=now(), review_reason=reason
    )
    if updated != 1:
        status = KycCase.objects.filter(pk=pk).values_list("status", flat=True).first()
        raise ConflictError(
            _("KYC case %(id)s was already reviewed (%(status)s).") % {"id": pk, "status": status}
        )
    verb = "approve" if decision == KycCase.Status.APPROVED else "reject"
    admin_action_record(
        actor=actor,
        action=f"kyc_review.{verb}",
        target_type="kyc_case",
        target_id=pk,
        params={"user_id": str(case.user_id)},
        outcome=decision,
        reason=reason,
    )
    case.refresh_from_db()
    return case


# --- Wallets -----------------------------------------------------------------------------------


def wallet_address_normalize(value: str) -> str:
    """The EIP-55 form of an address. All-lowercase or all-uppercase hex carries no checksum
    and is accepted; mixed case is a checksum and must be right (a typo guard)."""
    address = (value or "").strip()
    if not _ADDRESS_FORMAT.fullmatch(address):
        raise InvalidInput(
            _(
                "A wallet address is 0x followed by 40 hexadecimal characters (0-9, a-f); "
                "copy it again from your wallet."
            ),
            field="address",
        )
    hex_part = address[2:]
    if hex_part != hex_part.lower() and hex_part != hex_part.upper():
        if not is_checksum_address(address):
            raise InvalidInput(
                _(
                    "This address has a wrong checksum (the mix of capital and small letters "
                    "does not match, EIP-55), so it probably has a typo; copy it again from "
                    "your wallet exactly as shown."
                ),
                field="address",
            )
    return to_checksum_address(address)


@transaction.atomic
def wallet_register(*, user: User, address: str, chain: str = Wallet.Chain.BASE) -> Wallet:
    """Register a wallet for ``user``; registering one's own wallet again returns it."""
    if chain not in Wallet.Chain.values:
        raise InvalidInput(_("Unknown chain %(chain)s.") % {"chain": chain}, field="chain")
    address = wallet_address_normalize(address)
    if address == _ZERO_ADDRESS:
        raise InvalidInput(
            _("The zero address cannot hold nTZS; enter the address of your own wallet."),
            field="address",
        )
    contract = getattr(settings, "NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA", None)
    if contract and address.lower() == str(contract).lower():
        raise InvalidInput(
            _("This is the nTZS contract address; enter the address of your own wallet."),
            field="address",
        )
    existing = Wallet.objects.filter(chain=chain, address=address).first()
    if existing is None:
        try:
            with transaction.atomic():
                wallet = Wallet.objects.create(user=user, chain=chain, address=address)
        except IntegrityError:  # registered by someone a moment ago
            existing = Wallet.objects.get(chain=chain, address=address)
        else:
            logger.info("Wallet registered wallet=%s user=%s", wallet.pk, user.pk)
            return wallet
    if existing.user_id != user.pk:
        raise ConflictError(
            _(
                "This wallet address is already registered to another account; if it is "
                "yours, contact support."
            )
        )
    return existing


def wallet_challenge_message(
    *, user_id: uuid.UUID, address: str, chain_id: int, nonce: str, expires_at: dt.datetime
) -> str:
    """The text a person signs (EIP-191 personal_sign). It names the site, the account, the
    wallet and the chain, and carries a one-time nonce and an expiry, so a signature proves
    this wallet for this account here and now, and cannot be replayed elsewhere."""
    expiry = expires_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        "nTZS wallet ownership check\n"
        "\n"
        "Sign this message to prove that you control this wallet. "
        "Signing is free: it sends no transaction and moves no funds.\n"
        "\n"
        f"Site: {settings.APP_URL}\n"
        f"Account: {user_id}\n"
        f"Wallet: {address}\n"
        f"Chain ID: {chain_id}\n"
        f"Nonce: {nonce}\n"
        f"Expires: {expiry}"
    )


@transaction.atomic
def wallet_challenge_create(*, user: User, wallet_id: uuid.UUID | str) -> WalletChallenge:
    wallet = user_wallet_get(user=user, wallet_id=wallet_id)
    if wallet.is_verified:
        raise ConflictError(_("This wallet is already verified."))
    nonce = secrets.token_hex(16)
    expires_at = now() + WALLET_CHALLENGE_TTL
    message = wallet_challenge_message(
        user_id=user.pk,
        address=wallet.address,
        chain_id=settings.CHAIN_ID,
        nonce=nonce,
        expires_at=expires_at,
    )
    return WalletChallenge.objects.create(
        wallet=wallet, nonce=nonce, message=message, expires_at=expires_at
    )


def wallet_signature_recover(*, message: str, signature: str) -> str:
    """The address that signed ``message`` with personal_sign (EIP-191), checksummed."""
    signature = (signature or "").strip()
    if not _SIGNATURE_FORMAT.fullmatch(signature):
        raise InvalidInput(
            _(
                "This is not a valid signature: it should be 0x followed by 130 hexadecimal "
                "characters; copy the whole signature from your wallet."
            ),
            field="signature",
        )
    if not signature.startswith("0x"):
        signature = "0x" + signature
    try:
        recovered = Account.recover_message(encode_defunct(text=message), signature=signature)
    except (BadSignature, EthValidationError, ValueError, TypeError):
        raise InvalidInput(
            _("This signature cannot be read; sign the message again with your wallet."),
            field="signature",
        ) from None
    return to_checksum_address(recovered)


@transaction.atomic
def wallet_verify_signature(
    *,
    user: User,
    wallet_id: uuid.UUID | str,
    challenge_id: uuid.UUID | str,
    signature: str,
) -> Wallet:
    """Prove ownership of ``wallet_id`` by a signature of one of its open challenges."""
    wallet = user_wallet_get(user=user, wallet_id=wallet_id)
    challenge_pk = _parse_uuid(challenge_id, what=_("message"))
    challenge = (
        WalletChallenge.objects.select_related("wallet").filter(pk=challenge_pk).first()
    )
    if challenge is None or challenge.wallet_id != wallet.pk or challenge.wallet.user_id != user.pk:
        raise PermissionRefused(
            _(
                "This message was not issued for this wallet and account; sign the message "
                "shown on this page."
            )
        )
    if challenge.used_at is not None:
        raise ConflictError(
            _("This message has already been used; sign the new message shown on this page.")
        )
    at = now()
    if challenge.expires_at <= at:
        raise ConflictError(
            _("This message has expired; sign the new message shown on this page.")
        )
    if wallet.is_verified:
        raise ConflictError(_("This wallet is already verified."))
    signer = wallet_signature_recover(message=challenge.message, signature=signature)
    if signer != wallet.address:
        raise InvalidInput(
            _(
                "This signature was made by the wallet %(signer)s, not by %(address)s; "
                "switch your wallet app to %(address)s and sign again."
            )
            % {"signer": signer, "address": wallet.address},
            field="signature",
        )
    # Compare-and-set: of two requests carrying the same signature, only one uses it.
    used = WalletChallenge.objects.filter(
        pk=challenge.pk, used_at__isnull=True, expires_at__gt=at
    ).update(used_at=at)
    if used != 1:
        raise ConflictError(
            _("This message has already been used; sign the new message shown on this page.")
        )
    verified = Wallet.objects.filter(pk=wallet.pk, verified_at__isnull=True).update(
        verified_at=at, verification_method=Wallet.VerificationMethod.MESSAGE_SIGNATURE
    )
    if verified != 1:
        raise ConflictError(_("This wallet is already verified."))
    logger.info("Wallet verified by signature wallet=%s user=%s", wallet.pk, user.pk)
    wallet.refresh_from_db()
    return wallet


# --- Manual wallet verification (four eyes) ------------------------------------------------------


def _wallet_for_manual_verification(target_id: str) -> Wallet:
    pk = _parse_uuid(target_id, what=_("wallet"))
    wallet = Wallet.objects.filter(pk=pk).first()
    if wallet is None:
        raise NotFound(_("There is no wallet %(id)s.") % {"id": pk})
    if wallet.is_verified:
        raise ConflictError(
            _("Wallet %(address)s is already verified.") % {"address": wallet.address}
        )
    return wallet


def _wallet_verify_manual_validate(params: dict, target_id: str) -> None:
    _wallet_for_manual_verification(target_id)


def _wallet_verify_manual_apply(request: DualControlRequest, checker, context: dict) -> None:
    wallet = _wallet_for_manual_verification(request.target_id)
    if wallet.user_id == checker.pk:
        raise PermissionRefused(
            _("You may not approve the verification of your own wallet; ask a colleague.")
        )
    updated = Wallet.objects.filter(pk=wallet.pk, verified_at__isnull=True).update(
        verified_at=now(), verification_method=Wallet.VerificationMethod.MANUAL
    )
    if updated != 1:
        raise ConflictError(
            _("Wallet %(address)s is already verified.") % {"address": wallet.address}
        )
    logger.info("Wallet verified manually wallet=%s request=%s", wallet.pk, request.pk)


@transaction.atomic
def wallet_verify_manual_request(
    *, address: str, evidence: str, maker: User, chain: str = Wallet.Chain.BASE
) -> DualControlRequest:
    """The maker's half of a manual verification; a different person approves it with
    ``core.services.dual_control_approve``, which marks the wallet verified."""
    _require_role(maker, WALLET_VERIFY_MANUAL_ROLES, _("verify wallets manually"))
    address = wallet_address_normalize(address)
    wallet = Wallet.objects.filter(chain=chain, address=address).first()
    if wallet is None:
        raise NotFound(
            _("No account has registered the wallet %(address)s on %(chain)s.")
            % {"address": address, "chain": chain}
        )
    if wallet.user_id == maker.pk:
        raise PermissionRefused(
            _("You may not request the verification of your own wallet; ask a colleague.")
        )
    evidence = (evidence or "").strip()
    if len(evidence) < EVIDENCE_MIN_LENGTH:
        raise InvalidInput(
            _(
                "Describe the evidence that this wallet belongs to its account holder "
                "(at least %(n)d characters)."
            )
            % {"n": EVIDENCE_MIN_LENGTH},
            field="evidence",
        )
    return dual_control_request_make(
        action=WALLET_VERIFY_MANUAL,
        target_id=wallet.pk,
        params={"address": wallet.address, "chain": wallet.chain, "user_id": str(wallet.user_id)},
        evidence=evidence,
        maker=maker,
    )


def register_dual_control_actions() -> None:
    """Register the four-eyes actions this app owns with core (manual wallet verification)."""
    dual_control_action_register(
        DualControlAction(
            name=WALLET_VERIFY_MANUAL,
            target_type="wallet",
            roles=WALLET_VERIFY_MANUAL_ROLES,
            apply=_wallet_verify_manual_apply,
            validate=_wallet_verify_manual_validate,
        )
    )
