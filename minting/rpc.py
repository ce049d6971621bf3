"""Chain access with failover and read retries (DESIGN §7.6).

``rpc_connect()`` gives a Web3 whose provider sends every request to ``BASE_SEPOLIA_RPC_URL``
and, when that node cannot be reached, times out or answers HTTP 5xx (or 429, rate limited),
to ``BASE_SEPOLIA_RPC_URL_BACKUP``. The backup is trusted only once it has been verified in
this process: same ``eth_chainId`` and, since two chains may share an id, the same block hash
at the NTZS deploy block as the one ``deploy_ntzs`` recorded. A backup that fails the check is
never used: the request raises ``WrongChain`` and the ``backup rpc rejected`` alert opens.

A request that fails over is the same bytes sent to another node of the same chain. For
``eth_sendRawTransaction`` that is the same signed transaction (same hash, same nonce): it
can be included once at most.

The provider never retries by itself; ``rpc_read`` does, for reads and for rebroadcasts of
already-signed bytes only. Sending a newly signed transaction is never retried blindly: when
a send times out, the node may have it, so the mint pipeline persists the signed bytes first
and its recovery step looks the hash up and rebroadcasts exactly those bytes.

Batches are split to at most ``RPC_BATCH_MAX`` items (Base's public endpoints refuse larger
ones and rate-limit each item). A node's refusal is classified by ``rpc_error_kind``: "back
off" (429, -32016/-32017 rate limits, "txpool is full", "nonce too high") or "unavailable"
(-32014 batch too large, -32005 limit exceeded); a single call told to back off raises
``ChainBackOff``, a ``ChainUnavailable``, so every caller's chain-unavailable path (and the
shared breaker) handles it and no task crashes.

URLs are only ever shown through ``redact_url`` (they often carry an API key); this module
makes its HTTP requests itself, so web3's debug lines, which print the whole URL, never run.
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

import requests
from django.conf import settings
from web3 import Web3
from web3._utils.batching import sort_batch_response_by_response_ids
from web3.exceptions import BlockNotFound, ProviderConnectionError
from web3.middleware import AttributeDictMiddleware
from web3.providers.base import JSONBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from core.services import alert_raise, alert_resolve
from minting.chain import (
    RPC_TIMEOUT_S,
    ChainError,
    ChainUnavailable,
    NtzsClient,
    WrongChain,
    chain_id_check,
    contract_code_present,
    redact_url,
)
from minting.models import TokenDeployment

logger = logging.getLogger(__name__)

T = TypeVar("T")

BACKUP_REJECTED_ALERT = "backup rpc rejected"
# After the primary fails, requests go straight to the backup for this long: a primary that
# hangs would otherwise cost a full timeout on every request.
PRIMARY_RETRY_S = 30.0
_HEADERS = {"Content-Type": "application/json"}


# --- What a node's refusal means (DESIGN §7.6) ---------------------------------------------


class ChainBackOff(ChainUnavailable):
    """The node is rate-limiting us or its pool is full: answer later, more slowly."""


class RpcErrorKind(enum.StrEnum):
    BACK_OFF = "back_off"  # rate limited, the sender's pool slots full: slow down, send later
    UNAVAILABLE = "unavailable"  # the endpoint cannot serve this now (batch too large, limits)
    ANSWER = "answer"  # an answer about the request itself (a revert, a known transaction)


# Codes Base's proxies and the OP Stack sequencer use: -32016 an item over the rate limit,
# -32017 a sender over its rate limit, 429 Too Many Requests; -32014 a batch over the size
# limit, -32005 "limit exceeded" (also a getLogs range: the log reader decides that one).
BACK_OFF_CODES = frozenset({-32016, -32017, 429})
UNAVAILABLE_CODES = frozenset({-32014, -32005})
BACK_OFF_WORDS = (
    "rate limit",
    "too many requests",
    "txpool is full",
    "nonce too high",
    "nonce out of range",
)


def rpc_error_kind(error: object) -> RpcErrorKind:
    """How to treat one JSON-RPC error object (or a message): back off, count the node as
    unavailable, or read it as the answer to the request."""
    code, message = None, str(error)
    if isinstance(error, dict):
        code, message = error.get("code"), str(error.get("message", ""))
    lowered = message.lower()
    if code in BACK_OFF_CODES or any(words in lowered for words in BACK_OFF_WORDS):
        return RpcErrorKind.BACK_OFF
    if code in UNAVAILABLE_CODES:
        return RpcErrorKind.UNAVAILABLE
    return RpcErrorKind.ANSWER


def _batch_error_items(ids: list[int], error: object) -> list[dict]:
    """One error item per request of a batch the node refused as a whole."""
    if not isinstance(error, dict):
        error = {"code": -32603, "message": str(error)}
    return [{"jsonrpc": "2.0", "id": request_id, "error": error} for request_id in ids]


class _EndpointDown(Exception):
    """The node did not answer usefully; ``str()`` is a short reason without the URL."""


class FailoverHTTPProvider(JSONBaseProvider):
    """JSON-RPC over HTTP to a primary node, failing over to a verified backup node."""

    logger = logger

    def __init__(
        self,
        *,
        primary_url: str,
        backup_url: str = "",
        verify_backup: Callable[[str], None] | None = None,
        timeout_s: float = RPC_TIMEOUT_S,
        primary_retry_s: float = PRIMARY_RETRY_S,
        batch_max: int | None = None,
    ):
        super().__init__()
        self.batch_max = batch_max
        self.primary_url = primary_url
        self.backup_url = backup_url
        self.timeout_s = timeout_s
        self.primary_retry_s = primary_retry_s
        self._verify_backup = verify_backup
        self._session = requests.Session()
        self._primary_down_until = 0.0  # time.monotonic(); 0 while the primary is in use
        self._primary_down_reason = ""

    def __str__(self) -> str:
        backup = f", backup {redact_url(self.backup_url)}" if self.backup_url else ""
        return f"RPC {redact_url(self.primary_url)}{backup}"

    def _post(self, url: str, payload: bytes) -> bytes:
        try:
            response = self._session.post(
                url, data=payload, headers=_HEADERS, timeout=self.timeout_s
            )
        except requests.Timeout:
            raise _EndpointDown(f"no answer within {self.timeout_s:g} s") from None
        except requests.RequestException as exc:  # refused, reset, DNS: the text has the URL
            raise _EndpointDown(type(exc).__name__) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise _EndpointDown(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise ChainError(
                f"The RPC node at {redact_url(url)} refused the request with HTTP "
                f"{response.status_code}; check the URL and its API key."
            )
        return response.content

    def _send(self, payload: bytes) -> bytes:
        if time.monotonic() >= self._primary_down_until:
            try:
                raw = self._post(self.primary_url, payload)
            except _EndpointDown as down:
                if not self.backup_url:
                    # 429: the node is there but rate-limits us; callers slow down.
                    unavailable = ChainBackOff if str(down) == "HTTP 429" else ChainUnavailable
                    raise unavailable(
                        f"The RPC node at {redact_url(self.primary_url)} failed ({down}) and "
                        "no BASE_SEPOLIA_RPC_URL_BACKUP is configured."
                    ) from None
                self._primary_down_until = time.monotonic() + self.primary_retry_s
                self._primary_down_reason = str(down)
                logger.warning(
                    "Primary RPC %s failed (%s); using the backup RPC %s",
                    redact_url(self.primary_url),
                    down,
                    redact_url(self.backup_url),
                )
            else:
                if self._primary_down_reason:
                    logger.warning(
                        "Primary RPC %s answers again; leaving the backup",
                        redact_url(self.primary_url),
                    )
                    self._primary_down_reason = ""
                return raw
        try:
            if self._verify_backup is not None:
                self._verify_backup(self.backup_url)  # raises WrongChain: never sent to it
            return self._post(self.backup_url, payload)
        except _EndpointDown as down:
            backup_reason = str(down)
        except ChainUnavailable:
            backup_reason = "no answer to its verification"
        raise ChainUnavailable(
            f"Neither the primary RPC {redact_url(self.primary_url)} "
            f"({self._primary_down_reason}) nor the backup RPC "
            f"{redact_url(self.backup_url)} ({backup_reason}) answered."
        )

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        response = self.decode_rpc_response(self._send(self.encode_rpc_request(method, params)))
        error = response.get("error") if isinstance(response, dict) else None
        if error is not None and rpc_error_kind(error) is RpcErrorKind.BACK_OFF:
            # A rate limit is the node's state, not an answer about this request: the
            # callers' chain-unavailable handling (and the breaker) deal with it.
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ChainBackOff(f"The RPC node asked us to back off on {method}: {message}")
        return response

    def make_batch_request(
        self, requests: list[tuple[RPCEndpoint, Any]]
    ) -> list[RPCResponse] | RPCResponse:
        """The requests in batches of at most ``batch_max`` items, answers in request order.

        A batch the node refuses as a whole (one error object) gives that error to each of
        its requests and to every later one, which is not sent: after a refusal, sending
        more (a send's higher nonces) only meets the same limit."""
        size = self.batch_max or len(requests) or 1
        answers: list[RPCResponse] = []
        refusal: object = None
        for start in range(0, len(requests), size):
            payload = self.encode_batch_rpc_request(requests[start : start + size])
            ids = [item["id"] for item in json.loads(payload)]
            if refusal is None:
                response = self.decode_rpc_response(self._send(payload))
                if isinstance(response, list):
                    by_id = {item.get("id"): item for item in response}
                    if all(request_id in by_id for request_id in ids):
                        answers += [by_id[request_id] for request_id in ids]
                        continue
                    if len(response) == len(ids):  # no ids back: trust the order
                        answers += sort_batch_response_by_response_ids(response)
                        continue
                    refusal = {"code": -32603, "message": "the node's batch answer lost items"}
                else:
                    refusal = response.get("error", response)
                logger.warning(
                    "RPC batch of %d refused by the node (%s); %d later requests not sent",
                    len(ids),
                    refusal,
                    len(requests) - start - len(ids),
                )
            answers += _batch_error_items(ids, refusal)
        return answers

    def is_connected(self, show_traceback: bool = False) -> bool:
        try:
            return super().is_connected(show_traceback=show_traceback)
        except ChainError as exc:
            if show_traceback:
                raise ProviderConnectionError(str(exc)) from None
            return False


# --- Backup verification ----------------------------------------------------------------------

# (backup URL, chain id, token address, deploy block) already proven in this process.
_verified_backups: set[tuple[str, int, str, int | None]] = set()
_verified_lock = threading.Lock()
# (primary URL, chain id, token address) → until when its last proof holds (monotonic).
_verified_primaries: dict[tuple[str, int, str], float] = {}
PRIMARY_PROOF_S = 60.0


def rpc_backup_verifications_forget() -> None:
    """Forget which nodes were verified (tests; a process normally never needs it)."""
    with _verified_lock:
        _verified_backups.clear()
        _verified_primaries.clear()


def _backup_reject(backup_url: str, sentence: str) -> WrongChain:
    alert_raise(kind=BACKUP_REJECTED_ALERT, key=redact_url(backup_url), detail=sentence)
    return WrongChain(sentence)


def rpc_backup_verify(
    backup_url: str,
    *,
    chain_id: int,
    contract_address: str,
    deploy_block: int | None,
    timeout_s: float = RPC_TIMEOUT_S,
) -> None:
    """Prove that ``backup_url`` serves the chain the token was deployed on, once per
    process; raise ``WrongChain`` (and open the alert) when it does not, ``ChainUnavailable``
    when it cannot be asked."""
    cache_key = (backup_url, chain_id, contract_address.lower(), deploy_block)
    if cache_key in _verified_backups:
        return
    shown = redact_url(backup_url)
    deployment = (
        TokenDeployment.objects.filter(
            chain_id=chain_id, contract_address__iexact=contract_address
        ).first()
        if contract_address
        else None
    )
    if deployment is None:
        raise _backup_reject(
            backup_url,
            (
                f"The backup RPC node at {shown} cannot be verified because no deployment of "
                f"NTZS {contract_address or '(no address configured)'} on chain {chain_id} is "
                "recorded; record the deployment or remove BASE_SEPOLIA_RPC_URL_BACKUP."
            ),
        )
    if deploy_block is None:
        deploy_block = deployment.deploy_block
    if deploy_block != deployment.deploy_block:
        raise _backup_reject(
            backup_url,
            (
                f"NTZS_DEPLOY_BLOCK is {deploy_block} but NTZS was recorded as deployed at block "
                f"{deployment.deploy_block}, so the backup RPC node at {shown} cannot be verified "
                "until they agree."
            ),
        )
    probe = Web3(FailoverHTTPProvider(primary_url=backup_url, timeout_s=timeout_s))
    try:
        actual_chain_id = probe.eth.chain_id
        if actual_chain_id != chain_id:
            raise _backup_reject(
                backup_url,
                (
                    f"The backup RPC node at {shown} is chain {actual_chain_id}, but CHAIN_ID is "
                    f"{chain_id}; it is never used."
                ),
            )
        block_hash = probe.eth.get_block(deploy_block)["hash"].to_0x_hex()
    except BlockNotFound:
        raise _backup_reject(
            backup_url,
            (
                f"The backup RPC node at {shown} has no block {deploy_block}, where NTZS was "
                "deployed, so it serves another chain and is never used."
            ),
        ) from None
    except ChainUnavailable:
        raise ChainUnavailable(
            f"The backup RPC node at {shown} did not answer, so it could not be verified."
        ) from None
    if block_hash.lower() != deployment.deploy_block_hash.lower():
        raise _backup_reject(
            backup_url,
            (
                f"The backup RPC node at {shown} has hash {block_hash} at block {deploy_block}, "
                f"not {deployment.deploy_block_hash} as recorded when NTZS was deployed, so it "
                "serves another chain and is never used."
            ),
        )
    with _verified_lock:
        _verified_backups.add(cache_key)
    alert_resolve(kind=BACKUP_REJECTED_ALERT, key=shown)
    logger.info(
        "Backup RPC %s verified: chain %d, block %d hash matches the NTZS deployment",
        shown,
        chain_id,
        deploy_block,
    )


# --- Public entry points ----------------------------------------------------------------------


# Answers as attribute dicts and nothing else. web3's default validation middleware asks
# the node for eth_chainId and builds formatters on every eth_call (milliseconds of CPU per
# item: the largest cost of a screening batch when the cores are busy), and ENS names are
# never used here. The chain is proven once per client by chain_id_check, and every
# transaction is signed offline with CHAIN_ID.
MINT_CLIENT_MIDDLEWARE = [(AttributeDictMiddleware, "attrdict")]


def rpc_connect(
    *, timeout_s: float = RPC_TIMEOUT_S, primary_retry_s: float = PRIMARY_RETRY_S
) -> Web3:
    """A Web3 on the configured primary node with failover to the verified backup."""
    if not settings.BASE_SEPOLIA_RPC_URL:
        raise ChainError("BASE_SEPOLIA_RPC_URL is not set; the chain cannot be reached.")
    verify = partial(
        rpc_backup_verify,
        chain_id=settings.CHAIN_ID,
        contract_address=settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA or "",
        deploy_block=settings.NTZS_DEPLOY_BLOCK,
        timeout_s=timeout_s,
    )
    return Web3(
        middleware=MINT_CLIENT_MIDDLEWARE,
        provider=FailoverHTTPProvider(
            primary_url=settings.BASE_SEPOLIA_RPC_URL,
            backup_url=settings.BASE_SEPOLIA_RPC_URL_BACKUP or "",
            verify_backup=verify,
            timeout_s=timeout_s,
            primary_retry_s=primary_retry_s,
            batch_max=settings.RPC_BATCH_MAX,
        ),
    )


def mint_client() -> NtzsClient:
    """The token on the configured node (primary, or the verified backup), proven to be the
    configured chain with the token's code: the client every minting service is given.

    The proof (eth_chainId, eth_getCode) is made at most once a minute per process: runs
    follow each other every few seconds, and on Base each call counts against the
    endpoint's rate limit. A failing proof is never kept."""
    w3 = rpc_connect()
    key = (
        settings.BASE_SEPOLIA_RPC_URL,
        settings.CHAIN_ID,
        (settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA or "").lower(),
    )
    if time.monotonic() >= _verified_primaries.get(key, 0.0):
        chain_id_check(w3, expected=settings.CHAIN_ID, rpc_url=settings.BASE_SEPOLIA_RPC_URL)
        if not contract_code_present(w3, settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA):
            raise ChainError("There is no contract code at the configured NTZS address.")
        with _verified_lock:
            _verified_primaries[key] = time.monotonic() + PRIMARY_PROOF_S
    return NtzsClient(w3, settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA)


def _transient(exc: BaseException) -> bool:
    """A failure worth another attempt: the node was unreachable, slow or overloaded.
    Never WrongChain, a JSON-RPC error answer or a revert, nor a node asking us to back off
    (another attempt a moment later only meets the same limit: the breaker paces us)."""
    if isinstance(exc, ChainBackOff):
        return False
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        return status >= 500 or status == 429
    return isinstance(
        exc,
        ChainUnavailable
        | requests.ConnectionError
        | requests.Timeout
        | ProviderConnectionError
        | ConnectionError
        | TimeoutError,
    )


def rpc_read(
    fn: Callable[[], T], *, attempts: int = 3, backoff_s: Sequence[float] = (0.2, 0.5)
) -> T:
    """``fn()``, tried up to ``attempts`` times when the node is unreachable, slow or answers
    5xx, sleeping ``backoff_s[i]`` before retry i+1 (the last value repeats).

    Only for reads and for rebroadcasts of already-signed bytes, which are safe to repeat.
    Never wrap the send of a newly signed transaction: see the module docstring.
    Raises ``ChainUnavailable`` once the attempts are spent."""
    if attempts < 1:
        raise ValueError("rpc_read needs at least one attempt.")
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if not _transient(exc):
                raise
            if attempt == attempts:
                if isinstance(exc, ChainUnavailable):
                    raise
                # requests' own message carries the URL with its path: keep only the type
                raise ChainUnavailable(
                    f"The chain read failed {attempts} times ({type(exc).__name__})."
                ) from None
            delay = backoff_s[min(attempt - 1, len(backoff_s) - 1)] if backoff_s else 0.0
            logger.warning(
                "RPC read failed (%s), attempt %d of %d; retrying in %g s",
                type(exc).__name__,
                attempt,
                attempts,
                delay,
            )
            time.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")
