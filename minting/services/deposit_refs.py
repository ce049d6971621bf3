"""The deposit reference (DESIGN §7.4, §7.5): two questions, kept apart.

(a) Whether a **new** signature or Safe export uses ``mintForDeposit``: one policy,
``mint_with_ref_policy`` — the setting ``NTZS_MINT_WITH_REF`` (outside local/test it must be
stated; the worker also requires it to agree with the token), and ``signs_with_ref`` — a
reference voided by a Safe route-back can never mint again, so that deposit goes without.

(b) How a mint that **was already signed** is read back (confirmation, failure proof,
settling, fee bumps, Safe records): always from what it was signed with — ``signed_ref``
(``MintTransaction.uses_deposit_ref``, else the signed bytes) and ``export_methods`` (the
methods of the deposit's Safe exports) — never from the current policy. Otherwise a plain
mint in flight when the policy changes would be judged dead for lack of a ``DepositMinted``
log, failed, and minted again on retry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.conf import settings
from eth_account.typed_transactions import TypedTransaction
from eth_utils import function_signature_to_4byte_selector
from hexbytes import HexBytes

from minting.chain import ChainError, NtzsClient
from minting.contract_artifact import deposit_ref
from minting.models import MintAttempt, MintTransaction, SafeBatchExport

MINT_FOR_DEPOSIT = "mintForDeposit"
PLAIN_MINT = "mint"
_MINT_FOR_DEPOSIT_SELECTOR = function_signature_to_4byte_selector(
    "mintForDeposit(address,uint256,bytes32)"
)


class DepositRefUnstated(ChainError):
    """NTZS_MINT_WITH_REF is not set where it must be (outside local/test)."""


# --- (a) New signatures and exports ------------------------------------------------------------


def mint_with_ref_policy(
    client_factory: Callable[[], NtzsClient], *, require_agreement: bool
) -> bool:
    """Whether new mints use ``mintForDeposit``. Production states NTZS_MINT_WITH_REF; only
    the local and test profiles detect it on the token (ERC-165). With
    ``require_agreement`` (the worker) a stated value that contradicts the token is refused;
    a Safe export with a stated value reads no chain (the web boots without RPC)."""
    stated = settings.NTZS_MINT_WITH_REF
    if stated is None:
        if settings.PROFILE not in ("local", "test"):
            raise DepositRefUnstated(
                "NTZS_MINT_WITH_REF must be set outside the local profile; set it to say "
                "whether the token has mintForDeposit."
            )
        return client_factory().supports_deposit_ref
    if require_agreement:
        detected = client_factory().supports_deposit_ref
        if bool(stated) != detected:
            raise ChainError(
                f"NTZS_MINT_WITH_REF={stated} contradicts the token, which "
                f"{'has' if detected else 'lacks'} mintForDeposit."
            )
    return bool(stated)


def signs_with_ref(*, policy: bool, ref_voided: bool) -> bool:
    """The method of one new signature: the policy, except for a voided reference."""
    return policy and not ref_voided


# --- (b) Reading back what was signed or exported ----------------------------------------------


def _calldata_uses_ref(raw_tx: str) -> bool:
    data = TypedTransaction.from_bytes(HexBytes(raw_tx)).as_dict()["data"]
    return bytes(data)[:4] == _MINT_FOR_DEPOSIT_SELECTOR


def signed_uses_ref(mint: MintTransaction) -> bool:
    """Whether this worker mint was signed with ``mintForDeposit``. Rows signed before
    ``uses_deposit_ref`` existed are read from their signed bytes."""
    if mint.uses_deposit_ref is not None:
        return mint.uses_deposit_ref
    first = (
        MintAttempt.objects.filter(mint_transaction=mint)
        .exclude(kind=MintAttempt.Kind.NONCE_FILL)
        .order_by("created_at")
        .first()
    )
    return first is not None and _calldata_uses_ref(first.raw_tx)


def signed_ref(mint: MintTransaction) -> bytes | None:
    """The reference the mint's logs must carry, or None for a plain mint."""
    return deposit_ref(mint.deposit_id) if signed_uses_ref(mint) else None


def export_method(export: SafeBatchExport, deposit_id: uuid.UUID) -> str:
    """The method an export gave the Safe for this deposit."""
    for call in export.payload.get("calls", []):
        if call.get("deposit_id") == str(deposit_id):
            return call.get("method", PLAIN_MINT)
    return PLAIN_MINT  # unknown payload: assume the weaker guarantee


def export_methods(deposit_id: uuid.UUID) -> list[str]:
    """The methods of the deposit's Safe exports, latest export first, each once."""
    methods: list[str] = []
    for export in SafeBatchExport.objects.filter(deposits=deposit_id).order_by("-at"):
        method = export_method(export, deposit_id)
        if method not in methods:
            methods.append(method)
    return methods
