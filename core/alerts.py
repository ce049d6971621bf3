"""Every alert kind in one registry (DESIGN §8): its stable name (operators grep for it and
the metrics label by it), what it means, and what to do. ``alert_raise`` refuses a kind that is
not here, so a new alert cannot be added without saying what an operator should do about it.

Kept in ``core`` (the bottom layer) so every app names its kinds from one place; the apps
decide when to raise them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AlertKind:
    name: str
    meaning: str
    action: str


def _kind(name: str, meaning: str, action: str) -> AlertKind:
    return AlertKind(name=name, meaning=meaning, action=action)


# --- deposits --------------------------------------------------------------------------------
ZENOPAY_DRIFT = "zenopay answers unreadable"
UNREADABLE_PAYMENT = "unreadable payment"
PSP_REFERENCE_CONFLICT = "psp reference conflict"
# --- minting ---------------------------------------------------------------------------------
MINTER_CHAIN = "minter chain unreachable or wrong"
MINTER_ROLE_MISSING = "minter role missing"
MINTER_GAS_LOW = "minter gas low"
TOKEN_PAUSED = "token paused"
DEPOSIT_REF_SETTING = "deposit reference setting wrong"
MINT_FEE_CAP = "mint fee cap reached"
MINTER_BALANCE_SHORT = "minter balance covers no mint"
MINT_LANDED_UNRECORDED = "mint landed but not recorded"
NONCE_OUTSIDE = "minter nonce used outside the system"
REF_OTHER_TERMS = "deposit reference minted with other terms"
MINT_NOT_ON_CHAIN = "Recorded mint no longer on chain"
BACKUP_RPC_REJECTED = "backup rpc rejected"
TOKEN_ACTION_STUCK = "token action stuck"
# --- reconciliation and monitoring ------------------------------------------------------------
SUPPLY_DISCREPANCY = "supply discrepancy"
UNTRACKED_MINT = "untracked mint"
MISSING_MINT = "missing mint"
MINT_FAILED_ACCUMULATING = "mint_failed accumulating"
CAP_NEARLY_USED = "cap above 90% used"
TASK_SILENT = "task silent"
SAFE_DEPOSIT_WAITING = "mint_requires_safe older than a day"
UNEXPECTED_ROLE_HOLDER = "unexpected token role holder"

KINDS = (
    _kind(
        ZENOPAY_DRIFT,
        "ZenoPay's answers could not be read (or ZenoPay could not be reached) repeatedly.",
        "Check ZENOPAY_BASE_URL, the paths and the key; zenopay_smoke shows the raw answer.",
    ),
    _kind(
        UNREADABLE_PAYMENT,
        "ZenoPay says a deposit is paid but a payment field could not be read; it is held.",
        "Compare with the ZenoPay portal; release the hold or confirm manually (four eyes).",
    ),
    _kind(
        PSP_REFERENCE_CONFLICT,
        "A payment reference already used by another deposit; the new one is held.",
        "Check both deposits in Backstage; release or refund the held one.",
    ),
    _kind(
        MINTER_CHAIN,
        "The chain or the token could not be read, or it is not the configured one.",
        "Check the RPC URLs, CHAIN_ID and the token address (healthcheck).",
    ),
    _kind(
        MINTER_ROLE_MISSING,
        "The minter key does not hold MINTER_ROLE.",
        "Grant the role through the Safe, or check MINTER_PRIVATE_KEY.",
    ),
    _kind(
        MINTER_GAS_LOW,
        "The minter's ETH balance is below the threshold, or a send ran out of funds.",
        "Top up the minter address with ETH on Base.",
    ),
    _kind(
        TOKEN_PAUSED,
        "The token is paused: nothing mints until it is unpaused.",
        "Unpause through the Safe when the incident is closed (four eyes).",
    ),
    _kind(
        DEPOSIT_REF_SETTING,
        "NTZS_MINT_WITH_REF does not match what the token answers.",
        "Fix the setting to match the deployed contract.",
    ),
    _kind(
        MINT_FEE_CAP,
        "Base fees are above MINT_MAX_FEE_PER_GAS_WEI: mints wait.",
        "Wait for fees to fall, or raise the cap deliberately.",
    ),
    _kind(
        MINTER_BALANCE_SHORT,
        "The minter's balance covers no mint at today's fees.",
        "Top up the minter address with ETH on Base.",
    ),
    _kind(
        MINT_LANDED_UNRECORDED,
        "A mint landed on chain but could not be recorded against its deposit.",
        "Read the detail; the recovery paths record it, never re-sign it.",
    ),
    _kind(
        NONCE_OUTSIDE,
        "The minter key sent a transaction this system did not sign: sending is stopped.",
        "Treat the key as exposed: rotate it, then start minting again.",
    ),
    _kind(
        REF_OTHER_TERMS,
        "A deposit reference was minted on chain with another recipient or amount.",
        "Investigate at once: pause the token if funds are at risk.",
    ),
    _kind(
        MINT_NOT_ON_CHAIN,
        "A recorded mint's transaction is no longer on chain (a reorg).",
        "The same signed bytes are rebroadcast; watch the deposit until it is minted again.",
    ),
    _kind(
        BACKUP_RPC_REJECTED,
        "A backup RPC node answered for another chain or token and is not used.",
        "Fix or remove the backup RPC URL.",
    ),
    _kind(
        TOKEN_ACTION_STUCK,
        "A token action through the operator key (pause, freeze, ...) has no outcome yet.",
        "Read its rows in Backstage (Token); check the chain, the operator's gas and nonce.",
    ),
    _kind(
        SUPPLY_DISCREPANCY,
        "On-chain supply differs from DB minted + reconciled in two snapshots in a row.",
        "Follow the reconciliation procedure: untracked mints, missing mints, burns.",
    ),
    _kind(
        UNTRACKED_MINT,
        "A mint on chain that no deposit or entry explains.",
        "Pause the token first, then investigate (runbook: incident response).",
    ),
    _kind(
        MISSING_MINT,
        "A minted deposit whose mint log is not on the indexed chain.",
        "Check the transaction on the explorer; attach the right log or re-mint.",
    ),
    _kind(
        MINT_FAILED_ACCUMULATING,
        "Failed mints are piling up (MINT_FAILED_ALERT_THRESHOLD).",
        "Read the errors on the deposits; fix the cause, then retry them in bulk.",
    ),
    _kind(
        CAP_NEARLY_USED,
        "More than 90% of today's issuance cap is used.",
        "Expect deposits to wait for tomorrow, or override today's cap (super admin).",
    ),
    _kind(
        TASK_SILENT,
        "A periodic task has not finished for twice its interval.",
        "Check the worker and beat processes (ping_worker, healthcheck).",
    ),
    _kind(
        SAFE_DEPOSIT_WAITING,
        "A deposit has waited for the Safe for more than a day.",
        "Export the batch file from the Safe lane and get the signers together.",
    ),
    _kind(
        UNEXPECTED_ROLE_HOLDER,
        "A token role is held by an address outside TOKEN_ROLE_EXPECTED_HOLDERS.",
        "Revoke it through the Safe and treat it as an incident, unless it was planned.",
    ),
)

ALERT_KINDS: dict[str, AlertKind] = {kind.name: kind for kind in KINDS}
