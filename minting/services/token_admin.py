"""Token administration for incident response (issue 15 point 1; DESIGN §9, §12): pause,
unpause, freeze, unfreeze, blacklist, unblacklist, the wipe of a blacklisted holder, and
granting / revoking ``MINTER_ROLE`` (key rotation, point 5).

Super admins only. **Pause**, **freeze**, **blacklist** and **revoke_minter** are one person
(an emergency must not wait; removing a power is the safe direction); **unpause, unfreeze,
unblacklist, wipe and grant_minter** are four-eyes actions: the maker makes a
``DualControlRequest`` and the checker's approval dispatches the call.

Two lanes, chosen by what is configured (read at the moment of acting):

- ``OPERATOR_PRIVATE_KEY`` is set and holds the needed role (``hasRole``): an ``AdminAction``
  ``token.<op>`` with outcome ``queued`` is written and ``minting.tasks.token_admin_execute``
  is enqueued on commit (the ``default`` queue). The task (never the web request) reads the
  chain (role, gas, fees, nonce), then signs under the operator key's own nonce lock and
  records the signed bytes (``signed``, committed before anything is sent, so a redelivery
  rebroadcasts them instead of signing anew), sends (``sent``), waits for the receipt and
  writes the outcome (``done`` or ``refused``) with the state read back from the token. The
  beat task ``minting.tasks.token_admin_redrive`` runs the same execution for every action
  still without an outcome a minute on (a lost message, retries run out), and opens
  ``token action stuck`` for one without an outcome after ten minutes.
- otherwise: the exact call and a Safe Transaction Builder batch file (``minting.services.
  safe`` helpers) are returned and kept in the ``AdminAction`` (outcome ``safe_payload``);
  ``token_admin_status`` reads the contract once the Safe has executed it.

``AdminAction`` rows are append-only, so an execution is a chain of rows linked by
``params.queued_action`` rather than one row updated.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, Exists, OuterRef
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils.translation import gettext as _
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, is_address, keccak, to_checksum_address
from web3.exceptions import (
    ContractLogicError,
    TimeExhausted,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)

from accounts.models import Wallet
from core.alerts import TOKEN_ACTION_STUCK
from core.clock import now
from core.crashpoints import crash_point
from core.exceptions import ConflictError, NotFound, ServiceError
from core.models import AdminAction, Alert, DualControlRequest
from core.roles import SUPER_ADMIN, require_role
from core.services import (
    DualControlAction,
    admin_action_record,
    alert_raise,
    alert_resolve,
    dual_control_action_register,
    dual_control_approve,
    dual_control_request_make,
    task_enqueue_on_commit,
)
from deposits.models import DepositRequest
from deposits.services.transitions import TransitionRefused, deposit_hold_set
from minting.chain import (
    ChainError,
    ChainUnavailable,
    NtzsClient,
    account_address,
    hex_str,
    role_id,
)
from minting.contract_artifact import NTZS_ABI
from minting.rpc import mint_client
from minting.selectors import wei_as_eth
from minting.services.safe import batch_file, contract_call, token_calldata

logger = logging.getLogger("minting")
S = DepositRequest.Status

TASK_NAME = "minting.tasks.token_admin_execute"
# The hold the pipeline sets at screening (pipeline.screen_candidates): the same words, so a
# release meets the same check whoever set it.
BLACKLIST_HOLD = "blacklisted recipient"
# Deposits to a wallet that may still be paid or minted; cancelled and rejected ones move
# only through a person's recovery, which meets the hold then.
OPEN_STATUSES = (S.SUBMITTED, S.MINT_PENDING, S.MINT_FAILED, S.MINT_REQUIRES_SAFE)
RECEIPT_TIMEOUT_S = 120
# The redrive (``token_admin_redrive``, every minute): an action is its business once its
# own message had a minute; a run drives at most this many, oldest first, and waits for a
# receipt only briefly (a transaction not mined yet is looked at again next run); an action
# with no outcome after STUCK_AFTER opens ``token action stuck``.
REDRIVE_AFTER = dt.timedelta(seconds=60)
REDRIVE_PER_RUN = 10
REDRIVE_RECEIPT_TIMEOUT_S = 10
STUCK_AFTER = dt.timedelta(minutes=10)
STUCK_ALERTS_SHOWN = 100
GAS_MARGIN_NUM, GAS_MARGIN_DEN = 12, 10  # 20 % above the node's estimate


@dataclass(frozen=True)
class TokenOperation:
    name: str  # pause, unpause, freeze, ...
    method: str  # the token function
    role: str  # the role the sender must hold
    takes_address: bool
    four_eyes: bool
    # The role the call itself names (grantRole(role, account) / revokeRole): its first
    # argument, before the address. Empty for the functions that take no role.
    role_arg: str = ""
    # What the person does, for refusals ("Say why you ..."); "<name> the token" by default.
    doing: str = ""

    @property
    def admin_action(self) -> str:
        return f"token.{self.name}"

    @property
    def request_action(self) -> str:
        return f"token_{self.name}"

    @property
    def description(self) -> str:
        return self.doing or f"{self.name} the token"


OPERATIONS = {
    op.name: op
    for op in (
        TokenOperation("pause", "pause", "PAUSER_ROLE", False, False),
        TokenOperation("unpause", "unpause", "PAUSER_ROLE", False, True),
        TokenOperation("freeze", "freeze", "FREEZER_ROLE", True, False),
        TokenOperation("unfreeze", "unfreeze", "FREEZER_ROLE", True, True),
        TokenOperation("blacklist", "blacklist", "BLACKLISTER_ROLE", True, False),
        TokenOperation("unblacklist", "unblacklist", "BLACKLISTER_ROLE", True, True),
        TokenOperation("wipe", "wipeBlacklisted", "WIPER_ROLE", True, True),
        # Granting the power to mint is four eyes; removing it is a safety action (a leaked
        # or retired minter key), so one person.
        TokenOperation(
            "grant_minter", "grantRole", "DEFAULT_ADMIN_ROLE", True, True,
            role_arg="MINTER_ROLE", doing="grant MINTER_ROLE",
        ),
        TokenOperation(
            "revoke_minter", "revokeRole", "DEFAULT_ADMIN_ROLE", True, False,
            role_arg="MINTER_ROLE", doing="revoke MINTER_ROLE",
        ),
    )
}  # fmt: skip
FOUR_EYES = {op.request_action: op for op in OPERATIONS.values() if op.four_eyes}
# Every token action's AdminAction name, for ``action IN``: the audit log's (action, at)
# index serves it under any collation, where a "token." prefix would read the whole log.
# An operation is never renamed or removed while its rows exist.
TOKEN_ACTIONS = tuple(op.admin_action for op in OPERATIONS.values())


@dataclass(frozen=True)
class Lane:
    kind: str  # "operator" or "safe"
    reason: str  # why this lane, for the person and the audit
    operator: str = ""  # the operator key's address, when known


@dataclass(frozen=True)
class TokenAdminResult:
    operation: str
    lane: str  # "operator" (queued for the task), "safe" (payload) or "four_eyes" (waiting)
    lane_reason: str = ""
    action_id: uuid.UUID | None = None
    request_id: uuid.UUID | None = None
    call: dict | None = None
    batch: dict | None = None
    held_deposits: list[str] = field(default_factory=list)


# --- Reads --------------------------------------------------------------------------------------


def _client() -> NtzsClient:
    try:
        return mint_client()
    except ChainError as exc:
        raise ChainUnavailable(f"The chain could not be read: {exc}") from None


def token_admin_status(
    *, address: str | None = None, role: str = "", client: NtzsClient | None = None
) -> dict:
    """The token's state as the contract reports it now: ``paused`` and, for an address,
    ``frozen``, ``blacklisted`` and ``balance_units`` (an int of base units), and with
    ``role`` also ``roles: {role: hasRole(role, address)}``, in one batch."""
    client = client or _client()
    reads: list[tuple[str, tuple]] = [("paused", ())]
    if address:
        holder = address_normalise(address)
        reads += [("isFrozen", (holder,)), ("isBlacklisted", (holder,)), ("balanceOf", (holder,))]
        if role:
            reads.append(("hasRole", (role_id(role), holder)))
    answers = client.views(reads)
    state = {"token": client.address, "paused": bool(answers[0])}
    if address:
        state |= {
            "address": holder,
            "frozen": bool(answers[1]),
            "blacklisted": bool(answers[2]),
            "balance_units": int(answers[3]),
        }
        if role:
            state["roles"] = {role: bool(answers[4])}
    return state


def _state_storable(state: dict) -> dict:
    """JSON keeps integers beyond 2**53 badly in some readers: the balance as text."""
    return {k: str(v) if k == "balance_units" else v for k, v in state.items()}


def token_admin_lane(op: TokenOperation) -> Lane:
    """The operator key when it is set and holds ``op.role`` on the token, else the Safe.
    An unreadable chain with a key set falls back to the Safe payload (an emergency pause
    must not wait for the node)."""
    if not settings.OPERATOR_PRIVATE_KEY:
        return Lane("safe", "OPERATOR_PRIVATE_KEY is not set")
    operator = account_address(settings.OPERATOR_PRIVATE_KEY)
    try:
        holds = _client().has_role(op.role, operator)
    except ChainError as exc:
        return Lane("safe", f"the operator's role could not be read ({exc})", operator)
    if not holds:
        return Lane("safe", f"the operator key {operator} does not hold {op.role}", operator)
    return Lane("operator", f"the operator key {operator} holds {op.role}", operator)


def address_normalise(address: str) -> str:
    value = (address or "").strip()
    if not is_address(value) or int(value, 16) == 0:
        raise ServiceError(
            _("%(value)r is not an address (0x followed by 40 hex digits).") % {"value": address}
        )
    return to_checksum_address(value)


def _wallet_owner_id(address: str):
    return (
        Wallet.objects.filter(address__iexact=address, verified_at__isnull=False)
        .values_list("user_id", flat=True)
        .first()
    )


def _reason_clean(reason: str, op: TokenOperation) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(
            _("Say why you %(doing)s (--reason): it goes into the audit log.")
            % {"doing": op.description}
        )
    return reason[:2000]


def _target(op: TokenOperation, address: str | None) -> tuple[str, str, str | None]:
    """(target_type, target_id, holder address or None)."""
    if op.takes_address:
        if not address:
            raise ServiceError(_("Name the address to %(op)s.") % {"op": op.name})
        holder = address_normalise(address)
        return "address", holder, holder
    if not settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA:
        raise ServiceError(
            _("NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA is not set, so there is no token to act on.")
        )
    return "token", to_checksum_address(settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA), None


# --- The exact call and the dispatch ------------------------------------------------------------


def token_admin_call(op: TokenOperation, holder: str | None) -> dict:
    """The exact call: the role the operation names (if any), then the address (if any).
    The role travels as its bytes32 id (what the Transaction Builder needs) and by name."""
    args: list = []
    values: list[str] = []
    extra = {}
    if op.role_arg:
        args.append(role_id(op.role_arg))
        values.append(hex_str(role_id(op.role_arg)))
        extra["role_name"] = op.role_arg
    if holder:
        args.append(holder)
        values.append(holder)
    return contract_call(
        token=settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA,
        method=op.method,
        values=values,
        data=token_calldata(op.method, args),
        **extra,
    )


def _dispatch(
    op: TokenOperation,
    *,
    holder: str | None,
    actor,
    reason: str,
    lane: Lane,
    request_id=None,
    head_block: int | None = None,
) -> TokenAdminResult:
    """Inside the caller's transaction: the AdminAction of the decision, the holds of a
    blacklist, and (operator lane) the task enqueued on commit. ``head_block``, the chain's
    latest block read before the approval (a wipe's), bounds which burns can be this
    action's (reconciliation.services.matching)."""
    target_type, target_id = ("address", holder) if holder else _target(op, None)[:2]
    call = token_admin_call(op, holder)
    params = {
        "operation": op.name,
        "lane": lane.kind,
        "lane_reason": lane.reason,
        "call": call,
        "role": op.role,
    }
    if request_id is not None:
        params["request_id"] = str(request_id)
    if head_block is not None:
        params["head_block"] = head_block
    batch = None
    if lane.kind == "safe":
        batch = batch_file(
            calls=[call],
            name=f"nTZS {op.name}" + (f" {holder}" if holder else ""),
            description=f"{call['text']} (needs {op.role}): {reason}"[:500],
        )
        params["batch"] = batch
    held = _blacklist_holds(holder, actor=actor) if op.name == "blacklist" else []
    if held:
        params["held_deposits"] = held
    action = admin_action_record(
        actor=actor,
        action=op.admin_action,
        target_type=target_type,
        target_id=target_id,
        params=params,
        outcome="queued" if lane.kind == "operator" else "safe_payload",
        reason=reason,
    )
    if lane.kind == "operator":
        task_enqueue_on_commit(TASK_NAME, str(action.pk))
    logger.warning(
        "Token %s by %s through the %s lane%s: %s",
        op.name,
        actor,
        lane.kind,
        f" for {holder}" if holder else "",
        reason,
    )
    return TokenAdminResult(
        operation=op.name,
        lane=lane.kind,
        lane_reason=lane.reason,
        action_id=action.pk,
        request_id=request_id,
        call=call,
        batch=batch,
        held_deposits=held,
    )


def _blacklist_holds(holder: str, *, actor) -> list[str]:
    """Hold every open deposit to the wallet, as the pipeline's screening would; releasing
    one needs the on-chain unblacklist first (``blacklist_release_check``)."""
    held = []
    ids = DepositRequest.objects.filter(
        wallet__address__iexact=holder, status__in=OPEN_STATUSES, hold_reason=""
    ).values_list("pk", flat=True)
    for deposit_id in ids:
        try:
            if deposit_hold_set(
                deposit_id=deposit_id,
                reason=BLACKLIST_HOLD,
                source="admin",
                actor=actor,
                details={"wallet": holder},
            ):
                held.append(str(deposit_id))
        except TransitionRefused:
            continue  # claimed by a batch a moment ago: its mint reverts on chain, proven
    return held


def _one_person(name: str, *, address: str | None, actor, reason: str) -> TokenAdminResult:
    op = OPERATIONS[name]
    require_role(actor, SUPER_ADMIN, doing=op.description)
    reason = _reason_clean(reason, op)
    holder = _target(op, address)[2]
    lane = token_admin_lane(op)  # chain reads: before any transaction
    with transaction.atomic(durable=True):
        return _dispatch(op, holder=holder, actor=actor, reason=reason, lane=lane)


def _four_eyes(name: str, *, address: str | None, actor, reason: str) -> TokenAdminResult:
    op = OPERATIONS[name]
    require_role(actor, SUPER_ADMIN, doing=op.description)
    reason = _reason_clean(reason, op)
    target_id, holder = _target(op, address)[1:]
    request = dual_control_request_make(
        action=op.request_action,
        target_id=target_id,
        params={"address": holder} if holder else {},
        evidence=reason,
        maker=actor,
    )
    return TokenAdminResult(operation=op.name, lane="four_eyes", request_id=request.pk)


def token_pause(*, actor, reason: str) -> TokenAdminResult:
    return _one_person("pause", address=None, actor=actor, reason=reason)


def token_unpause(*, actor, reason: str) -> TokenAdminResult:
    return _four_eyes("unpause", address=None, actor=actor, reason=reason)


def token_freeze(*, address: str, actor, reason: str) -> TokenAdminResult:
    return _one_person("freeze", address=address, actor=actor, reason=reason)


def token_unfreeze(*, address: str, actor, reason: str) -> TokenAdminResult:
    return _four_eyes("unfreeze", address=address, actor=actor, reason=reason)


def token_blacklist(*, address: str, actor, reason: str) -> TokenAdminResult:
    return _one_person("blacklist", address=address, actor=actor, reason=reason)


def token_unblacklist(*, address: str, actor, reason: str) -> TokenAdminResult:
    return _four_eyes("unblacklist", address=address, actor=actor, reason=reason)


def token_wipe(*, address: str, actor, reason: str) -> TokenAdminResult:
    """Wipe the balance of a blacklisted holder (the token reverts for any other)."""
    return _four_eyes("wipe", address=address, actor=actor, reason=reason)


def token_grant_minter(*, address: str, actor, reason: str) -> TokenAdminResult:
    """``grantRole(MINTER_ROLE, address)`` (the sender needs DEFAULT_ADMIN_ROLE): four eyes,
    since it hands out the power to mint."""
    return _four_eyes("grant_minter", address=address, actor=actor, reason=reason)


def token_revoke_minter(*, address: str, actor, reason: str) -> TokenAdminResult:
    """``revokeRole(MINTER_ROLE, address)`` (the sender needs DEFAULT_ADMIN_ROLE): one
    person, since removing the power to mint is the safe direction (a leaked or retired
    key)."""
    return _one_person("revoke_minter", address=address, actor=actor, reason=reason)


# Each operation's service by name: the command's subcommands and the Backstage forms.
TOKEN_ACTION_SERVICES = {
    "pause": token_pause,
    "unpause": token_unpause,
    "freeze": token_freeze,
    "unfreeze": token_unfreeze,
    "blacklist": token_blacklist,
    "unblacklist": token_unblacklist,
    "wipe": token_wipe,
    "grant_minter": token_grant_minter,
    "revoke_minter": token_revoke_minter,
}


def token_admin_dispatched(*, request_id) -> TokenAdminResult:
    """What an approved four-eyes token request dispatched: the queued action, or the Safe
    payload to download."""
    action = (
        AdminAction.objects.filter(
            action__in=TOKEN_ACTIONS,
            outcome__in=("queued", "safe_payload"),
            params__request_id=str(request_id),
        )
        .order_by("at")
        .first()
    )
    if action is None:
        raise NotFound(
            _("Four-eyes request %(id)s has not dispatched a token action.") % {"id": request_id}
        )
    return _result_of(action)


def _result_of(action: AdminAction) -> TokenAdminResult:
    params = action.params
    return TokenAdminResult(
        operation=params["operation"],
        lane=params["lane"],
        lane_reason=params.get("lane_reason", ""),
        action_id=action.pk,
        request_id=uuid.UUID(params["request_id"]) if params.get("request_id") else None,
        call=params.get("call"),
        batch=params.get("batch"),
        held_deposits=params.get("held_deposits", []),
    )


def token_admin_approve(*, request_id, checker, reason: str = "") -> TokenAdminResult:
    """The checker's approval of a four-eyes token request (any DualControlRequest approval
    path does the same; this one also answers what was dispatched)."""
    request = DualControlRequest.objects.filter(pk=request_id).only("action").first()
    if request is None or request.action not in FOUR_EYES:
        raise NotFound(_("There is no four-eyes token request %(id)s.") % {"id": request_id})
    dual_control_approve(request_id=request_id, checker=checker, reason=reason)
    return token_admin_dispatched(request_id=request_id)


# --- Four-eyes hooks ----------------------------------------------------------------------------


def _validate(op: TokenOperation):
    def validate(params: dict, target_id: str) -> None:
        if op.takes_address:
            address_normalise(params.get("address") or target_id)

    return validate


def _prepare(op: TokenOperation):
    def prepare(request: DualControlRequest) -> dict:
        lane = token_admin_lane(op)
        context = {"lane": lane.kind, "lane_reason": lane.reason, "operator": lane.operator}
        if op.name == "wipe":
            # The wipe's burn must come after this block: a Wiped burn of the same holder
            # mined before the approval is not this request's. Unreadable: nothing is
            # stored, and the matching compares the burn's block time with the approval.
            try:
                context["head_block"] = _client().head()
            except ChainError as exc:
                logger.warning("Wipe %s approved without the head block: %s", request.pk, exc)
        return context

    return prepare


def _apply(op: TokenOperation):
    def apply(request: DualControlRequest, checker, context: dict) -> None:
        lane = Lane(context["lane"], context["lane_reason"], context.get("operator", ""))
        _dispatch(
            op,
            holder=request.params.get("address"),
            actor=checker,
            reason=request.evidence,
            lane=lane,
            request_id=request.pk,
            head_block=context.get("head_block"),
        )

    return apply


def _beneficiary(op: TokenOperation):
    # Whoever owns the wallet being unfrozen, unblacklisted or wiped decides nothing about it.
    return _wallet_owner_id if op.takes_address else None


def register_dual_control_actions() -> None:
    for op in FOUR_EYES.values():
        dual_control_action_register(
            DualControlAction(
                name=op.request_action,
                target_type="address" if op.takes_address else "token",
                roles=(SUPER_ADMIN,),
                apply=_apply(op),
                validate=_validate(op),
                prepare=_prepare(op),
                beneficiary=_beneficiary(op),
            )
        )


# --- A hold release needs the on-chain unblacklist first ---------------------------------------


def blacklist_release_check(deposit: DepositRequest, resolution: str) -> None:
    """Registered with deposits' hold release: a deposit held because its wallet is
    blacklisted is released to mint only once the token no longer blacklists the wallet.
    Runs before any transaction (it reads the chain)."""
    if resolution != "clear" or not deposit.hold_reason.startswith(BLACKLIST_HOLD):
        return
    try:
        blacklisted = _client().is_blacklisted(deposit.wallet.address)
    except ChainError as exc:
        raise ConflictError(
            _("Whether %(wallet)s is still blacklisted could not be read (%(error)s); try again.")
            % {"wallet": deposit.wallet.address, "error": exc}
        ) from None
    if blacklisted:
        raise ConflictError(
            _(
                "The wallet %(wallet)s is still blacklisted on the token: unblacklist it on chain "
                "first (token_admin unblacklist, two people), then release the hold."
            )
            % {"wallet": deposit.wallet.address}
        )


# --- Execution through the operator key (the task) ---------------------------------------------


def _by_queued_action():
    """Execution rows, filterable by the decision they carry (``queued_action``) through the
    audit log's index on ``params ->> 'queued_action'`` (``params__queued_action`` compares
    jsonb, which that index does not serve)."""
    return AdminAction.objects.alias(queued_action=KT("params__queued_action"))


def _executions(action_id) -> list[AdminAction]:
    return list(_by_queued_action().filter(queued_action=str(action_id)).order_by("at", "pk"))


def _lock_key(address: str) -> int:
    """A signed 64-bit advisory lock key for the operator address on this chain."""
    digest = keccak(text=f"ntzs:operator-nonce:{settings.CHAIN_ID}:{address.lower()}")
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def operator_nonce_lock(address: str):
    """The operator key's own nonce lock, held while the nonce is chosen and the transaction
    signed and recorded, with no chain call under it (the pending nonce is read before it,
    and the recorded open and mined nonces count as used, so neither that read nor the send
    needs the lock): on PostgreSQL a transaction-level advisory lock (it
    survives transaction pooling, unlike a session lock); elsewhere (the local SQLite demo) a
    file lock. The minter's SignerAccount lock is never taken: the keys are distinct
    (refused at start otherwise), and a slow operator send must not stall minting."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(address)])
            yield
            return
        path = Path(settings.VAR_DIR) / f"operator-{address.lower()}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


_ERRORS = {
    function_signature_to_4byte_selector(
        f"{item['name']}({','.join(arg['type'] for arg in item['inputs'])})"
    ): item
    for item in NTZS_ABI
    if item.get("type") == "error"
}


def revert_reason(exc: BaseException) -> str:
    """The token's custom error (``AccountNotBlacklisted(0x…)``) or the node's words."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        raw = bytes.fromhex(data[2:])
        error = _ERRORS.get(raw[:4])
        if error is not None:
            types = [arg["type"] for arg in error["inputs"]]
            try:
                values = abi_decode(types, raw[4:])
            except Exception:  # noqa: BLE001 - a malformed revert: name it without arguments
                values = ()
            shown = [
                to_checksum_address(v) if t == "address" else hex_str(v) if t == "bytes32" else v
                for t, v in zip(types, values, strict=False)
            ]
            return f"{error['name']}({', '.join(map(str, shown))})"
    message = getattr(exc, "message", None) or str(exc)
    return str(message)[:300]


def _record(queued: AdminAction, *, outcome: str, params: dict, reason: str = "") -> AdminAction:
    return admin_action_record(
        actor=queued.actor,
        action=queued.action,
        target_type=queued.target_type,
        target_id=queued.target_id,
        params={"queued_action": str(queued.pk), "operation": queued.params["operation"]} | params,
        outcome=outcome,
        reason=reason or queued.reason,
    )


def _refused(queued: AdminAction, sentence: str, **params) -> str:
    _record(queued, outcome="refused", params={"refusal": sentence} | params, reason=sentence)
    logger.error("Token %s refused: %s", queued.params["operation"], sentence)
    return "refused"


def _holder_of(queued: AdminAction) -> str | None:
    return queued.target_id if queued.target_type == "address" else None


FINAL = ("done", "refused")


def _final(rows: list[AdminAction]) -> AdminAction | None:
    final = [row for row in rows if row.outcome in FINAL]
    return final[-1] if final else None


def _last(rows: list[AdminAction], outcome: str) -> AdminAction | None:
    matching = [row for row in rows if row.outcome == outcome]
    return matching[-1] if matching else None


def token_admin_execute(*, action_id, receipt_timeout_s: int | None = None) -> str:
    """Execute a queued token action through the operator key: the outcome recorded
    (``done``, ``refused``) or ``sent`` while its receipt is not there yet.

    The chain is read first (role, gas estimate, fees, pending nonce, balance), outside any
    lock or transaction. Then, under the operator key's nonce lock and in one short
    transaction, only rows are read again, the nonce chosen, the transaction signed and its
    bytes recorded (outcome ``signed``, committed before anything leaves), then sent. A run
    that dies between the send and its record is followed by one that finds the ``signed``
    row, broadcasts the same bytes again and reads their receipt; it never signs anew (a
    second transaction at the next nonce would execute the action twice). Safe to run twice
    at once, and by ``token_admin_redrive`` as well as the task. A final outcome resolves the
    action's ``token action stuck`` alert."""
    timeout = RECEIPT_TIMEOUT_S if receipt_timeout_s is None else receipt_timeout_s
    outcome = _execute(action_id, receipt_timeout_s=timeout)
    if outcome in FINAL:
        alert_resolve(kind=TOKEN_ACTION_STUCK, key=str(action_id))
    return outcome


def _execute(action_id, *, receipt_timeout_s: int) -> str:
    queued = AdminAction.objects.filter(
        pk=action_id, outcome="queued", action__in=TOKEN_ACTIONS
    ).first()
    if queued is None:
        raise NotFound(_("There is no queued token action %(id)s.") % {"id": action_id})
    op = OPERATIONS[queued.params["operation"]]
    rows = _executions(action_id)
    if (final := _final(rows)) is not None:
        return final.outcome
    signed = _last(rows, "signed")
    if signed is None:
        if not settings.OPERATOR_PRIVATE_KEY:
            return _refused(queued, "OPERATOR_PRIVATE_KEY is no longer set; use the Safe payload.")
        operator = Account.from_key(settings.OPERATOR_PRIVATE_KEY)
        client = _client()
        plan = _sign_plan(client, queued, op, operator)  # every chain read, before the lock
        with operator_nonce_lock(operator.address):
            rows = _executions(action_id)
            if (final := _final(rows)) is not None:
                return final.outcome
            signed = _last(rows, "signed")
            if signed is None:
                if isinstance(plan, _Refusal):  # nothing was signed, nothing is sent
                    return _refused(queued, plan.sentence, **plan.params)
                signed = _sign(queued, operator, plan)
        # The signed row is committed (the lock's transaction ended): from here on a crash
        # leads to a rebroadcast of these bytes, never to a new signature.
        crash_point("token_admin_signed_before_send")
    else:
        client = _client()  # a signed row needs no key: its bytes are already signed
    if _last(rows, "sent") is None:
        outcome = _broadcast(client, queued, signed)
        if outcome != "sent":
            return outcome
    return _receipt_record(client, queued, signed, timeout_s=receipt_timeout_s)


def _nonces_held(address: str) -> list[int]:
    """One above each nonce the operator's recorded transactions hold: those whose action
    has no final row yet (in flight, or about to be (re)broadcast: the node's pending nonce
    does not count bytes that never reached it) and those mined (a final row with a block:
    the pending nonce, read before the lock, may predate them). A nonce of an action refused
    before it was mined is free again, so it is not counted: skipping it would leave a gap
    every later transaction waits behind."""
    signed = {
        row.params["queued_action"]: int(row.params["nonce"])
        for row in AdminAction.objects.filter(
            action__in=TOKEN_ACTIONS, outcome="signed", params__from=address
        ).only("params")
    }
    if not signed:
        return []
    finals = {
        row.params["queued_action"]: row.params
        for row in _by_queued_action()
        .filter(action__in=TOKEN_ACTIONS, outcome__in=FINAL, queued_action__in=list(signed))
        .only("params")
    }
    return [
        nonce + 1
        for queued, nonce in signed.items()
        if queued not in finals or "block" in finals[queued]
    ]


@dataclass(frozen=True)
class _Refusal:
    """Why an action is refused before anything is signed (recorded under the lock)."""

    sentence: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _SignPlan:
    """The chain's answers a signature needs, read before the lock: the transaction
    without its nonce, and the operator's pending nonce as the node counts it."""

    tx: dict
    pending: int


def _sign_plan(client: NtzsClient, queued: AdminAction, op, operator) -> _SignPlan | _Refusal:
    """Every chain read of a signature, outside the nonce lock and any transaction: role,
    revert and gas, fees, pending nonce and balance. A refusal is returned, not recorded:
    another run may have signed meanwhile, which only the rows under the lock tell."""
    w3 = client.w3
    call = queued.params["call"]
    tx = {
        "from": operator.address,
        "to": to_checksum_address(call["to"]),
        "data": call["data"],
        "value": 0,
        "chainId": settings.CHAIN_ID,
    }
    try:
        if not client.has_role(op.role, operator.address):
            return _Refusal(
                f"The operator key {operator.address} no longer holds {op.role}; "
                "grant it or use the Safe payload."
            )
        # Estimated without fees, so a short balance reads as "short", not as a revert.
        gas = w3.eth.estimate_gas(tx) * GAS_MARGIN_NUM // GAS_MARGIN_DEN
    except ContractLogicError as exc:
        return _Refusal(f"The token refused {op.method}: {revert_reason(exc)}.")
    except (ValueError, Web3RPCError) as exc:
        return _Refusal(f"The node refused {op.method}: {revert_reason(exc)}.")
    except (OSError, Web3Exception) as exc:
        raise ChainUnavailable(f"The gas of {op.method} could not be estimated: {exc}") from None
    try:
        tip = client.priority_fee()
        max_fee = 2 * client.next_base_fee() + tip
        pending = w3.eth.get_transaction_count(operator.address, "pending")
        balance = w3.eth.get_balance(operator.address, "latest")
    except (OSError, ValueError, Web3Exception) as exc:
        raise ChainUnavailable(f"The operator's account could not be read: {exc}") from None
    tx |= {"gas": gas, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip, "type": 2}
    # The L1 data fee follows the bytes' size: a provisional signature at the pending nonce
    # measures it (the final nonce differs by a byte at most; the fee counts twice).
    provisional = operator.sign_transaction(tx | {"nonce": pending})
    needed = gas * max_fee + 2 * client.l1_fee(provisional.raw_transaction)
    if balance < needed:
        return _Refusal(
            f"The operator key {operator.address} holds {wei_as_eth(balance)} but {op.method} "
            f"needs up to {wei_as_eth(needed)} for gas; send it at least "
            f"{wei_as_eth(needed - balance)} and run the action again. Nothing was sent.",
            {"balance_wei": str(balance), "needed_wei": str(needed)},
        )
    return _SignPlan(tx=tx, pending=pending)


def _sign(queued: AdminAction, operator, plan: _SignPlan) -> AdminAction:
    """Under the operator's lock, no chain call: the nonce chosen from the pending count
    read before and the rows (``_nonces_held``), the transaction signed and its bytes
    recorded (outcome ``signed``)."""
    nonce = max([plan.pending, *_nonces_held(operator.address)])
    signed = operator.sign_transaction(plan.tx | {"nonce": nonce})
    return _record(
        queued,
        outcome="signed",
        params={
            "tx_hash": hex_str(signed.hash),
            "nonce": nonce,
            "from": operator.address,
            "raw_tx": hex_str(signed.raw_transaction),
        },
    )


def _known(w3, tx_hash: str) -> bool:
    """Whether the node knows the transaction (pending or mined)."""
    try:
        w3.eth.get_transaction(tx_hash)
    except TransactionNotFound:
        return False
    except (OSError, ValueError, Web3Exception) as exc:
        raise ChainUnavailable(f"Transaction {tx_hash} could not be looked up: {exc}") from None
    return True


def _nonce_taken(w3, signed: AdminAction) -> bool:
    """The signed transaction's nonce was consumed, yet the node does not know the
    transaction: another transaction of the operator key took it, so ours can never run."""
    try:
        mined = w3.eth.get_transaction_count(signed.params["from"], "latest")
    except (OSError, ValueError, Web3Exception) as exc:
        raise ChainUnavailable(f"The operator's nonce could not be read: {exc}") from None
    return mined > int(signed.params["nonce"]) and not _known(w3, signed.params["tx_hash"])


def _refused_once(queued: AdminAction, signed: AdminAction, sentence: str, **params) -> str:
    """A refusal after signing, under the lock: a second run may have concluded already."""
    with operator_nonce_lock(signed.params["from"]):
        if (final := _final(_executions(queued.pk))) is not None:
            return final.outcome
        return _refused(queued, sentence, **params)


def _broadcast(client: NtzsClient, queued: AdminAction, signed: AdminAction) -> str:
    """Send the recorded bytes; ``sent`` recorded once. A node's refusal of bytes it already
    has ("already known", "nonce too low" once mined) is no refusal: whether the node knows
    the hash decides."""
    w3 = client.w3
    tx_hash = signed.params["tx_hash"]
    try:
        w3.eth.send_raw_transaction(signed.params["raw_tx"])
    except (ValueError, Web3RPCError) as exc:
        if not _known(w3, tx_hash):
            return _refused_once(
                queued,
                signed,
                f"The node refused the transaction: {revert_reason(exc)}.",
                tx_hash=tx_hash,
                nonce=signed.params["nonce"],
            )
    except (OSError, Web3Exception):
        pass  # it may have arrived: the receipt decides, and a new run sends the same bytes
    crash_point("token_admin_sent_before_record")
    with operator_nonce_lock(signed.params["from"]):
        rows = _executions(queued.pk)
        if _final(rows) is None and _last(rows, "sent") is None:
            _record(
                queued,
                outcome="sent",
                params={key: signed.params[key] for key in ("tx_hash", "nonce", "from")},
            )
    return "sent"


def _receipt_record(
    client: NtzsClient, queued: AdminAction, signed: AdminAction, *, timeout_s: int
) -> str:
    tx_hash = signed.params["tx_hash"]
    w3 = client.w3
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s)
    except TimeExhausted:
        if _nonce_taken(w3, signed):
            return _refused_once(
                queued,
                signed,
                f"Nonce {signed.params['nonce']} of the operator key was used by another "
                f"transaction, so {tx_hash} never ran; nothing was changed. Make the request "
                "again if it is still needed.",
                tx_hash=tx_hash,
            )
        try:  # not mined yet (dropped, or never arrived): the same bytes again
            w3.eth.send_raw_transaction(signed.params["raw_tx"])
        except (OSError, ValueError, Web3Exception):
            pass
        return "sent"
    except (OSError, ValueError, Web3Exception) as exc:
        raise ChainUnavailable(f"The receipt of {tx_hash} could not be read: {exc}") from None
    role = OPERATIONS[queued.params["operation"]].role_arg
    state = _state_storable(
        token_admin_status(address=_holder_of(queued), role=role, client=client)
    )
    base = {"tx_hash": tx_hash, "block": receipt["blockNumber"], "state": state}
    with operator_nonce_lock(signed.params["from"]):  # a second run waiting on the same receipt
        if (final := _final(_executions(queued.pk))) is not None:
            return final.outcome
        if receipt["status"] != 1:
            return _refused(
                queued,
                f"Transaction {tx_hash} of {queued.params['call']['method']} reverted on chain.",
                status=0,
                **base,
            )
        _record(queued, outcome="done", params=base | {"status": 1})
    logger.warning("Token %s done tx=%s state=%s", queued.params["operation"], tx_hash, state)
    return "done"


