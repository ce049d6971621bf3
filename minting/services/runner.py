"""The entry points the tasks and commands call: one pipeline run and one confirm run, each
behind the shared circuit breaker, with the chain client from ``minting.rpc``.

The top of the one-way order of ``minting.services`` (docs/architecture.md):
runner/lanes → pipeline/confirm/safe/operator → recording/deploy →
sending/ledger/deposit_refs."""

from __future__ import annotations

import logging

from minting.breaker import rpc_breaker
from minting.chain import ChainError, ChainUnavailable
from minting.rpc import mint_client
from minting.services.confirm import mints_confirm, mints_finality_check
from minting.services.pipeline import mint_jobs_process, mint_run_needed, mints_lane_route
from minting.services.safe import safe_awaiting_recheck
from minting.services.sending import Sent

__all__ = ["confirm_run", "mint_client", "mint_jobs_run"]

logger = logging.getLogger("minting")


def _backed_off(result: dict) -> int:
    """How many sends the node refused for now (pool full, rate limited, batch refused)."""
    sent = result.get("sent")
    return int(result.get(Sent.BACK_OFF.value, 0)) + (
        int(sent.get(Sent.BACK_OFF.value, 0)) if isinstance(sent, dict) else 0
    )


def _guarded(run, label: str) -> dict:
    """``run()`` behind the breaker: a chain that is unavailable, or asks us to back off,
    counts as a failure (never an exception out of the task); anything else is a success."""
    breaker = rpc_breaker()
    if not breaker.allow():
        return {"delayed": 1}
    try:
        result = run()
    except ChainUnavailable as exc:
        logger.warning("%s delayed: %s", label, exc)
        breaker.record_failure()
        return {"delayed": 1, "reason": str(exc)}
    except ChainError as exc:  # a wrong chain or a missing token: wait, alert, never sign
        logger.error("%s waiting: %s", label, exc)
        return {"waiting": str(exc)}
    backed_off = _backed_off(result)
    if backed_off:
        logger.warning("%s: the node asked us to back off (%d sends wait)", label, backed_off)
        breaker.record_failure()
    else:
        breaker.record_success()
    return result


def mint_jobs_run() -> dict:
    """A run with no chain work (nothing waits, or no room in flight) says so without
    touching the breaker: counted as a success, an idle run every few seconds would reset
    the failures of a chain that is down, and take the half-open trial without a call.
    MINT_LANE's routing is database work only, so it runs first, outside the breaker."""
    routing = mints_lane_route()
    if not mint_run_needed():
        return {"routed_to_safe": routing.routed} if routing.routed else {"idle": 1}

    def run() -> dict:
        result = mint_jobs_process(client_factory=mint_client)
        if result.unavailable:
            raise ChainUnavailable(result.preflight_reason)
        return {
            "signed": result.signed,
            "deferred": result.deferred,
            "resolved": result.resolved,
            "unaffordable": result.unaffordable,
            "sent": result.sent,
            "waiting": result.preflight_reason,
        }

    return _guarded(run, "mint batch")


def confirm_run() -> dict:
    """The Safe lane's mints awaiting confirmations, then the worker's confirm run."""

    def run() -> dict:
        client = mint_client()
        counts: dict[str, int] = {}
        recorded_safe = safe_awaiting_recheck(client)
        if recorded_safe:
            counts["safe_recorded"] = recorded_safe
        counts |= mints_confirm(client_factory=lambda: client)
        return counts | mints_finality_check(client=client)

    return _guarded(run, "confirm_mints")
