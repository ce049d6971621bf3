"""The chain client: the only code that speaks JSON-RPC (CONVENTIONS "clients").

Connects to the configured node, proves it is the expected chain (``eth_chainId ==
CHAIN_ID``) and that the token has code there, and reads and decodes what the rest of the
system needs. Failover, the shared circuit breaker and sending come with the mint pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlparse

from django.conf import settings
from eth_utils import keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3Exception

from minting.contract_artifact import DEPOSIT_REF_INTERFACE_ID, NTZS_ABI

RPC_TIMEOUT_S = 10
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
DEPOSIT_MINTED_TOPIC = keccak(text="DepositMinted(bytes32,address,uint256)")
ZERO_ADDRESS = "0x" + "00" * 20


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

    def total_supply(self) -> int:
        return self._call(self.contract.functions.totalSupply())

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

    def confirmation_head(self) -> int:
        """The head confirmations are counted from: ``latest`` or the ``safe`` head, as
        MINT_CONFIRMATION_TAG says."""
        return self.head("safe" if settings.MINT_CONFIRMATION_TAG == "safe" else "latest")

    def logs_read(self, *, topics: list, from_block: int, to_block: int | None = None) -> list:
        """Every log of the token matching ``topics`` in blocks ``from_block``..``to_block``
        (the head read now when None), or ChainUnavailable: never a partial result.

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
                chunk = self.w3.eth.get_logs(
                    {
                        "address": self.address,
                        "fromBlock": start,
                        "toBlock": end,
                        "topics": topics,
                    }
                )
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
    from django.conf import settings

    return ntzs_connect(
        rpc_url=settings.BASE_SEPOLIA_RPC_URL,
        chain_id=settings.CHAIN_ID,
        contract_address=settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA,
    )


def account_address(private_key: str) -> str:
    from eth_account import Account

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
    from eth_account import Account

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