# --- The redrive: nothing but the message must not decide whether an action finishes ----------


def _unfinished():
    """Operator-lane decisions (``queued``) without a final row, oldest first: never sent,
    signed but not sent, or sent without a receipt yet."""
    finals = _by_queued_action().filter(
        action__in=TOKEN_ACTIONS,
        outcome__in=FINAL,
        queued_action=Cast(OuterRef("pk"), CharField()),
    )
    return (
        AdminAction.objects.filter(action__in=TOKEN_ACTIONS, outcome="queued")
        .exclude(Exists(finals))
        .order_by("at", "pk")
    )


def token_admin_redrive(*, limit: int = REDRIVE_PER_RUN) -> dict[str, int]:
    """The periodic sweep (``minting.tasks.token_admin_redrive``): every operator-lane token
    action without an outcome, older than ``REDRIVE_AFTER``, oldest first and at most
    ``limit``, executed again through the idempotent ``token_admin_execute`` (a lost
    message, retries exhausted during an RPC outage, a crash after signing). Oldest first
    matters: a signed transaction whose bytes never reached the node holds a nonce every
    later one waits behind; its bytes are broadcast again, and if another transaction took
    its nonce it ends refused. Then ``token action stuck`` is opened for each action still
    without an outcome after ``STUCK_AFTER`` and resolved for each that has one. Returns
    counts by outcome."""
    at = now()
    counts: dict[str, int] = {}
    for decision in _unfinished().filter(at__lte=at - REDRIVE_AFTER)[:limit]:
        try:
            outcome = token_admin_execute(
                action_id=decision.pk, receipt_timeout_s=REDRIVE_RECEIPT_TIMEOUT_S
            )
        except ChainError as exc:
            # The chain is down: every other action would meet the same; the next run tries.
            logger.warning("Token action redrive stopped at %s: %s", decision.pk, exc)
            counts["chain_unavailable"] = counts.get("chain_unavailable", 0) + 1
            break
        counts[outcome] = counts.get(outcome, 0) + 1
    counts["stuck"] = _stuck_alerts(at)
    return counts


