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
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils import is_checksum_address, to_checksum_address
from eth_utils.exceptions import ValidationError as EthValidationError

from accounts.models import (
    MAX_OPEN_UNVERIFIED_WALLETS,
    KycCase,
    User,
    Wallet,
    WalletChallenge,
)
from accounts.services.common import InvalidInput, _clean_full_name, _parse_uuid
from accounts.services.signup import user_sign_up
from core.clock import now
from core.exceptions import ConflictError, NotFound, PermissionRefused
from core.models import DualControlRequest
from core.roles import PLATFORM_COMPLIANCE, SUPER_ADMIN, require_not_beneficiary, require_role
from core.services import (
    DualControlAction,
    admin_action_record,
    dual_control_action_register,
    dual_control_request_make,
)
from core.text import text_free_storable

__all__ = ["InvalidInput", "user_sign_up"]  # re-exported for existing callers

logger = logging.getLogger(__name__)

KYC_REVIEWER_ROLES = (PLATFORM_COMPLIANCE, SUPER_ADMIN)
WALLET_VERIFY_MANUAL = "wallet_verify_manual"
WALLET_VERIFY_MANUAL_ROLES = (PLATFORM_COMPLIANCE, SUPER_ADMIN)
WALLET_CHALLENGE_TTL = dt.timedelta(minutes=10)

NIDA_DIGITS = 20
EVIDENCE_MIN_LENGTH = 10
EVIDENCE_MAX_LENGTH = 4000
REVIEW_REASON_MAX = 1000

_NIDA_SEPARATORS = re.compile(r"[\s\-]+")
_NIDA_FORMAT = re.compile(rf"[0-9]{{{NIDA_DIGITS}}}")  # ASCII digits only, not any \d
_ADDRESS_FORMAT = re.compile(r"0x[0-9a-fA-F]{40}")
_SIGNATURE_FORMAT = re.compile(r"(0x)?[0-9a-fA-F]{130}")
_ZERO_ADDRESS = "0x" + "0" * 40
# Stored in English (closed_reason), shown translated.
WALLET_CLOSED_TAKEN = gettext_noop("another account verified this address first")
WALLET_CLOSED_EXPIRED = gettext_noop("lapsed unverified after 24 hours")


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


def _national_id_taken(national_id: str, user: User) -> bool:
    """Another account has a pending or approved case with this number (constraint
    ``kyc_national_id_one_account``)."""
    return (
        KycCase.objects.filter(
            national_id=national_id, status__in=(KycCase.Status.PENDING, KycCase.Status.APPROVED)
        )
        .exclude(user=user)
        .exists()
    )


def _national_id_taken_error() -> ConflictError:
    return ConflictError(
        _(
            "This NIDA number is already used by another account; one national ID backs one "
            "account. If it is yours, contact support."
        )
    )


@transaction.atomic
def kyc_submit(*, user: User, national_id: str, full_name: str) -> KycCase:
    national_id = kyc_national_id_normalize(national_id)
    full_name = _clean_full_name(full_name, required=True)
    if KycCase.objects.filter(user=user, status=KycCase.Status.APPROVED).exists():
        raise ConflictError(_("Your identity is already verified; there is nothing to submit."))
    if KycCase.objects.filter(user=user, status=KycCase.Status.PENDING).exists():
        raise ConflictError(
            _("Your previous submission is still being reviewed; wait for its result.")
        )
    if _national_id_taken(national_id, user):
        raise _national_id_taken_error()
    try:
        with transaction.atomic():
            case = KycCase.objects.create(user=user, national_id=national_id, full_name=full_name)
    except IntegrityError:  # a concurrent submission won one of the two unique constraints
        if _national_id_taken(national_id, user):
            raise _national_id_taken_error() from None
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
    require_role(actor, *KYC_REVIEWER_ROLES, doing=_("review KYC cases"))
    if decision not in (KycCase.Status.APPROVED, KycCase.Status.REJECTED):
        raise InvalidInput(_("A KYC decision is either approved or rejected."), field="decision")
    reason = text_free_storable(reason, max_length=REVIEW_REASON_MAX)
    if decision == KycCase.Status.REJECTED and not reason:
        raise InvalidInput(
            _("A rejection needs a reason the customer can act on; give one with the decision."),
            field="reason",
        )
    pk = _parse_uuid(case_id, what=_("KYC case"))
    case = KycCase.objects.filter(pk=pk).only("user_id", "status").first()
    if case is None:
        raise NotFound(_("There is no KYC case %(id)s.") % {"id": pk})
    require_not_beneficiary(actor, case.user_id, doing=_("review KYC case %(id)s") % {"id": pk})
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
    """Register a wallet for ``user``; registering one's own wallet again returns it.

    An unverified registration blocks nobody: several accounts may register one address and
    the first to prove ownership wins (``_wallet_mark_verified``). Only a verified wallet of
    another account refuses the address. A person holds at most
    ``MAX_OPEN_UNVERIFIED_WALLETS`` open registrations; one lapses after 24 hours."""
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
    at = now()
    # Serialise this person's registrations, so two at once cannot pass the allowance.
    User.objects.select_for_update().filter(pk=user.pk).first()
    verified = Wallet.objects.verified().filter(chain=chain, address=address).first()
    if verified is not None:
        if verified.user_id == user.pk:
            return verified
        raise ConflictError(
            _(
                "This wallet address is already verified by another account; if it is yours, "
                "contact support."
            )
        )
    mine = Wallet.objects.filter(
        user=user, chain=chain, address=address, closed_at__isnull=True
    ).first()
    if mine is not None:
        if mine.is_open(at):
            return mine
        # Lapsed: close it, so the new registration starts its own 24 hours.
        Wallet.objects.filter(pk=mine.pk, verified_at__isnull=True, closed_at__isnull=True).update(
            closed_at=at, closed_reason=WALLET_CLOSED_EXPIRED
        )
    if Wallet.objects.open_unverified(at).filter(user=user).count() >= MAX_OPEN_UNVERIFIED_WALLETS:
        raise ConflictError(
            _(
                "You already have %(n)d wallets waiting for verification; verify one of them, or "
                "wait until one lapses (24 hours after it was added)."
            )
            % {"n": MAX_OPEN_UNVERIFIED_WALLETS}
        )
    wallet = Wallet.objects.create(user=user, chain=chain, address=address, created_at=at)
    logger.info("Wallet registered wallet=%s user=%s", wallet.pk, user.pk)
    return wallet


