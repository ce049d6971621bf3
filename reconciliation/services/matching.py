"""Matching the indexed mint logs to what the books say (DESIGN §8): each mint log is matched
to a ``MintLogClaim`` on (chain, tx hash, log index). One that no claim names is, in order,

a. **in flight** — the transaction of one of our mints not settled yet (``confirm_mints``
   or the Safe recheck claims it): left alone;
b. **awaiting record** — executed by ``SAFE_ADDRESS`` for an open ``mint_requires_safe``
   deposit of that wallet and amount: recorded here through the Safe lane's §7.9 checks with
   the system as actor — when the log carries the deposit's reference, or, on a token without
   deposit references, when the deposit has a ``SafeBatchExport`` of exactly the executed
   call; otherwise listed for a person (``selectors.mints_awaiting_record``);
c. **inside the reorg window** — above the safe head: not indexed yet, so not judged;

and only then untracked: ``Untracked mint tx=… log=… to=… amount=…`` at ERROR once per log
and the ``untracked mint`` alert (key ``tx:log``), while the alarm is armed
(``selectors.untracked_alarm_armed``). The alert resolves once the log is claimed (an entry
or a record), covered by the opening balance, or no longer on chain.

Each pass first sets the claim markers (``mint_log_claims_mark``) of the rows whose claim
appeared since they were indexed; everything after looks only at the rows still unmarked
(few), never at every indexed mint against every claim."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, Case, Exists, OuterRef, Q, Subquery, Value, When
from eth_utils import keccak, to_checksum_address
from web3.exceptions import Web3Exception

from core.alerts import UNTRACKED_MINT
from core.exceptions import ConflictError
from core.models import AdminAction, Alert, DualControlRequest
from core.services import alert_raise, alert_resolve
from minting.chain import ChainError, ChainUnavailable, NtzsClient, hex_str
from minting.models import MintLogClaim, SafeBatchExport
from minting.rpc import mint_client
from minting.services.safe import (
    SafeRecordRefused,
    SafeRefused,
    safe_execution,
    safe_mint_found_evidence,
    safe_mint_found_record,
)
from minting.services.token_admin import OPERATIONS as TOKEN_OPERATIONS
from minting.signing import mint_calldata
from reconciliation.models import ChainTransfer, ReconciliationEntry
from reconciliation.selectors import (
    log_claim_superseded,
    log_claims,
    mint_logs_unread,
    mints_awaiting_record,
    open_safe_deposits_for,
    unclaimed_mint_logs,
    unexplained_burns,
    untracked_alarm_armed,
    untracked_mints,
)
from reconciliation.services.alerts import token_role_holders_check
from reconciliation.services.indexer import chain_index, guarded

logger = logging.getLogger("reconciliation")

UNTRACKED_ALERT = UNTRACKED_MINT  # the registry's kind (core.alerts)
# Receipts read per run to tell whether our Safe executed an unclaimed mint (a legacy token's
# history is worked through over several runs rather than in one).
RECEIPTS_PER_RUN = 200
ET = ReconciliationEntry.EntryType
WIPE_ACTION = TOKEN_OPERATIONS["wipe"].admin_action  # the wipe's AdminAction rows


def untracked_key(log: ChainTransfer) -> str:
    return f"{log.tx_hash}:{log.log_index}"


# --- b. Safe executions ----------------------------------------------------------------------


def safe_executions_read(client: NtzsClient, *, limit: int = RECEIPTS_PER_RUN) -> int:
    """Whether our Safe executed each settled, unclaimed mint's transaction, read once from
    its receipt (an ``ExecutionSuccess`` of ``SAFE_ADDRESS``). Without SAFE_ADDRESS nothing
    is a Safe mint. Returns how many logs were read."""
    logs = list(mint_logs_unread()[:limit])
    if not logs:
        return 0
    if not settings.SAFE_ADDRESS:
        ChainTransfer.objects.filter(pk__in=[log.pk for log in logs]).update(safe_executed=False)
        return len(logs)
    safe = to_checksum_address(settings.SAFE_ADDRESS)
    receipts = client.receipts(sorted({log.tx_hash for log in logs}))
    by_safe, not_safe = [], []
    for log in logs:
        receipt = receipts.get(log.tx_hash)
        if receipt is None:  # the node lost it (a reorg the next indexer run settles)
            continue
        executed = safe in safe_execution(receipt, safe=safe).executors
        (by_safe if executed else not_safe).append(log.pk)
    ChainTransfer.objects.filter(pk__in=by_safe).update(safe_executed=True)
    ChainTransfer.objects.filter(pk__in=not_safe).update(safe_executed=False)
    return len(by_safe) + len(not_safe)


def _export_matches(deposit_id, *, token: str, data: str) -> bool:
    """The deposit has a Safe export whose call for it is exactly ``data`` on the token."""
    for export in SafeBatchExport.objects.filter(deposits=deposit_id):
        for call in (export.payload or {}).get("calls", []):
            if (
                str(call.get("deposit_id")) == str(deposit_id)
                and str(call.get("to", "")).lower() == token.lower()
                and str(call.get("data", "")).lower() == data
            ):
                return True
    return False


def _safe_mint_record(client: NtzsClient, log: ChainTransfer) -> bool:
    """Record a Safe-executed mint for the one open deposit it proves; False (listed for a
    person) when none or several could be recorded."""
    plain_call = hex_str(
        mint_calldata(to=log.to_address, amount_units=int(log.amount_units), deposit_ref=None)
    )
    recordable = []
    for deposit in open_safe_deposits_for(log.to_address, log.amount_units):
        try:
            evidence = safe_mint_found_evidence(client, deposit_id=deposit.pk, tx_hash=log.tx_hash)
        except (SafeRefused, ConflictError):  # not this deposit's mint, or unreadable now
            continue
        if evidence.log_index != log.log_index:
            continue
        # The deposit's reference proves which deposit it is; without one, only an export of
        # exactly this call for the deposit does (two deposits may share wallet and amount,
        # and the Safe may mint for other reasons).
        if evidence.with_ref or _export_matches(deposit.pk, token=client.address, data=plain_call):
            recordable.append((deposit, evidence))
    if len(recordable) != 1:
        return False
    deposit, evidence = recordable[0]
    try:
        recorded = safe_mint_found_record(
            deposit_id=deposit.pk, evidence=evidence, note="Safe mint found by the chain indexer"
        )
    except SafeRecordRefused as exc:
        logger.warning(
            "Safe mint tx=%s not recorded for deposit=%s: %s", log.tx_hash, deposit.pk, exc
        )
        return False
    if recorded:
        logger.info(
            "Safe mint recorded by the indexer deposit=%s tx=%s log=%s",
            deposit.pk,
            log.tx_hash,
            log.log_index,
        )
    return recorded


def safe_mints_record(client: NtzsClient) -> int:
    """Every Safe mint awaiting its record that the checks prove, recorded. Returns how many."""
    return sum(_safe_mint_record(client, log) for log in mints_awaiting_record())


# --- d. Untracked ------------------------------------------------------------------------------


def untracked_alerts_raise() -> int:
    """The alert (and the ERROR line, once per log) for each untracked mint, while the alarm
    is armed. Returns how many alerts opened now."""
    if not untracked_alarm_armed():
        return 0
    opened_now = 0
    for log in untracked_mints(limit=10_000):
        _, opened = alert_raise(
            kind=UNTRACKED_ALERT,
            key=untracked_key(log),
            detail=(
                f"to {log.to_address}, {log.amount_units} base units, block {log.block_number}: "
                "pause minting, then explain it with a reconciliation entry"
            ),
        )
        if opened:
            opened_now += 1
            logger.error(
                "Untracked mint tx=%s log=%s to=%s amount=%s",
                log.tx_hash,
                log.log_index,
                log.to_address,
                log.amount_units,
            )
    return opened_now


def untracked_alerts_resolve() -> int:
    """Open untracked-mint alerts whose log is now explained (claimed, covered by the opening
    balance) or gone from the chain (a reorg) are resolved."""
    still = {untracked_key(log) for log in unclaimed_mint_logs()}
    resolved = 0
    open_keys = Alert.objects.filter(kind=UNTRACKED_ALERT, resolved_at__isnull=True).values_list(
        "key", flat=True
    )
    for key in list(open_keys):
        if key not in still:
            resolved += alert_resolve(kind=UNTRACKED_ALERT, key=key)
    return resolved


# --- Wipes ----------------------------------------------------------------------------------------

WIPED_TOPIC = keccak(text="Wiped(address,uint256)")


def _wiped_events(receipt, *, token: str) -> set[tuple[str, int]]:
    """(account, amount) of each of the token's ``Wiped`` events in the receipt."""
    found = set()
    for log in receipt["logs"]:
        topics = log["topics"]
        if len(topics) < 2 or to_checksum_address(log["address"]) != token:
            continue
        if bytes(topics[0]) != WIPED_TOPIC:
            continue
        account = to_checksum_address("0x" + bytes(topics[1])[-20:].hex())
        found.add((account, int.from_bytes(bytes(log["data"]), "big")))
    return found


