"""The entry points the tasks and commands call: the chain client, the shared circuit
breaker around it, and the summary a person reads."""

from __future__ import annotations

import logging

from minting.chain import ChainError, ChainUnavailable, NtzsClient, ntzs_from_settings
from minting.services.confirm import mints_confirm
from minting.services.pipeline import mint_jobs_process

logger = logging.getLogger("minting")


def mint_client() -> NtzsClient:
    """The token on the configured node (primary, or the verified backup)."""
    try:
        from minting.rpc import rpc_connect
    except ImportError:  # the failover provider is optional until configured
        return ntzs_from_settings()
    from django.conf import settings

    from minting.chain import NtzsClient as Client
    from minting.chain import chain_id_check, contract_code_present

    w3 = rpc_connect()
    chain_id_check(w3, expected=settings.CHAIN_ID, rpc_url=settings.BASE_SEPOLIA_RPC_URL)
    if not contract_code_present(w3, settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA):
        raise ChainError("There is no contract code at the configured NTZS address.")
    return Client(w3, settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA)


def _breaker():
    try:
        from minting.breaker import rpc_breaker
    except ImportError:
        return None
    return rpc_breaker()


def _guarded(run, label: str) -> dict:
    breaker = _breaker()
    if breaker is not None and not breaker.allow():
        return {"delayed": 1}
    try:
        result = run()
    except ChainUnavailable as exc:
        logger.warning("%s delayed: %s", label, exc)
        if breaker is not None:
            breaker.record_failure()
        return {"delayed": 1, "reason": str(exc)}
    except ChainError as exc:  # a wrong chain or a missing token: wait, alert, never sign
        logger.error("%s waiting: %s", label, exc)
        return {"waiting": str(exc)}
    if breaker is not None:
        breaker.record_success()
    return result


def mint_jobs_run() -> dict:
    def run() -> dict:
        result = mint_jobs_process(client_factory=mint_client)
        if result.unavailable:
            raise ChainUnavailable(result.preflight_reason)
        return {
            "signed": result.signed,
            "deferred": result.deferred,
            "resolved": result.resolved,
            "sent": result.sent,
            "waiting": result.preflight_reason,
        }

    return _guarded(run, "mint batch")


def confirm_run() -> dict:
    return _guarded(lambda: mints_confirm(client_factory=mint_client), "confirm_mints")
