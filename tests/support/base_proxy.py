"""A Base-like JSON-RPC proxy in front of anvil, for tests of the limits real networks have.

Usage (helpers and tests):

    def test_x(base_proxy, minting):          # settings.BASE_SEPOLIA_RPC_URL -> the proxy
        base_proxy.batch_limit = 50           # larger batches: ONE error object, code -32014
        base_proxy.logs_max_range = 2_000     # eth_getLogs over 2,000 blocks: code -32005
        base_proxy.rate_limit(per_s=20, burst=40)  # batch items -32016, single calls HTTP 429
                                              # (methods={"eth_sendRawTransaction"}: only those)
        base_proxy.sender_cap = 16            # nonce >= chain nonce + 16: "txpool is full"
        base_proxy.resend_limit = 2           # a 3rd send of sender:nonce within
                                              # resend_window_s: -32017 over rate limit
        base_proxy.drop(nonce=7, times=1)     # answered with the hash, never forwarded
        base_proxy.balance_wei = 10**15       # pending cost above it: "insufficient funds"
        base_proxy.l1_fee_wei                 # the stub GasPriceOracle's getL1Fee and the
                                              # `l1Fee` the proxy adds to every receipt
        base_proxy.refusals["txpool_full"]    # what the proxy refused, by kind
        base_proxy.requests_seen              # JSON-RPC items forwarded or refused

Every limit is off until set (None / 0), so a test switches on only what it examines.
``BaseProxy(upstream_url)`` works without Django; the ``base_proxy`` fixture (registered in
tests/conftest.py) puts it in front of the session's anvil, installs the stub
``GasPriceOracle`` at ``GAS_PRICE_ORACLE`` and points ``BASE_SEPOLIA_RPC_URL`` at it.
``lagging_chain`` is a separate anvil with ``--slots-in-an-epoch 4`` (safe = latest - 4,
finalized = latest - 8) and its own NTZS deployment; pass ``lagging_chain.url`` as upstream.

The errors copy what Base's public endpoints and the OP Stack sequencer answer (codes and
wording), so the classification under test is the one production meets.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction
from eth_account.typed_transactions import TypedTransaction
from eth_utils import keccak
from hexbytes import HexBytes

from tests.support.anvil import AnvilNode, free_loopback_port
from tests.support.chain_fixtures import NtzsDeployment, deploy_ntzs

GAS_PRICE_ORACLE = "0x420000000000000000000000000000000000000F"
DEFAULT_L1_FEE_WEI = 7 * 10**12  # 0.000007 ETH: a typical Base Sepolia mint's L1 data fee
DEFAULT_LOGS_MAX_RANGE = 2_000

BATCH_TOO_LARGE = -32014
ITEM_RATE_LIMITED = -32016
SENDER_RATE_LIMITED = -32017
RANGE_TOO_LARGE = -32005
TXPOOL_FULL_MESSAGE = "txpool is full"
INSUFFICIENT_FUNDS_MESSAGE = "insufficient funds for gas * price + value"


def gas_price_oracle_code(fee_wei: int) -> str:
    """Runtime bytecode answering every call with ``fee_wei`` as one uint256 — so
    ``getL1Fee(bytes)`` returns the constant: PUSH32 fee, PUSH1 0, MSTORE, PUSH1 32,
    PUSH1 0, RETURN."""
    return "0x7f" + fee_wei.to_bytes(32, "big").hex() + "60005260206000f3"


def decode_raw_tx(raw_hex: str) -> dict[str, Any]:
    """sender, nonce and the most the transaction can cost (gas × max fee + value)."""
    raw = HexBytes(raw_hex)
    fields = (
        TypedTransaction.from_bytes(raw).as_dict()
        if raw[0] <= 0x7F
        else Transaction.from_bytes(raw).as_dict()
    )
    price = fields.get("maxFeePerGas", fields.get("gasPrice", 0))
    return {
        "sender": Account.recover_transaction(raw).lower(),
        "nonce": fields["nonce"],
        "cost": fields["gas"] * price + fields.get("value", 0),
        "hash": "0x" + keccak(raw).hex(),
    }


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


class _Bucket:
    """Token bucket: ``per_s`` tokens a second up to ``burst``."""

    def __init__(self, per_s: float, burst: int):
        self.per_s, self.burst = per_s, burst
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> bool:
        moment = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (moment - self.at) * self.per_s)
        self.at = moment
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class BaseProxy:
    """A threaded HTTP server forwarding JSON-RPC to ``upstream_url`` with Base's limits."""

    def __init__(self, upstream_url: str, *, l1_fee_wei: int = DEFAULT_L1_FEE_WEI):
        self.upstream_url = upstream_url
        self.l1_fee_wei = l1_fee_wei
        self.batch_limit: int | None = None
        self.logs_max_range: int | None = None
        self.sender_cap: int | None = None
        self.resend_limit: int | None = None
        self.resend_window_s = 30.0
        self.balance_wei: int | None = None
        self.refusals: collections.Counter[str] = collections.Counter()
        self.requests_seen: collections.Counter[str] = collections.Counter()
        self.batch_sizes: list[int] = []
        self._bucket: _Bucket | None = None
        self._limited_methods: frozenset[str] | None = None
        self._drops: dict[int, int | None] = {}  # nonce -> times left (None: always)
        self._sends: dict[tuple[str, int], list[float]] = collections.defaultdict(list)
        self._pending_cost: dict[str, dict[int, int]] = collections.defaultdict(dict)
        self._lock = threading.Lock()
        self._local = threading.local()
        self.port = free_loopback_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"base-proxy-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- toggles ---------------------------------------------------------------------------

    def rate_limit(
        self, *, per_s: float | None, burst: int = 0, methods: frozenset[str] | None = None
    ) -> None:
        """Items beyond ``per_s`` a second (after a ``burst``) are refused: -32016 inside a
        batch, HTTP 429 for a single call; only ``methods`` when given (e.g. the sends).
        ``per_s=None`` switches it off."""
        with self._lock:
            self._bucket = None if per_s is None else _Bucket(per_s, max(burst, 1))
            self._limited_methods = methods

    def _rate_limited(self, item: dict) -> bool:
        """Holds the lock."""
        if self._bucket is None:
            return False
        if self._limited_methods is not None and item.get("method") not in self._limited_methods:
            return False
        return not self._bucket.take()

    def drop(self, *, nonce: int, times: int | None = 1) -> None:
        """Sends at ``nonce`` are answered with their hash but never reach the node."""
        with self._lock:
            self._drops[nonce] = times

    def reset(self) -> None:
        """Every limit off and the counters emptied."""
        with self._lock:
            self.batch_limit = self.logs_max_range = self.sender_cap = None
            self.resend_limit = self.balance_wei = None
            self._bucket = self._limited_methods = None
            self._drops.clear()
            self._sends.clear()
            self._pending_cost.clear()
            self.refusals.clear()
            self.requests_seen.clear()
            self.batch_sizes.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> BaseProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- forwarding ------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _upstream(self, payload: Any) -> Any:
        response = self._session().post(self.upstream_url, json=payload, timeout=30)
        response.raise_for_status()
        return response.json()

    def _upstream_call(self, method: str, *params: Any) -> Any:
        body = self._upstream({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        if "error" in body:
            raise RuntimeError(f"{method} failed upstream: {body['error']}")
        return body["result"]

    def _refuse(self, kind: str, request_id: Any, code: int, message: str) -> dict[str, Any]:
        self.refusals[kind] += 1
        return _error(request_id, code, message)

    def handle(self, body: Any) -> tuple[int, Any]:
        """(HTTP status, answer) for one request body (an object or a batch)."""
        if isinstance(body, list):
            self.batch_sizes.append(len(body))
            if self.batch_limit is not None and len(body) > self.batch_limit:
                with self._lock:
                    self.refusals["batch_too_large"] += 1
                return 200, _error(
                    None,
                    BATCH_TOO_LARGE,
                    f"batch size {len(body)} exceeds the limit of {self.batch_limit}",
                )
            return 200, self._answer_items(body, in_batch=True)
        with self._lock:
            if self._rate_limited(body):
                self.refusals["http_429"] += 1
                return 429, {
                    "jsonrpc": "2.0",
                    "id": body.get("id"),
                    "error": {"code": 429, "message": "Too Many Requests"},
                }
        return 200, self._answer_items([body], in_batch=False)[0]

    def _answer_items(self, items: list[dict], *, in_batch: bool) -> list[Any]:
        answers: list[Any] = [None] * len(items)
        forward: list[int] = []
        context: dict[str, Any] = {}
        with self._lock:
            for index, item in enumerate(items):
                self.requests_seen[item.get("method", "?")] += 1
                if in_batch and self._rate_limited(item):
                    answers[index] = self._refuse(
                        "item_rate_limited",
                        item.get("id"),
                        ITEM_RATE_LIMITED,
                        "over rate limit: too many requests in the batch",
                    )
                    continue
                answers[index] = self._intercept(item, context)
                if answers[index] is None:
                    forward.append(index)
        if forward:
            upstream = self._upstream([items[i] for i in forward])
            by_id = {answer.get("id"): answer for answer in upstream}
            for index in forward:
                answers[index] = self._after(items[index], by_id[items[index].get("id")])
        return answers

    # --- the limits ------------------------------------------------------------------------

    def _latest_nonce(self, sender: str, context: dict[str, Any]) -> int:
        key = ("nonce", sender)
        if key not in context:
            context[key] = int(self._upstream_call("eth_getTransactionCount", sender, "latest"), 16)
        return context[key]

    def _block_number(self, tag: Any, context: dict[str, Any]) -> int:
        if isinstance(tag, str) and tag.startswith("0x"):
            return int(tag, 16)
        if isinstance(tag, int):
            return tag
        if tag in (None, "latest", "pending", "safe", "finalized"):
            if "head" not in context:
                context["head"] = int(self._upstream_call("eth_blockNumber"), 16)
            return context["head"]
        return 0  # "earliest"

    def _intercept(self, item: dict, context: dict[str, Any]) -> dict[str, Any] | None:
        """An answer the proxy gives itself, or None to forward. Holds the lock."""
        method, params, request_id = item.get("method"), item.get("params") or [], item.get("id")
        if method == "eth_getLogs" and self.logs_max_range is not None and params:
            query = params[0]
            if "blockHash" not in query:
                start = self._block_number(query.get("fromBlock"), context)
                end = self._block_number(query.get("toBlock"), context)
                if end - start + 1 > self.logs_max_range:
                    return self._refuse(
                        "logs_range",
                        request_id,
                        RANGE_TOO_LARGE,
                        f"query exceeds max block range {self.logs_max_range}",
                    )
        if method == "eth_sendRawTransaction" and params:
            return self._intercept_send(params[0], request_id, context)
        return None

    def _intercept_send(
        self, raw_hex: str, request_id: Any, context: dict[str, Any]
    ) -> dict[str, Any] | None:
        tx = decode_raw_tx(raw_hex)
        sender, nonce = tx["sender"], tx["nonce"]
        if nonce in self._drops:
            left = self._drops[nonce]
            if left is not None:
                if left <= 1:
                    del self._drops[nonce]
                else:
                    self._drops[nonce] = left - 1
            self.refusals["dropped"] += 1
            return {"jsonrpc": "2.0", "id": request_id, "result": tx["hash"]}
        if self.resend_limit is not None:
            moment = time.monotonic()
            sends = [t for t in self._sends[(sender, nonce)] if moment - t < self.resend_window_s]
            if len(sends) >= self.resend_limit:
                self._sends[(sender, nonce)] = sends
                return self._refuse(
                    "sender_rate_limited",
                    request_id,
                    SENDER_RATE_LIMITED,
                    "sender is over rate limit",
                )
            self._sends[(sender, nonce)] = [*sends, moment]
        chain_nonce = None
        if self.sender_cap is not None:
            chain_nonce = self._latest_nonce(sender, context)
            if nonce >= chain_nonce + self.sender_cap:
                return self._refuse("txpool_full", request_id, -32003, TXPOOL_FULL_MESSAGE)
        if self.balance_wei is not None:
            chain_nonce = (
                self._latest_nonce(sender, context) if chain_nonce is None else chain_nonce
            )
            pending = self._pending_cost[sender]
            for mined in [n for n in pending if n < chain_nonce]:
                del pending[mined]
            cost = tx["cost"] + self.l1_fee_wei
            others = sum(c for n, c in pending.items() if n != nonce)
            if others + cost > self.balance_wei:
                return self._refuse(
                    "insufficient_funds", request_id, -32003, INSUFFICIENT_FUNDS_MESSAGE
                )
            pending[nonce] = cost
        return None

    def _after(self, item: dict, answer: dict[str, Any]) -> dict[str, Any]:
        if item.get("method") == "eth_getTransactionReceipt" and isinstance(
            answer.get("result"), dict
        ):
            answer["result"]["l1Fee"] = hex(self.l1_fee_wei)
        return answer

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    status, answer = proxy.handle(json.loads(self.rfile.read(length)))
                except requests.RequestException as exc:
                    status, answer = 502, {"error": f"upstream: {type(exc).__name__}"}
                except Exception as exc:  # a proxy bug: a 500 the test sees, not a hang
                    status, answer = 500, {"error": f"proxy: {exc!r}"}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # quiet: one line per request would drown the test output

        return Handler


def gas_price_oracle_install(node: AnvilNode, fee_wei: int) -> None:
    node.rpc("anvil_setCode", GAS_PRICE_ORACLE, gas_price_oracle_code(fee_wei))


@pytest.fixture
def base_proxy(chain_settings, settings, anvil_node: AnvilNode) -> Iterator[BaseProxy]:
    """The proxy in front of the session's anvil (every limit off), the stub GasPriceOracle
    installed (reverted with the test's snapshot) and Django's RPC URL pointed at it."""
    gas_price_oracle_install(anvil_node, DEFAULT_L1_FEE_WEI)
    proxy = BaseProxy(anvil_node.url)
    settings.BASE_SEPOLIA_RPC_URL = proxy.url
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def lagging_chain() -> Iterator[NtzsDeployment]:
    """A separate anvil whose ``safe`` and ``finalized`` heads lag ``latest`` (4 slots an
    epoch: safe = latest - 4, finalized = latest - 8), with NTZS deployed."""
    node = AnvilNode(slots_in_an_epoch=4)
    try:
        yield deploy_ntzs(node)
    finally:
        node.stop()