@dataclass
class _WipeRequest:
    """An approved wipe whose entry does not exist yet: its request, its lane, for the
    operator lane the transaction it signed (known before it was sent), and for the Safe
    lane the bound a burn must pass: the head block read at the approval
    (``params.head_block``), or, when it could not be read, the approval time."""

    request: DualControlRequest
    holder: str
    lane: str
    tx_hashes: frozenset[str]
    head_block: int | None = None


def _wipes_waiting(chain_id: int) -> list[_WipeRequest]:
    """Only the approved wipe requests without their entry (few: an entry ends the wait),
    never every wipe decision ever made; an operator-lane wipe that ended refused never
    burned (refused before the send, or reverted) and waits for nothing."""
    requests = {
        str(r.pk): r
        for r in DualControlRequest.objects.filter(
            action="token_wipe", decision=DualControlRequest.Decision.APPROVED
        ).exclude(
            Exists(
                ReconciliationEntry.objects.filter(
                    chain_id=chain_id, entry_type=ET.WIPE, dual_control_request_id=OuterRef("pk")
                )
            )
        )
    }
    if not requests:
        return []
    decisions = list(
        AdminAction.objects.filter(
            action=WIPE_ACTION,
            outcome__in=("queued", "safe_payload"),
            target_type="address",
            params__request_id__in=list(requests),
        ).order_by("at")
    )
    hashes: dict[str, set[str]] = {}
    refused: set[str] = set()
    for row in AdminAction.objects.filter(
        action=WIPE_ACTION, params__queued_action__in=[str(d.pk) for d in decisions]
    ).only("outcome", "params"):
        if row.outcome == "refused":
            refused.add(row.params["queued_action"])
        if row.params.get("tx_hash"):
            hashes.setdefault(row.params["queued_action"], set()).add(row.params["tx_hash"].lower())
    waiting = []
    for decision in decisions:
        request = requests.get(str(decision.params.get("request_id")))
        if request is None or str(decision.pk) in refused:
            continue
        head = decision.params.get("head_block")
        waiting.append(
            _WipeRequest(
                request=request,
                holder=decision.target_id,
                lane="operator" if decision.outcome == "queued" else "safe",
                tx_hashes=frozenset(hashes.get(str(decision.pk), ())),
                head_block=int(head) if head is not None else None,
            )
        )
    return waiting