def _stuck_alerts(at: dt.datetime) -> int:
    stuck = list(_unfinished().filter(at__lte=at - STUCK_AFTER)[:STUCK_ALERTS_SHOWN])
    for decision in stuck:
        rows = _executions(decision.pk)
        step = rows[-1].outcome if rows else "nothing signed"
        target = f" {decision.target_id}" if decision.target_type == "address" else ""
        alert_raise(
            kind=TOKEN_ACTION_STUCK,
            key=str(decision.pk),
            detail=(
                f"{decision.action}{target} queued at {decision.at:%Y-%m-%d %H:%M} UTC has no "
                f"outcome; last step: {step}."
            ),
        )
    still = {str(decision.pk) for decision in stuck}
    open_keys = Alert.objects.filter(kind=TOKEN_ACTION_STUCK, resolved_at__isnull=True).values_list(
        "key", flat=True
    )
    for key in list(open_keys):
        if key not in still and _final(_executions(key)) is not None:
            alert_resolve(kind=TOKEN_ACTION_STUCK, key=key)
    return len(stuck)


def token_admin_executions(*, action_id) -> list[AdminAction]:
    """The rows of an execution in order (``signed``, ``sent``, ``done`` / ``refused``)."""
    return _executions(action_id)


DECISIONS = ("queued", "safe_payload")


