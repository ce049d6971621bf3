"""Operator actions of the minting pipeline: retry with proof, the day's cap override, the
sending switch, and the status an operator reads (DESIGN §7.7, §7.8, §9)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import Count

from core.clock import now, today_utc
from core.exceptions import ConflictError, NotFound, ServiceError
from core.models import DualControlRequest
from core.roles import PLATFORM_COMPLIANCE, SUPER_ADMIN, require_not_beneficiary, require_role
from core.services import admin_action_record
from deposits.models import DepositRequest
from deposits.services.transitions import deposit_retry
from minting.chain import NtzsClient, account_address
from minting.chain import hex_str as _hex
from minting.models import DailyIssuance, MintAttempt, MintTransaction, SignerAccount
from minting.selectors import mints_deferred_by_cap_count
from minting.services.ledger import effective_cap, minter_signer
from minting.services.recording import MINT_LOG_ATTACH_ACTION, mint_proof, record_minted
from minting.services.recording import block_day as _block_day

logger = logging.getLogger("minting")
S = DepositRequest.Status


def mint_retry(*, client: NtzsClient, deposit_id, actor=None) -> str:
    """Retry a failed mint — only with the proof that no earlier attempt can still land
    (DESIGN §7.8). A no-op on any status but ``mint_failed``. If an earlier attempt did
    mint, the deposit goes to ``minted`` instead."""
    if actor is not None:
        require_role(actor, PLATFORM_COMPLIANCE, SUPER_ADMIN, doing="retry mints")
    try:
        deposit = DepositRequest.objects.filter(pk=uuid.UUID(str(deposit_id))).first()
    except ValueError:
        raise NotFound(f"{deposit_id!r} is not a deposit id.") from None
    if deposit is None:
        raise NotFound(f"There is no deposit {deposit_id}.")
    require_not_beneficiary(actor, deposit.user_id, doing=f"retry the mint of {deposit.pk}")
    if deposit.status != S.MINT_FAILED:
        return "nothing to do"
    if DualControlRequest.objects.filter(
        action=MINT_LOG_ATTACH_ACTION,
        target_type="deposit",
        target_id=str(deposit.pk),
        decision=DualControlRequest.Decision.PENDING,
    ).exists():
        raise ConflictError(
            f"Deposit {deposit.pk} has a request to attach a mint already on chain waiting for "
            "its checker; retrying would mint it twice. Decide or withdraw that request first."
        )
    mint = MintTransaction.objects.get(deposit=deposit)
    proof = mint_proof(client, mint)
    if proof.verdict == "unproven":
        raise ConflictError(f"Deposit {deposit_id} cannot be retried: {proof.reason}.")
    if proof.verdict == "minted":
        record_minted(
            mint_id=mint.pk,
            tx_hash=_hex(proof.receipt["transactionHash"]),
            log_index=proof.transfer.log_index,
            block_day=_block_day(client, proof.receipt["blockNumber"]),
            source="worker",
            attempt_id=proof.attempt.pk,
            note="an earlier attempt had minted",
        )
        if actor is not None:  # a person's retry is audited whatever it found
            admin_action_record(
                actor=actor,
                action="mint.retry",
                target_type="deposit",
                target_id=deposit.pk,
                params={"tx_hash": _hex(proof.receipt["transactionHash"])},
                outcome="minted",
            )
        return "minted"
    with transaction.atomic():
        locked = MintTransaction.objects.select_for_update().get(pk=mint.pk)
        deposit_retry(deposit_id=deposit.pk, actor=actor)
        MintTransaction.objects.filter(pk=locked.pk).update(
            status=MintTransaction.Status.PENDING, error="", updated_at=now()
        )
        if actor is not None:
            admin_action_record(
                actor=actor,
                action="mint.retry",
                target_type="deposit",
                target_id=deposit.pk,
                outcome="queued",
            )
    return "queued"


@transaction.atomic(durable=True)
def cap_override(*, day: dt.date, cap_tzs: int, reason: str, actor) -> DailyIssuance:
    """The day's override applies at once (the next batch reads it)."""
    require_role(actor, SUPER_ADMIN, doing="override the daily cap")
    if isinstance(cap_tzs, bool) or not isinstance(cap_tzs, int) or cap_tzs < 0:
        raise ServiceError("The cap must be a whole, non-negative number of shillings.")
    if not (reason or "").strip():
        raise ServiceError("A cap override needs a reason.")
    if day < today_utc():
        raise ServiceError(f"{day} is in the past; override today or a later day.")
    DailyIssuance.objects.get_or_create(day=day)
    issuance = DailyIssuance.objects.select_for_update().get(day=day)
    previous = issuance.cap_override_tzs
    DailyIssuance.objects.filter(day=day).update(
        cap_override_tzs=cap_tzs, cap_override_reason=reason.strip()
    )
    admin_action_record(
        actor=actor,
        action="mint.cap_override",
        target_type="day",
        target_id=day.isoformat(),
        params={"cap_tzs": cap_tzs, "previous": previous},
        reason=reason,
    )
    issuance.refresh_from_db()
    return issuance