def _wipe_burns(chain_id: int, waiting: list[_WipeRequest]) -> list[ChainTransfer]:
    """The unexplained burns that can be a waiting wipe's, looked up directly (never the
    first N unexplained burns, where a matching one could be past the cut): for the
    operator lane the burns of its signed transactions, for the Safe lane the burns of the
    holder after the head block of the approval (all of the holder's when it is unknown:
    a blacklisted holder cannot burn, so they are few)."""
    hashes = set().union(*(w.tx_hashes for w in waiting if w.lane == "operator"))
    wanted = Q(tx_hash__in=hashes) if hashes else Q(pk__in=[])
    for wipe in waiting:
        if wipe.lane != "safe":
            continue
        by_holder = Q(from_address=wipe.holder)
        if wipe.head_block is not None:
            by_holder &= Q(block_number__gt=wipe.head_block)
        wanted |= by_holder
    return list(unexplained_burns(chain_id).filter(wanted))


def _after_approval(burn: ChainTransfer, wipe: _WipeRequest, block_times: dict[int, int]) -> bool:
    """Whether the burn was mined after the wipe was approved. Above the head block read just
    before the approval (that block was already mined): the chain's own order, exact, no
    clock involved. Only when that read failed (the node was down, so the Safe lane was
    chosen anyway), its block's timestamp against the approval time, in whole seconds as
    block times are: a burn in the approval's own second passes, a Safe execution needs its
    signers first, so nothing real is that close."""
    if wipe.head_block is not None:
        return burn.block_number > wipe.head_block
    approved = wipe.request.checked_at
    mined = block_times.get(burn.block_number)
    return approved is not None and mined is not None and mined >= int(approved.timestamp())