def token_admin_decision(*, action_id) -> AdminAction:
    """The decision row of a token action: ``queued`` for the operator key, or
    ``safe_payload``."""
    action = (
        AdminAction.objects.select_related("actor")
        .filter(pk=action_id, action__in=TOKEN_ACTIONS, outcome__in=DECISIONS)
        .first()
    )
    if action is None:
        raise NotFound(_("There is no token action %(id)s.") % {"id": action_id})
    return action


def token_admin_actions_recent(
    *, limit: int = 50, address: str | None = None
) -> list[tuple[AdminAction, AdminAction | None]]:
    """The newest token actions (decision rows), each with the last row of its execution
    (None for a Safe payload, or before the worker ran), optionally for one address."""
    decisions = AdminAction.objects.select_related("actor").filter(
        action__in=TOKEN_ACTIONS, outcome__in=DECISIONS
    )
    if address:
        decisions = decisions.filter(target_type="address", target_id=address)
    decisions = list(decisions.order_by("-at")[:limit])
    last: dict[str, AdminAction] = {}
    for row in (
        _by_queued_action()
        .filter(action__in=TOKEN_ACTIONS, queued_action__in=[str(d.pk) for d in decisions])
        .order_by("at", "pk")
    ):
        last[row.params["queued_action"]] = row
    return [(decision, last.get(str(decision.pk))) for decision in decisions]


def token_admin_requests_pending() -> list[DualControlRequest]:
    """Token four-eyes requests waiting for a checker, oldest first."""
    return list(
        DualControlRequest.objects.select_related("maker")
        .filter(action__in=list(FOUR_EYES), decision=DualControlRequest.Decision.PENDING)
        .order_by("made_at")
    )


def token_admin_outcome(*, action_id) -> AdminAction | None:
    """The last row of an execution (``signed``, ``sent``, ``done`` or ``refused``), None
    before any."""
    rows = _executions(action_id)
    return rows[-1] if rows else None