def _require_open(wallet: Wallet, at) -> None:
    """Only an open registration can be proven: not closed, not lapsed, not yet verified."""
    if wallet.is_verified:
        raise ConflictError(_("This wallet is already verified."))
    if wallet.closed_at is not None:
        raise ConflictError(
            _(
                "This registration of %(address)s is closed (%(reason)s); it can no longer be "
                "verified."
            )
            % {"address": wallet.address, "reason": _(wallet.closed_reason)}
        )
    if wallet.is_expired(at):
        raise ConflictError(
            _(
                "This registration of %(address)s lapsed 24 hours after it was added; add the "
                "wallet again to verify it."
            )
            % {"address": wallet.address}
        )


def _wallet_mark_verified(wallet: Wallet, *, method: str, at) -> None:
    """The first to verify an address wins: compare-and-set on the open registration (the
    constraint ``wallet_verified_unique_per_chain`` backs it), then every other open
    registration of the address is closed."""
    # Lock every registration of the address, in one order, before writing: two accounts
    # verifying at once then queue here instead of deadlocking between the unique index and
    # the closing of each other's row; the second finds its registration closed.
    list(
        Wallet.objects.select_for_update()
        .filter(chain=wallet.chain, address=wallet.address)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    try:
        with transaction.atomic():
            updated = (
                Wallet.objects.open_unverified(at)
                .filter(pk=wallet.pk)
                .update(verified_at=at, verification_method=method)
            )
    except IntegrityError:
        raise ConflictError(
            _(
                "The address %(address)s was verified by another account a moment ago; it can "
                "no longer be verified for this one."
            )
            % {"address": wallet.address}
        ) from None
    if updated != 1:
        wallet.refresh_from_db()
        _require_open(wallet, at)
        raise ConflictError(_("This wallet is already verified."))
    closed = (
        Wallet.objects.filter(
            chain=wallet.chain,
            address=wallet.address,
            verified_at__isnull=True,
            closed_at__isnull=True,
        )
        .exclude(pk=wallet.pk)
        .update(closed_at=at, closed_reason=WALLET_CLOSED_TAKEN)
    )
    if closed:
        logger.info(
            "Wallet address verified by another account: closed %d registration(s) of %s",
            closed,
            wallet.address,
        )


def _own_registration(user: User, wallet_id) -> Wallet:
    """One of the person's registrations, closed and lapsed ones included, so a refusal can
    say why (pages reach only live ones, through ``accounts.selectors.user_wallet_get``)."""
    try:
        pk = _parse_uuid(wallet_id, what=_("wallet"))
    except NotFound:
        pk = None
    wallet = Wallet.objects.filter(pk=pk, user=user).first() if pk else None
    if wallet is None:
        raise NotFound(_("There is no such wallet in your account."))
    return wallet


def wallet_challenge_message(
    *, user_id: uuid.UUID, address: str, chain_id: int, nonce: str, expires_at: dt.datetime
) -> str:
    """The text a person signs (EIP-191 personal_sign). It names the site, the account, the
    wallet and the chain, and carries a one-time nonce and an expiry, so a signature proves
    this wallet for this account here and now, and cannot be replayed elsewhere."""
    # UTC for the record, and the clock the page shows people (EAT), so the two agree. The
    # text is stored with the challenge and verified as stored: changing it here affects
    # only new challenges.
    people = expires_at.astimezone(ZoneInfo(settings.TIME_ZONE))
    expiry = (
        f"{expires_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
        f" ({people:%Y-%m-%d %H:%M} {people.tzname()})"
    )
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
    wallet = _own_registration(user, wallet_id)
    _require_open(wallet, now())
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
    wallet = _own_registration(user, wallet_id)
    challenge_pk = _parse_uuid(challenge_id, what=_("message"))
    challenge = WalletChallenge.objects.select_related("wallet").filter(pk=challenge_pk).first()
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
        raise ConflictError(_("This message has expired; sign the new message shown on this page."))
    _require_open(wallet, at)
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
    _wallet_mark_verified(wallet, method=Wallet.VerificationMethod.MESSAGE_SIGNATURE, at=at)
    logger.info("Wallet verified by signature wallet=%s user=%s", wallet.pk, user.pk)
    wallet.refresh_from_db()
    return wallet


# --- Manual wallet verification (four eyes) ------------------------------------------------------


def _wallet_for_manual_verification(target_id: str) -> Wallet:
    try:
        pk = _parse_uuid(target_id, what=_("wallet"))
    except NotFound:
        pk = None
    wallet = Wallet.objects.filter(pk=pk).first() if pk else None
    if wallet is None:
        raise NotFound(_("There is no wallet %(id)s.") % {"id": target_id})
    if wallet.is_verified:
        raise ConflictError(
            _("Wallet %(address)s is already verified.") % {"address": wallet.address}
        )
    _require_open(wallet, now())
    if Wallet.objects.verified().filter(chain=wallet.chain, address=wallet.address).exists():
        raise ConflictError(
            _("The address %(address)s is already verified by another account.")
            % {"address": wallet.address}
        )
    return wallet


def _wallet_owner_id(target_id: str):
    """The beneficiary of a manual verification: the wallet's owner (None if unknown)."""
    try:
        pk = _parse_uuid(target_id, what=_("wallet"))
    except NotFound:
        return None
    return Wallet.objects.filter(pk=pk).values_list("user_id", flat=True).first()


def _wallet_verify_manual_validate(params: dict, target_id: str) -> None:
    wallet = _wallet_for_manual_verification(target_id)
    if params.get("address") not in (None, wallet.address) or params.get("user_id") not in (
        None,
        str(wallet.user_id),
    ):
        raise ConflictError(
            _(
                "The request names another account or address than the wallet "
                "registration it targets; ask again."
            )
        )


def _wallet_verify_manual_apply(request: DualControlRequest, checker, context: dict) -> None:
    wallet = _wallet_for_manual_verification(request.target_id)
    _wallet_mark_verified(wallet, method=Wallet.VerificationMethod.MANUAL, at=now())
    logger.info("Wallet verified manually wallet=%s request=%s", wallet.pk, request.pk)


@transaction.atomic
def wallet_verify_manual_request(
    *, user: User, address: str, evidence: str, maker: User, chain: str = Wallet.Chain.BASE
) -> DualControlRequest:
    """The maker's half of a manual verification of ``user``'s registration of ``address``
    (both named: several accounts may have registered one address); a different person
    approves it with ``core.services.dual_control_approve``, which marks the wallet verified
    and closes the other registrations of the address. Neither may be the wallet's owner."""
    require_role(maker, *WALLET_VERIFY_MANUAL_ROLES, doing=_("verify wallets manually"))
    address = wallet_address_normalize(address)
    wallet = (
        Wallet.objects.filter(user=user, chain=chain, address=address)
        .order_by(F("closed_at").desc(nulls_first=True), "-created_at")
        .first()
    )
    if wallet is None:
        raise NotFound(
            _("%(user)s has not registered the wallet %(address)s on %(chain)s.")
            % {"user": user, "address": address, "chain": chain}
        )
    evidence = text_free_storable(evidence, max_length=EVIDENCE_MAX_LENGTH)
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
    """Register the four-eyes actions this app owns with core (manual wallet verification);
    the wallet's owner is neither maker nor checker (core.roles.require_not_beneficiary)."""
    dual_control_action_register(
        DualControlAction(
            name=WALLET_VERIFY_MANUAL,
            target_type="wallet",
            roles=WALLET_VERIFY_MANUAL_ROLES,
            apply=_wallet_verify_manual_apply,
            validate=_wallet_verify_manual_validate,
            beneficiary=_wallet_owner_id,
        )
    )