def _block_times(client: NtzsClient, numbers: set[int]) -> dict[int, int]:
    times = {}
    for number in sorted(numbers):
        try:
            times[number] = int(client.w3.eth.get_block(number)["timestamp"])
        except (OSError, ValueError, LookupError, Web3Exception) as exc:
            raise ChainUnavailable(f"Block {number} could not be read ({exc}).") from None
    return times


def _wipe_request_of(
    burn: ChainTransfer,
    receipt,
    waiting: list[_WipeRequest],
    *,
    token: str,
    block_times: dict[int, int],
):
    """The approved wipe request this burn is, or None. Conservative: the burn's transaction
    must carry the token's ``Wiped(holder, amount)`` of exactly this burn; then either it is
    the transaction the operator key signed for the request, or it was executed by our Safe
    after the approval (``_after_approval``) and exactly one Safe-lane wipe request of this
    holder waits for its entry."""
    amount = int(burn.amount_units)
    if (burn.from_address, amount) not in _wiped_events(receipt, token=token):
        return None
    mine = [w for w in waiting if w.holder == burn.from_address]
    by_operator = [w for w in mine if w.lane == "operator" and burn.tx_hash in w.tx_hashes]
    if by_operator:
        return by_operator[0]
    if not settings.SAFE_ADDRESS:
        return None
    safe = to_checksum_address(settings.SAFE_ADDRESS)
    if safe not in safe_execution(receipt, safe=safe).executors:
        return None
    by_safe = [w for w in mine if w.lane == "safe" and _after_approval(burn, w, block_times)]
    if len(by_safe) != 1:
        if by_safe:
            logger.warning(
                "Wipe burn tx=%s log=%s of %s matches %s approved Safe wipe requests; "
                "record its entry by hand",
                burn.tx_hash,
                burn.log_index,
                burn.from_address,
                len(by_safe),
            )
        return None
    return by_safe[0]


def wipe_entries_record(client: NtzsClient, chain_id: int | None = None) -> int:
    """The negative ``wipe`` entry of each indexed wipe (DESIGN §4; issue 15 point 1): a burn
    log from a holder to zero that an approved ``token_wipe`` request caused
    (``_wipe_request_of``) gets exactly one entry on that log, in base units, its maker and
    checker those of the request (the request is the entry's four eyes). Runs after each
    indexer pass; the log's unique entry makes a second run a no-op. Returns how many."""
    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    waiting = _wipes_waiting(chain_id)
    if not waiting:
        return 0
    burns = _wipe_burns(chain_id, waiting)
    if not burns:
        return 0
    timed = {w.holder for w in waiting if w.lane == "safe" and w.head_block is None}
    try:
        receipts = client.receipts(sorted({burn.tx_hash for burn in burns}))
        block_times = _block_times(
            client, {burn.block_number for burn in burns if burn.from_address in timed}
        )
    except ChainError as exc:
        logger.warning("Wipe entries not matched this run: %s", exc)
        return 0
    recorded = 0
    for burn in burns:
        receipt = receipts.get(burn.tx_hash)
        if receipt is None or int(burn.amount_units) == 0:
            continue
        wipe = _wipe_request_of(
            burn, receipt, waiting, token=client.address, block_times=block_times
        )
        if wipe is None:
            continue
        request = wipe.request
        try:
            with transaction.atomic():
                entry = ReconciliationEntry.objects.create(
                    chain_id=chain_id,
                    tx_hash=burn.tx_hash,
                    log_index=burn.log_index,
                    block_number=burn.block_number,
                    to_address=burn.from_address,
                    amount_units=-int(burn.amount_units),
                    entry_type=ET.WIPE,
                    reason=(
                        f"Wipe of the blacklisted {burn.from_address} "
                        f"(four-eyes request {request.pk})"
                    ),
                    notes=request.evidence,
                    created_by_id=request.maker_id,
                    approved_by_id=request.checker_id,
                    dual_control_request_id=request.pk,
                )
        except IntegrityError:
            continue  # another pass recorded this log a moment ago
        waiting.remove(wipe)
        recorded += 1
        logger.warning(
            "Reconciliation entry recorded id=%s type=wipe amount_units=%s tx=%s log=%s",
            entry.pk,
            entry.amount_units,
            entry.tx_hash,
            entry.log_index,
        )
    return recorded


