"""Sending signed bytes (DESIGN §7.2, §7.4): one attempt or a batch, the fee the next block
charges, and what a node's answer means — as a typed outcome, never a string to slice.

Only bytes already committed with their ``MintAttempt`` are sent here; a send is never
retried blindly (the recovery step of ``confirm`` looks the hash up first)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from django.conf import settings
from web3.exceptions import Web3RPCError

from core.clock import now
from core.crashpoints import crash_point
from core.services import alert_raise, alert_resolve
from minting.chain import ChainError, ChainUnavailable, NtzsClient
from minting.models import MintAttempt, MintTransaction
from minting.rpc import RpcErrorKind, rpc_error_kind

MT = MintTransaction.Status
# Opened when MINT_MAX_FEE_PER_GAS_WEI keeps a signature or a fee bump below what the chain
# asks; resolved once fees fit under it again.
FEE_CAP_ALERT = "mint fee cap reached"

BENIGN_SEND_ERRORS = ("already known", "already imported", "nonce too low", "known transaction")
INSUFFICIENT_FUNDS = "insufficient funds"
UNDERPRICED = (
    "underpriced",
    "below base fee",
    "less than block base fee",
    "max fee per gas less than",
)
INCURABLE = (
    "intrinsic gas too low",
    "exceeds block gas limit",
    "gas limit reached",
    "invalid transaction",
    "rlp",
    "malformed",
    "oversized data",
)


class Sent(enum.StrEnum):
    """What the node did with the bytes (the values are the counters' keys)."""

    SENT = "sent"  # accepted now
    BENIGN = "benign"  # it had them already (or the nonce is mined): as good as sent
    NO_FUNDS = "no_funds"  # the minter cannot pay: the same bytes go again after a top-up
    # Not now: the pool is full for us ("txpool is full", "nonce too high"), we are rate
    # limited, or the batch was refused. The attempt stays signed, no higher nonce is sent
    # in this run, nothing is burnt; the breaker hears of it.
    BACK_OFF = "back_off"
    REFUSED = "error"  # refused: see ``Refusal``


class Refusal(enum.StrEnum):
    """Why a refused send was refused, which decides what recovery does next."""

    UNDERPRICED = "underpriced"  # fees can cure it: bump at once
    INCURABLE = "incurable"  # fees cannot: the attempt is rejected and its nonce filled
    OTHER = "other"  # left for the next run


@dataclass(frozen=True)
class SendOutcome:
    sent: Sent
    message: str = ""  # the node's words, for a refusal

    @property
    def accepted(self) -> bool:
        return self.sent in (Sent.SENT, Sent.BENIGN)

    @property
    def refusal(self) -> Refusal | None:
        if self.sent is not Sent.REFUSED:
            return None
        message = self.message.lower()
        if any(marker in message for marker in UNDERPRICED):
            return Refusal.UNDERPRICED
        if any(marker in message for marker in INCURABLE):
            return Refusal.INCURABLE
        return Refusal.OTHER


def send_outcome_of(message: str, *, code: int | None = None) -> SendOutcome:
    """A node's refusal (its message, and its JSON-RPC code when known), classified."""
    lowered = message.lower()
    if any(benign in lowered for benign in BENIGN_SEND_ERRORS):
        return SendOutcome(Sent.BENIGN)
    if INSUFFICIENT_FUNDS in lowered:
        return SendOutcome(Sent.NO_FUNDS, message)
    if rpc_error_kind({"code": code, "message": message}) is not RpcErrorKind.ANSWER:
        return SendOutcome(Sent.BACK_OFF, message)
    return SendOutcome(Sent.REFUSED, message)


def next_base_fee(client: NtzsClient) -> int:
    """The base fee the next block will charge, not the last one's (after a spike, fees
    computed from the last block are priced out at once): from ``eth_feeHistory``, see
    ``NtzsClient.next_base_fee`` for why not the ``pending`` block."""
    return client.next_base_fee()


def attempt_error_record(attempt: MintAttempt, outcome: SendOutcome) -> None:
    MintAttempt.objects.filter(pk=attempt.pk).update(error=outcome.message[:1000])


def attempt_send(client: NtzsClient, attempt: MintAttempt) -> SendOutcome:
    """Send the committed bytes of one attempt; accepted bytes mark it ``sent``."""
    try:
        client.w3.eth.send_raw_transaction(attempt.raw_tx)
        outcome = SendOutcome(Sent.SENT)
    except ChainUnavailable as exc:  # rate limited or unreachable: the bytes wait, signed
        outcome = SendOutcome(Sent.BACK_OFF, str(exc))
        attempt_error_record(attempt, outcome)
        return outcome
    except (ValueError, ChainError, Web3RPCError) as exc:
        outcome = send_outcome_of(str(exc))
        if outcome.sent is Sent.NO_FUNDS:
            alert_raise(kind="minter gas low", detail=f"send refused: {exc}")
        if not outcome.accepted:
            return outcome
    except OSError as exc:
        raise ChainUnavailable(f"sending failed ({type(exc).__name__})") from None
    crash_point("sent_before_status")
    at = now()
    MintAttempt.objects.filter(pk=attempt.pk, status=MintAttempt.Status.SIGNED).update(
        status=MintAttempt.Status.SENT, sent_at=at
    )
    MintTransaction.objects.filter(pk=attempt.mint_transaction_id, status=MT.SIGNED).update(
        status=MT.SENT, updated_at=at
    )
    return outcome


def _batch_item_outcome(response: dict) -> SendOutcome:
    if "error" not in response:
        return SendOutcome(Sent.SENT)
    error = response["error"]
    if not isinstance(error, dict):
        return send_outcome_of(str(error))
    code = error.get("code")
    return send_outcome_of(
        str(error.get("message", error)), code=code if isinstance(code, int) else None
    )


def _send_chunk(client: NtzsClient, chunk: list[MintAttempt]) -> list[SendOutcome]:
    try:
        responses = client.w3.provider.make_batch_request(
            [("eth_sendRawTransaction", [a.raw_tx]) for a in chunk]
        )
    except OSError as exc:
        raise ChainUnavailable(f"sending failed ({type(exc).__name__})") from None
    if not isinstance(responses, list):  # one error for the whole batch: not now
        refused = SendOutcome(Sent.BACK_OFF, f"the node refused the batch: {responses}")
        return [refused] * len(chunk)
    return [_batch_item_outcome(response) for response in responses]


def batch_send(client: NtzsClient, attempts: list[MintAttempt]) -> dict[str, int]:
    """Step 2: the committed bytes of a batch in JSON-RPC batches of at most
    ``RPC_BATCH_MAX``, in nonce order; statuses updated in bulk. Refusals stay ``signed``
    with their error: confirm_mints sends, bumps or fills them. After a chunk with a
    back-off refusal the higher nonces are not sent this run (they stay signed). Returns
    counts by ``Sent`` value (``back_off`` includes the ones not sent)."""
    if not attempts:
        return {}
    crash_point("after_commit_before_send")
    size = max(int(settings.RPC_BATCH_MAX), 1)
    outcomes: list[SendOutcome] = []
    for start in range(0, len(attempts), size):
        outcomes += _send_chunk(client, attempts[start : start + size])
        if any(outcome.sent is Sent.BACK_OFF for outcome in outcomes):
            held = SendOutcome(Sent.BACK_OFF, "held back: the node asked us to back off")
            outcomes += [held] * (len(attempts) - len(outcomes))
            break
    counts: dict[str, int] = {}
    accepted = []
    for attempt, outcome in zip(attempts, outcomes, strict=True):
        counts[outcome.sent.value] = counts.get(outcome.sent.value, 0) + 1
        if outcome.accepted:
            accepted.append(attempt.pk)
        elif outcome.sent is Sent.NO_FUNDS:
            alert_raise(kind="minter gas low", detail="send refused: insufficient funds")
        else:
            attempt_error_record(attempt, outcome)
    at = now()
    MintAttempt.objects.filter(pk__in=accepted, status=MintAttempt.Status.SIGNED).update(
        status=MintAttempt.Status.SENT, sent_at=at
    )
    MintTransaction.objects.filter(attempts__pk__in=accepted, status=MT.SIGNED).update(
        status=MT.SENT, updated_at=at
    )
    if accepted:
        alert_resolve(kind="minter gas low")
    return counts
