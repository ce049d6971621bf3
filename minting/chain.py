"""The chain client: the only code that speaks JSON-RPC (CONVENTIONS "clients").

Connects to the configured node, proves it is the expected chain (``eth_chainId ==
CHAIN_ID``) and that the token has code there, and reads and decodes what the rest of the
system needs. Failover, the shared circuit breaker and sending come with the mint pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from urllib.parse import urlparse

from django.conf import settings
from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3Exception

from minting.contract_artifact import DEPOSIT_REF_INTERFACE_ID, NTZS_ABI

RPC_TIMEOUT_S = 10
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
DEPOSIT_MINTED_TOPIC = keccak(text="DepositMinted(bytes32,address,uint256)")
# AccessControl's role events (all three arguments indexed: role, account, sender).
ROLE_GRANTED_TOPIC = keccak(text="RoleGranted(bytes32,address,address)")
ROLE_REVOKED_TOPIC = keccak(text="RoleRevoked(bytes32,address,address)")
ZERO_ADDRESS = "0x" + "00" * 20
# The OP Stack's GasPriceOracle predeploy: getL1Fee(bytes) is the L1 data fee a transaction of
# these bytes pays on top of its gas (Base, OP; absent on anvil and on L1s).
GAS_PRICE_ORACLE = "0x420000000000000000000000000000000000000F"
_GET_L1_FEE = keccak(text="getL1Fee(bytes)")[:4]


class ChainError(Exception):
    """A chain problem a person must read: each message is one sentence."""


class ChainUnavailable(ChainError):
    """The node could not be reached or did not answer (try again later)."""


class WrongChain(ChainError):
    """The node is not the chain we were configured for: never sign or trust it."""


class ContractMissing(ChainError):
    """There is no contract code at the configured token address."""


def hex_str(value) -> str:
    """The one spelling of a hash, topic or calldata in text: ``0x`` and lowercase hex, from
    bytes, HexBytes or a string (stored hashes compare as strings)."""
    if isinstance(value, str):
        value = value.lower()
        return value if value.startswith("0x") else "0x" + value
    return "0x" + bytes(value).hex()


def redact_url(url: str) -> str:
    """Scheme and host only: RPC URLs often carry an API key in the path or query."""
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")


def role_id(name: str) -> bytes:
    if name == "DEFAULT_ADMIN_ROLE":
        return b"\x00" * 32
    return keccak(text=name)


def web3_connect(rpc_url: str) -> Web3:
    # The provider's own retries are off: ours (with the circuit breaker) decide what is
    # retried, and a send is never retried blindly.
    provider = Web3.HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": RPC_TIMEOUT_S},
        exception_retry_configuration=None,
    )
    return Web3(provider)


def chain_id_check(w3: Web3, *, expected: int, rpc_url: str) -> None:
    try:
        actual = w3.eth.chain_id
    except (OSError, Web3Exception, ValueError) as exc:
        raise ChainUnavailable(
            f"The node at {redact_url(rpc_url)} did not answer eth_chainId ({type(exc).__name__})."
        ) from None
    if actual != expected:
        raise WrongChain(
            f"The node at {redact_url(rpc_url)} is chain {actual}, but CHAIN_ID is {expected}; "
            "refusing to use it."
        )


@dataclass(frozen=True)
class TransferLog:
    log_index: int
    from_address: str
    to_address: str
    amount_units: int


@dataclass(frozen=True)
class DepositMintedLog:
    log_index: int
    deposit_ref: bytes
    to_address: str
    amount_units: int


# How providers say a getLogs range is too wide (Alchemy, Infura, QuickNode, Base's proxies):
# the reader halves the range on these and fails on anything else.
RANGE_TOO_LARGE_CODES = frozenset({-32005, -32602, -32614})
RANGE_TOO_LARGE_WORDS = (
    "block range",
    "range too large",
    "range is too large",
    "exceeds max block range",
    "query returned more than",
    "too many results",
    "response size exceeded",
)


def range_too_large(exc: BaseException) -> bool:
    """Whether a getLogs refusal says the range is too wide (not that the node is down or
    rate-limits us: -32005 is also Infura's rate limit, which halving would only worsen)."""
    response = getattr(exc, "rpc_response", None)  # web3's Web3RPCError
    error = response.get("error") if isinstance(response, dict) else None
    if error is None and exc.args and isinstance(exc.args[0], dict):
        error = exc.args[0]
    code, message = None, str(exc)
    if isinstance(error, dict):
        code, message = error.get("code"), f"{error.get('message', '')} {message}"
    message = message.lower()
    if "rate limit" in message or "rate-limit" in message or "rate limited" in message:
        return False
    if code in RANGE_TOO_LARGE_CODES and any(w in message for w in ("range", "results", "size")):
        return True
    return any(words in message for words in RANGE_TOO_LARGE_WORDS)


def receipt_l1_fee(receipt) -> int:
    """The L1 data fee an OP Stack receipt reports (``l1Fee``, hex or int), 0 without one."""
    value = receipt.get("l1Fee") if hasattr(receipt, "get") else None
    if value is None:
        return 0
    if isinstance(value, str):
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    return int(value)


def _topic_address(topic: bytes) -> str:
    return to_checksum_address(bytes(topic)[-20:])


def receipt_token_logs(receipt, *, token_address: str) -> list[TransferLog | DepositMintedLog]:
    """Decode the token's Transfer and DepositMinted logs of a receipt, in log order.

    Decoded directly from topics and data (no ABI event machinery): the layouts are fixed
    and this runs for every log of every confirmed batch."""
    token = to_checksum_address(token_address)
    decoded: list[TransferLog | DepositMintedLog] = []
    for log in receipt["logs"]:
        if to_checksum_address(log["address"]) != token or not log["topics"]:
            continue
        topic0 = bytes(log["topics"][0])
        data = bytes(log["data"])
        if topic0 == TRANSFER_TOPIC and len(log["topics"]) == 3:
            decoded.append(
                TransferLog(
                    log_index=log["logIndex"],
                    from_address=_topic_address(log["topics"][1]),
                    to_address=_topic_address(log["topics"][2]),
                    amount_units=int.from_bytes(data[:32], "big"),
                )
            )
        elif topic0 == DEPOSIT_MINTED_TOPIC and len(log["topics"]) == 3:
            decoded.append(
                DepositMintedLog(
                    log_index=log["logIndex"],
                    deposit_ref=bytes(log["topics"][1]),
                    to_address=_topic_address(log["topics"][2]),
                    amount_units=int.from_bytes(data[:32], "big"),
                )
            )
    return decoded


# What a hand-decoded batch answer can raise when the node sends something else than asked
# (an error object, "0x", null): the read failed, the chain is "unavailable" for this run.
UNREADABLE_BATCH = (
    OSError,
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    DecodingError,
    Web3Exception,
)


@dataclass(frozen=True)
class TokenFunction:
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@cache
def token_function(name: str) -> TokenFunction:
    """The selector and argument types of one of the token's (not overloaded) functions."""
    (abi,) = [item for item in NTZS_ABI if item.get("type") == "function" and item["name"] == name]
    inputs = tuple(arg["type"] for arg in abi["inputs"])
    return TokenFunction(
        selector=function_signature_to_4byte_selector(f"{name}({','.join(inputs)})"),
        inputs=inputs,
        outputs=tuple(arg["type"] for arg in abi["outputs"]),
    )


@dataclass(frozen=True)
class MinterState:
    """What a pipeline run needs to know about the minter and the next block, read in one
    JSON-RPC batch at one head (the balance and mined nonce at that block, so a block landing
    between two reads cannot make a paid transaction look unpaid)."""

    head: int
    pending_nonce: int  # eth_getTransactionCount(minter, "pending")
    mined_nonce: int  # at ``head``
    balance_wei: int  # at ``head``
    is_minter: bool  # holds MINTER_ROLE
    paused: bool
    next_base_fee: int  # the last entry of eth_feeHistory(1, "latest")
    priority_fee: int  # eth_maxPriorityFeePerGas


def _quantity(value) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


class NtzsClient:
    """Reads of the NTZS token on a node already proven to be the right chain."""

    def __init__(self, w3: Web3, address: str):
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.contract = w3.eth.contract(address=self.address, abi=NTZS_ABI)

    def _call(self, fn):
        try:
            return fn.call()
        except (OSError, ValueError, Web3Exception) as exc:
            raise ChainUnavailable(f"A read of the token failed ({type(exc).__name__}).") from None

    def total_supply(self, *, block: int | None = None) -> int:
        """``totalSupply`` now, or at the end of ``block`` (an eth_call tagged with the block:
        old blocks need a node that keeps their state; a pruned node's refusal is
        ChainUnavailable, never 0)."""
        fn = self.contract.functions.totalSupply()
        if block is None:
            return self._call(fn)
        try:
            return fn.call(block_identifier=block)
        except (OSError, ValueError, Web3Exception) as exc:
            raise ChainUnavailable(
                f"totalSupply at block {block} could not be read ({type(exc).__name__}); "
                "the node may not keep that block's state."
            ) from None

    def code_present(self, *, block: int | None = None) -> bool:
        """Whether the token has code at the end of ``block`` (now when None)."""
        try:
            tag = "latest" if block is None else block
            code = self.w3.eth.get_code(self.address, block_identifier=tag)
        except (OSError, ValueError, LookupError, Web3Exception) as exc:
            raise ChainUnavailable(f"eth_getCode failed ({type(exc).__name__}).") from None
        return len(code) > 0

    def decimals(self) -> int:
        return self._call(self.contract.functions.decimals())

    def paused(self) -> bool:
        return self._call(self.contract.functions.paused())

    def has_role(self, role_name: str, account: str) -> bool:
        return self._call(
            self.contract.functions.hasRole(role_id(role_name), to_checksum_address(account))
        )

    def is_frozen(self, account: str) -> bool:
        return self._call(self.contract.functions.isFrozen(to_checksum_address(account)))

    def is_blacklisted(self, account: str) -> bool:
        return self._call(self.contract.functions.isBlacklisted(to_checksum_address(account)))

    def is_deposit_minted(self, deposit_ref: bytes) -> bool:
        return self._call(self.contract.functions.isDepositMinted(deposit_ref))

    def is_deposit_ref_voided(self, deposit_ref: bytes) -> bool:
        return self._call(self.contract.functions.isDepositRefVoided(deposit_ref))

    def balance_of(self, account: str) -> int:
        return self._call(self.contract.functions.balanceOf(to_checksum_address(account)))

    def views(self, calls: Sequence[tuple[str, tuple]]) -> list:
        """Many reads of the token's view functions — ``(name, args)`` each — in JSON-RPC
        batches (the provider splits them to RPC_BATCH_MAX), answers in order. Encoded and
        decoded here: web3's per-call machinery costs about a millisecond of CPU per item,
        which a screening batch of hundreds pays in seconds when the cores are busy.
        All or nothing: a refused or unreadable item raises ChainUnavailable."""
        functions = [token_function(name) for name, _ in calls]
        requests = [
            (
                "eth_call",
                [
                    {"to": self.address, "data": hex_str(fn.selector + encode(fn.inputs, args))},
                    "latest",
                ],
            )
            for fn, (_, args) in zip(functions, calls, strict=True)
        ]
        try:
            responses = self.w3.provider.make_batch_request(requests) if requests else []
            if not isinstance(responses, list) or len(responses) != len(requests):
                raise ValueError("the node refused the batch")
            answers = []
            for fn, response in zip(functions, responses, strict=True):
                if "result" not in response:
                    raise ValueError(f"a read was refused: {response.get('error')}")
                values = decode(fn.outputs, bytes.fromhex(response["result"].removeprefix("0x")))
                answers.append(values[0] if len(values) == 1 else values)
        except UNREADABLE_BATCH as exc:
            raise ChainUnavailable(
                f"A batch of {len(requests)} token reads failed ({type(exc).__name__})."
            ) from None
        return answers

    def minter_state(self, minter: str) -> MinterState:
        """The head, then everything else in one batch at it: two round trips instead of
        eight (each counts against Base's rate limits and waits on a busy machine).
        All or nothing: a refused or unreadable item raises ChainUnavailable."""
        head = self.head()
        at, minter = hex(head), to_checksum_address(minter)
        role, paused = token_function("hasRole"), token_function("paused")
        requests = [
            ("eth_getTransactionCount", [minter, "pending"]),
            ("eth_getTransactionCount", [minter, at]),
            ("eth_getBalance", [minter, at]),
            (
                "eth_call",
                [
                    {
                        "to": self.address,
                        "data": hex_str(
                            role.selector + encode(role.inputs, (role_id("MINTER_ROLE"), minter))
                        ),
                    },
                    at,
                ],
            ),
            ("eth_call", [{"to": self.address, "data": hex_str(paused.selector)}, at]),
            ("eth_feeHistory", [1, "latest", []]),
            ("eth_maxPriorityFeePerGas", []),
        ]
        try:
            answers = self.w3.provider.make_batch_request(requests)
            if not isinstance(answers, list) or len(answers) != len(requests):
                raise ValueError("the node refused the batch")
            refused = [a.get("error") for a in answers if "result" not in a]
            if refused:
                raise ValueError(f"a read was refused: {refused[0]}")
            pending, mined, balance, is_minter, is_paused, history, tip = (
                a["result"] for a in answers
            )
            return MinterState(
                head=head,
                pending_nonce=_quantity(pending),
                mined_nonce=_quantity(mined),
                balance_wei=_quantity(balance),
                is_minter=decode(["bool"], bytes.fromhex(is_minter.removeprefix("0x")))[0],
                paused=decode(["bool"], bytes.fromhex(is_paused.removeprefix("0x")))[0],
                next_base_fee=_quantity(history["baseFeePerGas"][-1]),
                priority_fee=_quantity(tip),
            )
        except UNREADABLE_BATCH as exc:
            raise ChainUnavailable(
                f"The minter's state could not be read ({type(exc).__name__})."
            ) from None

    def receipt(self, tx_hash) -> dict | None:
        """The one receipt reader: the receipt, or None when the node does not know the
        transaction (not mined yet, dropped or replaced). Any other failure is
        ChainUnavailable: an unreadable receipt is never taken for a missing one (a failure
        proof built on it would call a landed mint dead)."""
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None
        except (OSError, ValueError, LookupError, Web3Exception) as exc:
            raise ChainUnavailable(
                f"The receipt of {hex_str(tx_hash)} could not be read ({type(exc).__name__})."
            ) from None

    def receipts(self, tx_hashes: list[str]) -> dict[str, dict | None]:
        """Many receipts in one JSON-RPC batch, with ``receipt``'s policy: a batch with an
        unknown transaction (a replaced attempt) falls back to one call per hash."""
        if not tx_hashes:
            return {}
        try:
            with self.w3.batch_requests() as batch:
                for tx_hash in tx_hashes:
                    batch.add(self.w3.eth.get_transaction_receipt(tx_hash))
                answers = batch.execute()
        except TransactionNotFound:
            return {tx_hash: self.receipt(tx_hash) for tx_hash in tx_hashes}
        except (OSError, ValueError, LookupError, Web3Exception) as exc:
            raise ChainUnavailable(
                f"A batch of receipts could not be read ({type(exc).__name__})."
            ) from None
        return dict(zip(tx_hashes, answers, strict=True))

    def head(self, tag: str = "latest") -> int:
        """The number of the ``latest``, ``safe`` or ``finalized`` block."""
        try:
            if tag == "latest":
                return self.w3.eth.block_number
            return self.w3.eth.get_block(tag)["number"]
        except (OSError, ValueError, LookupError, Web3Exception) as exc:
            raise ChainUnavailable(
                f"The {tag} block could not be read ({type(exc).__name__})."
            ) from None

    def block_hashes(self, numbers: Sequence[int]) -> dict[int, str | None]:
        """The canonical hash of each block number (None for a block the node does not have
        yet), in JSON-RPC batches of eth_getBlockByNumber without transactions. All or
        nothing: an unreadable answer raises ChainUnavailable."""
        numbers = sorted(set(numbers))
        if not numbers:
            return {}
        requests = [("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
        try:
            answers = self.w3.provider.make_batch_request(requests)
            if not isinstance(answers, list) or len(answers) != len(requests):
                raise ValueError("the node refused the batch")
            found: dict[int, str | None] = {}
            for number, answer in zip(numbers, answers, strict=True):
                if "result" not in answer:
                    raise ValueError(f"a read was refused: {answer.get('error')}")
                block = answer["result"]
                found[number] = hex_str(block["hash"]) if block else None
        except UNREADABLE_BATCH as exc:
            raise ChainUnavailable(
                f"The hashes of {len(numbers)} blocks could not be read ({type(exc).__name__})."
            ) from None
        return found

    def block_hash(self, number: int) -> str | None:
        """The canonical hash of block ``number``, None when the node does not have it."""
        return self.block_hashes([number])[number]

    def next_base_fee(self) -> int:
        """The base fee the next block will charge: the last entry of
        ``eth_feeHistory(1, latest)``, which the node computes from the latest block with the
        chain's own EIP-1559 parameters. Not the ``pending`` block: on op-geth behind a
        provider it is built from a replica's pool (or is ``latest`` again, or refused), and
        ``latest``'s own base fee is one block behind a spike."""
        try:
            history = self.w3.eth.fee_history(1, "latest", [])
            return int(history["baseFeePerGas"][-1])
        except (OSError, ValueError, LookupError, TypeError, Web3Exception) as exc:
            raise ChainUnavailable(
                f"The next block's base fee could not be read ({type(exc).__name__})."
            ) from None

    def priority_fee(self) -> int:
        """The tip the node suggests now (``eth_maxPriorityFeePerGas``)."""
        try:
            return int(self.w3.eth.max_priority_fee)
        except (OSError, ValueError, LookupError, Web3Exception) as exc:
            raise ChainUnavailable(
                f"The suggested priority fee could not be read ({type(exc).__name__})."
            ) from None

    @cached_property
    def has_gas_price_oracle(self) -> bool:
        """Whether the chain has the OP Stack's GasPriceOracle (so transactions pay an L1
        data fee). Read once per client."""
        return contract_code_present(self.w3, GAS_PRICE_ORACLE)

    def l1_fee(self, raw_tx: bytes) -> int:
        """The L1 data fee of a transaction of these bytes now (0 on a chain without the
        GasPriceOracle). The fee follows L1's blob and base fees, so callers keep a margin."""
        if not self.has_gas_price_oracle:
            return 0
        return _l1_fee_read(self.w3, raw_tx)

    def confirmation_head(self) -> int:
        """The head confirmations are counted from: ``latest`` or the ``safe`` head, as
        MINT_CONFIRMATION_TAG says."""
        return self.head("safe" if settings.MINT_CONFIRMATION_TAG == "safe" else "latest")

    def logs_read(
        self, *, topics: list, from_block: int, to_block: int | None = None, raw: bool = False
    ) -> list:
        """Every log of the token matching ``topics`` in blocks ``from_block``..``to_block``
        (the head read now when None), or ChainUnavailable: never a partial result.
        ``raw``: the node's JSON objects as sent (hex strings), without web3's per-log
        formatting, which costs more than the read itself over 100,000 logs (the indexer).

        The one eth_getLogs of the system. Calls cover at most MINT_LOGS_MAX_RANGE blocks,
        and a range the provider calls too large is halved and retried; a mint missing from
        a partial answer would let a route-back or a retry mint a second time."""
        if to_block is None:
            to_block = self.head()
        step = max(settings.MINT_LOGS_MAX_RANGE, 1)
        found: list = []
        start = max(from_block, 0)
        while start <= to_block:
            end = min(start + step - 1, to_block)
            try:
                query = {"address": self.address, "topics": topics}
                if raw:
                    answer = self.w3.provider.make_request(
                        "eth_getLogs", [{**query, "fromBlock": hex(start), "toBlock": hex(end)}]
                    )
                    if "error" in answer:
                        raise ValueError(answer["error"])
                    chunk = answer.get("result")
                else:
                    chunk = self.w3.eth.get_logs({**query, "fromBlock": start, "toBlock": end})
            except (ValueError, Web3Exception) as exc:
                if end > start and range_too_large(exc):
                    step = max((end - start + 1) // 2, 1)
                    continue
                raise ChainUnavailable(
                    f"The token's logs of blocks {start}-{end} could not be read "
                    f"({type(exc).__name__})."
                ) from None
            except (OSError, LookupError) as exc:
                raise ChainUnavailable(
                    f"The token's logs of blocks {start}-{end} could not be read "
                    f"({type(exc).__name__})."
                ) from None
            if not isinstance(chunk, list | tuple):
                raise ChainUnavailable(
                    f"The node answered getLogs of blocks {start}-{end} with no list."
                )
            found.extend(chunk)
            start = end + 1
        return found

    @cached_property
    def supports_deposit_ref(self) -> bool:
        """ERC-165 detection of mintForDeposit (used by the local profile only; production
        states NTZS_MINT_WITH_REF)."""
        try:
            return bool(self.contract.functions.supportsInterface(DEPOSIT_REF_INTERFACE_ID).call())
        except (ValueError, Web3Exception):
            return False  # a token without ERC-165 reverts: it has no deposit references


def contract_code_present(w3: Web3, address: str) -> bool:
    try:
        return len(w3.eth.get_code(to_checksum_address(address))) > 0
    except (OSError, ValueError, Web3Exception) as exc:
        raise ChainUnavailable(f"eth_getCode failed ({type(exc).__name__}).") from None


def _l1_fee_read(w3: Web3, raw_tx: bytes) -> int:
    data = _GET_L1_FEE + encode(["bytes"], [bytes(raw_tx)])
    try:
        answer = w3.eth.call({"to": GAS_PRICE_ORACLE, "data": hex_str(data)})
    except (OSError, ValueError, LookupError, Web3Exception) as exc:
        raise ChainUnavailable(
            f"GasPriceOracle.getL1Fee could not be read ({type(exc).__name__})."
        ) from None
    if len(answer) < 32:
        raise ChainUnavailable("GasPriceOracle.getL1Fee answered without a uint256.")
    return int.from_bytes(bytes(answer)[:32], "big")


def l1_data_fee(w3: Web3, raw_tx: bytes) -> int:
    """``NtzsClient.l1_fee`` without a token (deploy_ntzs checks its gas before the token
    exists): the L1 data fee of these bytes now, 0 on a chain without the GasPriceOracle."""
    if not contract_code_present(w3, GAS_PRICE_ORACLE):
        return 0
    return _l1_fee_read(w3, raw_tx)


def ntzs_connect(*, rpc_url: str, chain_id: int, contract_address: str) -> NtzsClient:
    """Connect, prove the chain id, prove the token has code; raise a ChainError otherwise."""
    if not rpc_url:
        raise ChainError("BASE_SEPOLIA_RPC_URL is not set; the chain cannot be reached.")
    if not contract_address:
        raise ContractMissing(
            "NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA is not set; deploy the token "
            "with `python manage.py deploy_ntzs` or configure its address."
        )
    w3 = web3_connect(rpc_url)
    chain_id_check(w3, expected=chain_id, rpc_url=rpc_url)
    if not contract_code_present(w3, contract_address):
        raise ContractMissing(
            f"There is no contract code at {contract_address} on chain {chain_id}."
        )
    return NtzsClient(w3, contract_address)


def ntzs_from_settings() -> NtzsClient:
    return ntzs_connect(
        rpc_url=settings.BASE_SEPOLIA_RPC_URL,
        chain_id=settings.CHAIN_ID,
        contract_address=settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA,
    )


def account_address(private_key: str) -> str:
    return Account.from_key(private_key).address


def transact(
    w3: Web3,
    *,
    private_key: str,
    to: str | None = None,
    data: bytes = b"",
    value: int = 0,
    timeout_s: int = 120,
):
    """Sign and send one administrative transaction (deploy, role grant) and wait for its
    receipt. Not the mint path: mints are signed inside the batch transaction and their
    bytes persisted before sending (DESIGN §7.1)."""
    sender = Account.from_key(private_key)
    try:
        base_fee = w3.eth.get_block("latest")["baseFeePerGas"]
        tip = w3.eth.max_priority_fee
        tx = {
            "chainId": w3.eth.chain_id,
            "from": sender.address,
            "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
            "value": value,
            "data": data,
            "maxPriorityFeePerGas": tip,
            "maxFeePerGas": 2 * base_fee + tip,
            "type": 2,
        }
        if to is not None:
            tx["to"] = to_checksum_address(to)
        tx["gas"] = w3.eth.estimate_gas(tx) * 12 // 10
        signed = sender.sign_transaction(tx)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s)
    except (OSError, Web3Exception) as exc:
        raise ChainUnavailable(f"The transaction could not be sent or confirmed: {exc}") from None
    except ValueError as exc:  # node refusals (insufficient funds, revert on estimate)
        raise ChainError(f"The node refused the transaction: {exc}") from None
    if receipt["status"] != 1:
        raise ChainError(f"Transaction {hex_str(receipt['transactionHash'])} reverted.")
    return receipt