# The sending switch's reason on a new key's ledger made by a key rotation (rotation.py): only
# the rotation's step 5 starts it, after its checks (the old key settled, the new key's role).
NEW_KEY_WAITING = "key rotation: start minting from the key rotation page (step 5)"


def _signer_locked() -> SignerAccount:
    address = account_address(settings.MINTER_PRIVATE_KEY)
    SignerAccount.objects.get_or_create(address=address, chain_id=settings.CHAIN_ID)
    return SignerAccount.objects.select_for_update().get(
        address=address, chain_id=settings.CHAIN_ID
    )


@transaction.atomic(durable=True)
def minting_sending_set(
    *,
    enabled: bool,
    reason: str,
    actor,
    chain_pending_nonce: int | None = None,
    rotation_checked: bool = False,
) -> SignerAccount:
    """The "stop minting" switch (key rotation, incidents). In-flight transactions are still
    confirmed; no new batch is signed while it is off.

    Starting with ``chain_pending_nonce`` restarts the nonce ledger from the chain (after an
    operator check, e.g. a transaction made outside the system with this key). That is refused,
    and nothing changes, while any attempt of this key is live: the resync would hand their
    nonces out again. Starting without it keeps the ledger as it is.

    A new key's ledger made by a key rotation starts only through the rotation's step 5
    (``rotation_checked``): elsewhere, starting it could leave the old key's attempts
    unconfirmed or sign with a key that lacks the role."""
    require_role(actor, SUPER_ADMIN, doing="stop or start minting")
    if not (reason or "").strip():
        raise ServiceError("Stopping or starting minting needs a reason.")
    signer = _signer_locked()
    if enabled and signer.disabled_reason == NEW_KEY_WAITING and not rotation_checked:
        raise ConflictError(
            f"Minting was not started: {signer.address} is the new key of a key rotation; "
            "start it from the key rotation page (step 5), which checks that the old key has "
            "nothing in flight and that the new key holds MINTER_ROLE."
        )
    resync = {}
    if enabled and chain_pending_nonce is not None:
        live = sorted(
            set(
                MintAttempt.objects.filter(
                    signer=signer, status__in=("signed", "sent")
                ).values_list("nonce", flat=True)
            )
        )
        if live:
            raise ConflictError(
                f"Minting was not started: {len(live)} mint transaction(s) are still in flight "
                f"(nonces {', '.join(map(str, live))}), so the nonce ledger cannot be resynced "
                "from the chain; run it again once confirm_mints has settled them, or start "
                "with --keep-ledger."
            )
        resync = {"next_nonce": chain_pending_nonce, "last_mined_nonce": chain_pending_nonce}
    SignerAccount.objects.filter(pk=signer.pk).update(
        sending_enabled=enabled,
        disabled_reason="" if enabled else reason.strip(),
        updated_at=now(),
        **resync,
    )
    admin_action_record(
        actor=actor,
        action="mint.start" if enabled else "mint.stop",
        target_type="signer",
        target_id=signer.address,
        reason=reason,
    )
    logger.warning("minting %s by %s: %s", "started" if enabled else "stopped", actor, reason)
    signer.refresh_from_db()
    return signer


def mint_status() -> dict:
    """What an operator needs at a glance: queue by status, in-flight nonces, today's cap."""
    day = today_utc()
    issuance = DailyIssuance.objects.filter(day=day).first() or DailyIssuance(day=day)
    queue = dict(
        DepositRequest.objects.filter(status__startswith="mint")
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    # The configured key's row: after a key rotation the old key's (stopped) row remains.
    signer = (minter_signer() if settings.MINTER_PRIVATE_KEY else None) or (
        SignerAccount.objects.filter(chain_id=settings.CHAIN_ID).first()
    )
    live = MintAttempt.objects.filter(status__in=("signed", "sent"))
    return {
        "queue": queue,
        "held": DepositRequest.objects.exclude(hold_reason="").count(),
        "deferred_by_cap": mints_deferred_by_cap_count(day=day),
        "day": day.isoformat(),
        "cap_tzs": effective_cap(issuance),
        "cap_override": issuance.cap_override_tzs is not None,
        "reserved_tzs": issuance.reserved_tzs,
        "issued_tzs": issuance.issued_tzs,
        "safe_issued_tzs": issuance.safe_issued_tzs,
        "signer": signer.address if signer else None,
        "next_nonce": signer.next_nonce if signer else None,
        "last_mined_nonce": signer.last_mined_nonce if signer else None,
        "in_flight_nonces": sorted(set(live.values_list("nonce", flat=True))),
        "sending_enabled": signer.sending_enabled if signer else None,
        "waiting_reason": (signer.preflight_reason if signer and not signer.preflight_ok else ""),
    }
