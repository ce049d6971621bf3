"""The guided minter-key rotation (issue 15 point 5, DESIGN §12 "key rotation"): what any key
can do (``minter_key_check``: role, gas, chain nonces, and the attempts of ours still in
flight), and the procedure, one step after the other, each with its check read from the
database and the chain:

1. stop minting (the old key's ``sending_enabled`` off, ``operator.minting_sending_set``);
2. wait until nothing is in flight (no live attempt of the old key, no pending transaction
   of it on chain) — confirm runs go on while sending is stopped: receipts, rebroadcasts and
   fee bumps of attempts already signed;
3. grant ``MINTER_ROLE`` to the new key (``token_admin.token_grant_minter``: four eyes);
4. switch ``MINTER_PRIVATE_KEY`` and restart the worker (a person's job: shown, not done);
5. start minting: the new key's ``SignerAccount``, its nonce ledger resynced from the chain;
6. revoke the old key's role (``token_admin.token_revoke_minter``: one person);
7. confirm: the old key without the role, the new one with it, the last mint signed by it.

A rotation is recorded as ``AdminAction`` rows (``mint.key_rotation``: begun, then finished
or abandoned), so the page knows the old and the new address across the restart. Only
addresses are ever shown or logged here, never a key.

Above the entry points (it calls ``token_admin`` and ``operator``); nothing in
``minting.services`` imports it."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from core.clock import now
from core.exceptions import ConflictError, ServiceError
from core.models import AdminAction, DualControlRequest
from core.roles import SUPER_ADMIN, require_role
from core.services import admin_action_record
from minting.chain import ChainError, ChainUnavailable, NtzsClient, account_address
from minting.models import MintAttempt, MinterCheckRecord, SignerAccount
from minting.rpc import mint_client
from minting.selectors import wei_as_eth
from minting.services.ledger import signer_account
from minting.services.operator import NEW_KEY_WAITING, minting_sending_set
from minting.services.token_admin import (
    OPERATIONS,
    TokenAdminResult,
    address_normalise,
    token_grant_minter,
    token_revoke_minter,
)

logger = logging.getLogger("minting")
AS = MintAttempt.Status
LIVE = (AS.SIGNED, AS.SENT)
ROTATION_ACTION = "mint.key_rotation"
BEGUN, FINISHED, ABANDONED = "begun", "finished", "abandoned"
# The words on the new key's ledger row until step 5 starts it: a worker restarted with the
# new key must not sign before a person has checked the role and resynced the nonce.


# --- Any key ------------------------------------------------------------------------------------


def configured_minter_address() -> str | None:
    """The address of ``MINTER_PRIVATE_KEY`` (None when unset or not a key). The key itself
    never leaves this function."""
    try:
        return account_address(settings.MINTER_PRIVATE_KEY) if settings.MINTER_PRIVATE_KEY else None
    except (ValueError, TypeError):
        return None


@dataclass(frozen=True)
class InFlight:
    """A live attempt (signed or sent, not yet mined) of a key."""

    nonce: int
    kind: str
    status: str
    tx_hash: str
    deposit_id: uuid.UUID | None
    created_at: object
    sent_at: object


def attempts_in_flight(address: str) -> list[InFlight]:
    """The live attempts of the key at ``address`` on this chain, lowest nonce first."""
    rows = (
        MintAttempt.objects.filter(
            signer__address__iexact=address, signer__chain_id=settings.CHAIN_ID, status__in=LIVE
        )
        .order_by("nonce", "created_at")
        .values_list(
            "nonce",
            "kind",
            "status",
            "tx_hash",
            "mint_transaction__deposit_id",
            "created_at",
            "sent_at",
        )
    )
    return [InFlight(*row) for row in rows]


def signer_of(address: str) -> SignerAccount | None:
    return SignerAccount.objects.filter(address__iexact=address, chain_id=settings.CHAIN_ID).first()


@dataclass(frozen=True)
class KeyCheck:
    """What a key can do now, as the chain and our books say."""

    address: str
    contract_address: str
    has_minter_role: bool
    balance_wei: int
    latest_nonce: int  # eth_getTransactionCount(address, latest): mined
    pending_nonce: int  # ... "pending": mined plus what the node holds for it
    paused: bool
    is_configured: bool  # the address of MINTER_PRIVATE_KEY
    ledger: SignerAccount | None  # our nonce ledger of the key (None: it never signed here)
    in_flight: list[InFlight] = field(default_factory=list)

    @property
    def gas_ok(self) -> bool:
        return self.balance_wei >= settings.MINTER_MIN_GAS_WEI

    @property
    def balance(self) -> str:
        return wei_as_eth(self.balance_wei)

    @property
    def minimum(self) -> str:
        return wei_as_eth(settings.MINTER_MIN_GAS_WEI)

    @property
    def sending_enabled(self) -> bool | None:
        return self.ledger.sending_enabled if self.ledger else None

    @property
    def problems(self) -> list[str]:
        """Why this key cannot mint, one sentence each (empty: it can)."""
        found = []
        if not self.has_minter_role:
            found.append(_("%(a)s does not hold MINTER_ROLE") % {"a": self.address})
        if not self.gas_ok:
            found.append(
                _("%(a)s holds %(b)s, below MINTER_MIN_GAS_ETH (%(m)s)")
                % {"a": self.address, "b": self.balance, "m": self.minimum}
            )
        return found


def minter_key_check(*, address: str, client: NtzsClient | None = None) -> KeyCheck:
    """Role, gas and chain nonces of any address (the pipeline's own one-batch read), with
    our ledger row and live attempts of it. Raises ChainError when the chain cannot be
    read; a malformed address is a ServiceError."""
    address = address_normalise(address)
    client = client or mint_client()
    state = client.minter_state(address)
    return KeyCheck(
        address=address,
        contract_address=client.address,
        has_minter_role=state.is_minter,
        balance_wei=state.balance_wei,
        latest_nonce=state.mined_nonce,
        pending_nonce=state.pending_nonce,
        paused=state.paused,
        is_configured=address == configured_minter_address(),
        ledger=signer_of(address),
        in_flight=attempts_in_flight(address),
    )


# --- The rotation record ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    id: uuid.UUID  # the "begun" AdminAction
    old_address: str
    new_address: str
    begun_by: str
    begun_at: object
    reason: str


def key_rotation_current() -> Rotation | None:
    """The rotation begun and not yet finished or abandoned (at most one)."""
    begun = (
        AdminAction.objects.filter(action=ROTATION_ACTION, outcome=BEGUN)
        .select_related("actor")
        .order_by("-at")
        .first()
    )
    if (
        begun is None
        or AdminAction.objects.filter(
            action=ROTATION_ACTION,
            outcome__in=(FINISHED, ABANDONED),
            params__rotation=str(begun.pk),
        ).exists()
    ):
        return None
    return Rotation(
        id=begun.pk,
        old_address=begun.params["old"],
        new_address=begun.params["new"],
        begun_by=str(begun.actor),
        begun_at=begun.at,
        reason=begun.reason,
    )


def _rotation_required() -> Rotation:
    rotation = key_rotation_current()
    if rotation is None:
        raise ConflictError(_("No key rotation is under way; begin one with the new address."))
    return rotation


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say why (a reason): it goes into the audit log."))
    return reason[:2000]


def key_rotation_begin(
    *, new_address: str, actor, reason: str, client: NtzsClient | None = None
) -> Rotation:
    """Record the rotation from the configured key to ``new_address``, and make the new
    key's ledger row now — at the chain's pending count, with sending off until step 5 —
    so a worker restarted with the new key signs nothing before a person starts it."""
    require_role(actor, SUPER_ADMIN, doing=_("rotate the minter key"))
    reason = _reason(reason)
    new = address_normalise(new_address)
    old = configured_minter_address()
    if old is None:
        raise ServiceError(_("MINTER_PRIVATE_KEY is not set, so there is no key to rotate."))
    if new == old:
        raise ServiceError(
            _("%(a)s is the minter key already; name the key to rotate to.") % {"a": new}
        )
    if settings.OPERATOR_PRIVATE_KEY and account_address(settings.OPERATOR_PRIVATE_KEY) == new:
        raise ServiceError(
            _(
                "%(a)s is the operator key; the minter must be another key (the nonce ledger "
                "would take the operator's transactions for ones made outside the system)."
            )
            % {"a": new}
        )
    if key_rotation_current() is not None:
        raise ConflictError(_("A key rotation is already under way; finish or abandon it first."))
    try:
        pending = (client or mint_client()).w3.eth.get_transaction_count(new, "pending")
    except (ChainError, OSError, ValueError) as exc:
        raise ChainUnavailable(
            _("The chain could not be read, so the rotation was not begun: %(e)s") % {"e": exc}
        ) from None
    with transaction.atomic(durable=True):
        signer = signer_account(address=new, chain_id=settings.CHAIN_ID, chain_next_nonce=pending)
        SignerAccount.objects.filter(pk=signer.pk).update(
            sending_enabled=False, disabled_reason=NEW_KEY_WAITING, updated_at=now()
        )
        action = admin_action_record(
            actor=actor,
            action=ROTATION_ACTION,
            target_type="signer",
            target_id=old,
            params={"old": old, "new": new},
            outcome=BEGUN,
            reason=reason,
        )
    logger.warning("minter key rotation begun by %s: %s -> %s", actor, old, new)
    return Rotation(action.pk, old, new, str(actor), action.at, reason)


def key_rotation_stop(*, actor, reason: str) -> SignerAccount:
    """Step 1: the old key stops signing new batches; what it signed is still confirmed."""
    require_role(actor, SUPER_ADMIN, doing=_("rotate the minter key"))
    rotation = _rotation_required()
    if configured_minter_address() != rotation.old_address:
        raise ConflictError(
            _("MINTER_PRIVATE_KEY is no longer the old key %(a)s; there is nothing to stop here.")
            % {"a": rotation.old_address}
        )
    return minting_sending_set(
        enabled=False, reason=f"key rotation: {_reason(reason)}", actor=actor
    )


def key_rotation_grant(*, actor, reason: str) -> TokenAdminResult:
    """Step 3: MINTER_ROLE for the new key — a four-eyes request (the approval dispatches
    the operator-key task or the Safe payload)."""
    require_role(actor, SUPER_ADMIN, doing=_("rotate the minter key"))
    rotation = _rotation_required()
    return token_grant_minter(address=rotation.new_address, actor=actor, reason=_reason(reason))


def _old_key_settled(rotation: Rotation, client: NtzsClient, doing: str) -> None:
    live = attempts_in_flight(rotation.old_address)
    if live:
        raise ConflictError(
            _(
                "Cannot %(doing)s: the old key %(a)s still has %(n)s transaction(s) in flight "
                "(nonces %(nonces)s); wait until confirm_mints has settled them."
            )
            % {
                "doing": doing,
                "a": rotation.old_address,
                "n": len(live),
                "nonces": ", ".join(str(n) for n in sorted({a.nonce for a in live})),
            }
        )
    old = client.minter_state(rotation.old_address)
    if old.pending_nonce != old.mined_nonce:
        raise ConflictError(
            _(
                "Cannot %(doing)s: the node still holds %(n)s unmined transaction(s) of the old "
                "key %(a)s; wait until they are mined."
            )
            % {"doing": doing, "n": old.pending_nonce - old.mined_nonce, "a": rotation.old_address}
        )


def key_rotation_start(*, actor, reason: str, client: NtzsClient | None = None) -> SignerAccount:
    """Step 5: sending on for the new key, its nonce ledger resynced from the chain — only
    once MINTER_PRIVATE_KEY is the new key, the old one has nothing in flight and the new
    one holds the role."""
    require_role(actor, SUPER_ADMIN, doing=_("rotate the minter key"))
    rotation = _rotation_required()
    reason = _reason(reason)
    if configured_minter_address() != rotation.new_address:
        raise ConflictError(
            _(
                "MINTER_PRIVATE_KEY is not the new key %(a)s yet: switch it in the environment "
                "and restart the worker (and this web process) first."
            )
            % {"a": rotation.new_address}
        )
    client = client or mint_client()
    _old_key_settled(rotation, client, _("start minting with the new key"))
    new = client.minter_state(rotation.new_address)
    if not new.is_minter:
        raise ConflictError(
            _("The new key %(a)s does not hold MINTER_ROLE yet: grant it first (step 3).")
            % {"a": rotation.new_address}
        )
    return minting_sending_set(
        enabled=True,
        reason=f"key rotation: {reason}",
        actor=actor,
        chain_pending_nonce=new.pending_nonce,
        rotation_checked=True,
    )


def key_rotation_revoke(
    *, actor, reason: str, client: NtzsClient | None = None
) -> TokenAdminResult:
    """Step 6: MINTER_ROLE taken from the old key (one person). Refused while anything of
    the old key can still land: its mint would revert and need a retry."""
    require_role(actor, SUPER_ADMIN, doing=_("rotate the minter key"))
    rotation = _rotation_required()
    reason = _reason(reason)
    _old_key_settled(rotation, client or mint_client(), _("revoke the old key's role"))
    return token_revoke_minter(address=rotation.old_address, actor=actor, reason=reason)


def key_rotation_finish(
    *, actor, reason: str, abandon: bool = False, client: NtzsClient | None = None
) -> AdminAction:
    """Step 7: the rotation closed once every check passes; or abandoned (recorded as such,
    whatever state the keys are in)."""
    require_role(actor, SUPER_ADMIN, doing=_("rotate the minter key"))
    rotation = _rotation_required()
    reason = _reason(reason)
    if not abandon:
        steps = key_rotation_steps(rotation=rotation, client=client)
        open_steps = [step for step in steps if not step.done]
        if open_steps:
            raise ConflictError(
                _("The rotation is not finished: step %(n)s (%(title)s): %(detail)s")
                % {
                    "n": open_steps[0].number,
                    "title": open_steps[0].title,
                    "detail": open_steps[0].detail,
                }
            )
    action = admin_action_record(
        actor=actor,
        action=ROTATION_ACTION,
        target_type="signer",
        target_id=rotation.old_address,
        params={"rotation": str(rotation.id), "old": rotation.old_address,
                "new": rotation.new_address},
        outcome=ABANDONED if abandon else FINISHED,
        reason=reason,
    )  # fmt: skip
    logger.warning(
        "minter key rotation %s by %s: %s -> %s",
        ABANDONED if abandon else FINISHED,
        actor,
        rotation.old_address,
        rotation.new_address,
    )
    return action


# --- The steps' checks --------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    number: int
    name: str  # stop, drain, grant, switch, start, revoke, confirm
    title: str
    done: bool
    detail: str  # one sentence: what the check found
    unknown: bool = False  # the chain could not be read: neither done nor not done


@dataclass(frozen=True)
class RotationView:
    """Everything the page shows, computed here (the template only lays it out)."""

    rotation: Rotation
    steps: list[Step]
    old: KeyCheck | None
    new: KeyCheck | None
    old_in_flight: list[InFlight]
    configured: str | None
    chain_error: str = ""
    grant_request: DualControlRequest | None = None
    token_actions: list[AdminAction] = field(default_factory=list)
    worker_check: MinterCheckRecord | None = None

    @property
    def current(self) -> Step | None:
        return next((step for step in self.steps if not step.done), None)

    @property
    def complete(self) -> bool:
        return all(step.done for step in self.steps)

    @property
    def actionable(self) -> set[str]:
        """The steps whose action the page offers now: the first open one (the procedure is
        walked in order); the grant also as soon as minting is stopped, since its second
        person may take a while; the finish once every check passes."""
        names = set()
        if self.current is not None and not self.current.unknown:
            names.add(self.current.name)
        grant = self.steps[2]
        if self.steps[0].done and not grant.done and not grant.unknown:
            if self.grant_request is None and not (self.new and self.new.has_minter_role):
                names.add("grant")
        if self.complete:
            names.add("confirm")
        names.discard("drain")  # nothing to do but wait
        names.discard("switch")  # done in the environment, not here
        if self.grant_request is not None or (self.new and self.new.has_minter_role):
            names.discard("grant")
        return names


def _last_worker_mint() -> MintAttempt | None:
    return (
        MintAttempt.objects.filter(
            kind__in=(MintAttempt.Kind.MINT, MintAttempt.Kind.FEE_BUMP),
            status=AS.MINED_OK,
            signer__chain_id=settings.CHAIN_ID,
        )
        .select_related("signer")
        .order_by("-created_at")
        .first()
    )


def _pending_grant(rotation: Rotation) -> DualControlRequest | None:
    return DualControlRequest.objects.filter(
        action=OPERATIONS["grant_minter"].request_action,
        target_id=rotation.new_address,
        decision=DualControlRequest.Decision.PENDING,
    ).first()


def _token_actions(rotation: Rotation) -> list[AdminAction]:
    """The grant and revoke actions since the rotation began, newest first (their outcome:
    queued, safe_payload, sent, done, refused)."""
    return list(
        AdminAction.objects.filter(
            action__in=("token.grant_minter", "token.revoke_minter"),
            target_id__in=(rotation.old_address, rotation.new_address),
            at__gte=rotation.begun_at,
        ).order_by("-at")[:20]
    )


def key_rotation_steps(*, rotation: Rotation, client: NtzsClient | None = None) -> list[Step]:
    return key_rotation_view(rotation=rotation, client=client).steps


def key_rotation_view(*, rotation: Rotation, client: NtzsClient | None = None) -> RotationView:
    """Each step's check, in order. Chain reads first (two batches); an unreadable chain
    leaves the chain checks unknown, with the reason, never "done"."""
    old = new = None
    chain_error = ""
    try:
        client = client or mint_client()
        old = minter_key_check(address=rotation.old_address, client=client)
        new = minter_key_check(address=rotation.new_address, client=client)
    except ChainError as exc:
        chain_error = str(exc)
    except (OSError, ValueError) as exc:
        chain_error = str(ChainUnavailable(f"the chain could not be read ({type(exc).__name__})"))
    configured = configured_minter_address()
    old_ledger = signer_of(rotation.old_address)
    new_ledger = signer_of(rotation.new_address)
    in_flight = attempts_in_flight(rotation.old_address)
    grant_request = _pending_grant(rotation)
    unreadable = _("the chain could not be read: %(e)s") % {"e": chain_error}
    steps: list[Step] = []

    # 1. Stop minting.
    if old_ledger is None:
        steps.append(
            Step(
                1,
                "stop",
                _("Stop minting"),
                True,
                _("The old key never signed here: nothing to stop."),
            )
        )
    elif old_ledger.sending_enabled:
        steps.append(
            Step(
                1,
                "stop",
                _("Stop minting"),
                False,
                _("Sending is on for the old key %(a)s.") % {"a": old_ledger.address},
            )
        )
    else:
        steps.append(
            Step(
                1,
                "stop",
                _("Stop minting"),
                True,
                _("Sending is off for the old key: %(r)s")
                % {"r": old_ledger.disabled_reason or "—"},
            )
        )

    # 2. Nothing in flight.
    title = _("Wait until nothing is in flight")
    if in_flight and configured != rotation.old_address:
        # confirm_mints follows the configured key only: these would wait forever.
        steps.append(
            Step(
                2,
                "drain",
                title,
                False,
                _(
                    "%(n)s attempt(s) of the old key are still in flight, and MINTER_PRIVATE_KEY "
                    "is no longer the old key: confirm_mints follows only the configured key, "
                    "so switch back to the old key and restart the worker until they settle."
                )
                % {"n": len(in_flight)},
            )
        )
    elif in_flight:
        steps.append(
            Step(
                2,
                "drain",
                title,
                False,
                _(
                    "%(n)s attempt(s) of the old key are still in flight; confirm_mints "
                    "settles them (receipts, rebroadcasts, fee bumps go on)."
                )
                % {"n": len(in_flight)},
            )
        )
    elif old is None:
        steps.append(Step(2, "drain", title, False, unreadable, unknown=True))
    elif old.pending_nonce != old.latest_nonce:
        steps.append(
            Step(
                2,
                "drain",
                title,
                False,
                _("The node holds %(n)s unmined transaction(s) of the old key.")
                % {"n": old.pending_nonce - old.latest_nonce},
            )
        )
    else:
        steps.append(
            Step(
                2,
                "drain",
                title,
                steps[0].done,
                _("No attempt of the old key is in flight (chain nonce %(n)s).")
                % {"n": old.latest_nonce}
                if steps[0].done
                else _("Nothing is in flight now, but sending is still on."),
            )
        )

    # 3. Grant MINTER_ROLE to the new key.
    title = _("Grant MINTER_ROLE to the new key")
    if new is None:
        steps.append(Step(3, "grant", title, False, unreadable, unknown=True))
    elif new.has_minter_role and new.gas_ok:
        steps.append(
            Step(
                3,
                "grant",
                title,
                True,
                _("%(a)s holds MINTER_ROLE and %(b)s of gas.")
                % {"a": new.address, "b": new.balance},
            )
        )
    elif new.has_minter_role:
        steps.append(
            Step(
                3,
                "grant",
                title,
                False,
                _(
                    "%(a)s holds MINTER_ROLE but only %(b)s of gas (at least %(m)s "
                    "needed): top it up."
                )
                % {"a": new.address, "b": new.balance, "m": new.minimum},
            )
        )
    elif grant_request is not None:
        steps.append(
            Step(
                3,
                "grant",
                title,
                False,
                _("Waiting for a second super admin to approve request %(id)s.")
                % {"id": grant_request.pk},
            )
        )
    else:
        steps.append(
            Step(
                3, "grant", title, False, _("%(a)s does not hold MINTER_ROLE.") % {"a": new.address}
            )
        )

    # 4. Switch MINTER_PRIVATE_KEY and restart the worker.
    title = _("Switch MINTER_PRIVATE_KEY and restart the worker")
    if configured == rotation.new_address:
        steps.append(
            Step(
                4,
                "switch",
                title,
                True,
                _("MINTER_PRIVATE_KEY is the new key %(a)s in this process.") % {"a": configured},
            )
        )
    else:
        steps.append(
            Step(
                4,
                "switch",
                title,
                False,
                _("MINTER_PRIVATE_KEY is %(c)s here, not the new key %(a)s.")
                % {"c": configured or _("not set"), "a": rotation.new_address},
            )
        )

    # 5. Start minting with the new key.
    title = _("Start minting (new nonce ledger, resynced from the chain)")
    started = AdminAction.objects.filter(
        action="mint.start", target_id=rotation.new_address, at__gte=rotation.begun_at
    ).exists()
    if new_ledger is not None and new_ledger.sending_enabled and started:
        steps.append(
            Step(
                5,
                "start",
                title,
                True,
                _("Sending is on for %(a)s; next nonce %(n)s.")
                % {"a": new_ledger.address, "n": new_ledger.next_nonce},
            )
        )
    else:
        steps.append(
            Step(
                5,
                "start",
                title,
                False,
                _("Sending is not started for the new key %(a)s.") % {"a": rotation.new_address},
            )
        )

    # 6. Revoke the old key's role.
    title = _("Revoke the old key's MINTER_ROLE")
    if old is None:
        steps.append(Step(6, "revoke", title, False, unreadable, unknown=True))
    elif old.has_minter_role:
        steps.append(
            Step(
                6, "revoke", title, False, _("%(a)s still holds MINTER_ROLE.") % {"a": old.address}
            )
        )
    else:
        steps.append(
            Step(
                6,
                "revoke",
                title,
                True,
                _("%(a)s no longer holds MINTER_ROLE.") % {"a": old.address},
            )
        )

    # 7. Confirm.
    title = _("Confirm")
    last = _last_worker_mint()
    if old is None or new is None:
        steps.append(Step(7, "confirm", title, False, unreadable, unknown=True))
    elif old.has_minter_role or not new.has_minter_role:
        steps.append(
            Step(
                7,
                "confirm",
                title,
                False,
                _("The old key must be without MINTER_ROLE and the new one with it."),
            )
        )
    elif last is None or last.signer.address != rotation.new_address or not started:
        steps.append(
            Step(
                7,
                "confirm",
                title,
                False,
                _("Waiting for a mint signed by the new key (the last one was signed by %(s)s).")
                % {"s": last.signer.address if last else _("no key")},
            )
        )
    else:
        steps.append(
            Step(
                7,
                "confirm",
                title,
                True,
                _("The last mint (%(tx)s) was signed by the new key.") % {"tx": last.tx_hash},
            )
        )

    return RotationView(
        rotation=rotation,
        steps=steps,
        old=old,
        new=new,
        old_in_flight=in_flight,
        configured=configured,
        chain_error=chain_error,
        grant_request=grant_request,
        token_actions=_token_actions(rotation),
        worker_check=MinterCheckRecord.objects.filter(name="minter").first(),
    )