# --- The claim markers ---------------------------------------------------------------------------


def mint_log_claims_mark(chain_id: int | None = None) -> dict[str, int]:
    """Set the claim marker (``ChainTransfer.claim``, ``claimed_tzs``) of every indexed mint
    log whose claim exists now but was not seen yet (a claim made after the indexer stored
    the row: an entry, an attach, the worker's confirmation; or rows indexed before the
    marker existed), and move the markers of claims superseded since to ``superseded``.

    Looks only at the unmarked rows (their partial index) and the claims that supersede
    another (a reorg that moved a recorded mint: rare), never at every claim. Exact whatever
    the order claims commit in (no watermark over claim ids or times): every unmarked row is
    looked up each pass. Returns how many rows were marked and re-marked."""
    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    Claim = ChainTransfer.Claim  # noqa: N806
    marked = (
        ChainTransfer.objects.filter(
            chain_id=chain_id, kind=ChainTransfer.Kind.MINT, claim__isnull=True
        )
        .filter(Exists(log_claims()))
        .update(
            claim=Case(
                When(Exists(log_claim_superseded()), then=Value(Claim.SUPERSEDED)),
                When(
                    Exists(log_claims().filter(deposit__isnull=False)),
                    then=Value(Claim.DEPOSIT),
                ),
                default=Value(Claim.ENTRY),
            ),
            claimed_tzs=Case(
                When(Exists(log_claim_superseded()), then=Value(None)),
                default=Subquery(log_claims().values("deposit__amount_tzs")[:1]),
                output_field=BigIntegerField(),
            ),
        )
    )
    superseded_keys = list(
        MintLogClaim.objects.filter(
            chain_id=chain_id,
            pk__in=MintLogClaim.objects.filter(supersedes__isnull=False).values("supersedes_id"),
        ).values_list("tx_hash", "log_index")
    )
    remarked = 0
    for offset in range(0, len(superseded_keys), 500):
        keys = Q()
        for tx_hash, log_index in superseded_keys[offset : offset + 500]:
            keys |= Q(tx_hash=tx_hash, log_index=log_index)
        remarked += (
            ChainTransfer.objects.filter(chain_id=chain_id, claim=Claim.DEPOSIT)
            .filter(keys)
            .update(claim=Claim.SUPERSEDED, claimed_tzs=None)
        )
    return {"marked": marked, "superseded": remarked}


def mint_logs_match(*, client: NtzsClient) -> dict[str, int]:
    """One matching pass over the indexed mint logs (after an indexer run): the claim markers
    first, then only the logs still unmarked are judged."""
    marks = mint_log_claims_mark()
    counts = {
        "claims_marked": marks["marked"],
        "claims_superseded": marks["superseded"],
        "safe_read": safe_executions_read(client),
        "safe_recorded": safe_mints_record(client),
        "wipes_recorded": wipe_entries_record(client),
    }
    counts["untracked_opened"] = untracked_alerts_raise()
    counts["untracked_resolved"] = untracked_alerts_resolve()
    return counts


# --- One run -------------------------------------------------------------------------------------


def index_chain_run(*, from_block: int | None = None, client_factory=mint_client) -> dict:
    """One indexer run (the task and the command): the chain indexed up to the safe head,
    the token's role holders checked, then its mint logs matched; behind the shared
    breaker."""

    def run(client: NtzsClient) -> dict:
        counts = chain_index(client=client, from_block=from_block)
        # an unexpected holder of a token role is alerted within the run that indexed it
        counts["unexpected_role_holders"] = token_role_holders_check()
        counts["matching"] = mint_logs_match(client=client)
        return counts

    return guarded(run, label="index_chain", client_factory=client_factory)
