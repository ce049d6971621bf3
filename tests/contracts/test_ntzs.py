"""NTZS on a real anvil chain: roles, pause, freeze, blacklist, wipe, deposit references."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from minting.contract_artifact import DEPOSIT_REF_INTERFACE_ID, deposit_ref, load_ntzs_artifact
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS
from tests.support.chain_fixtures import (
    OPERATIONAL_ROLES,
    NtzsDeployment,
    decode_custom_error,
    role_id,
    transact,
)

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
DEFAULT_ADMIN_ROLE = b"\x00" * 32
HOLDER_KEY, HOLDER = DEV_PRIVATE_KEYS[3], DEV_ADDRESSES[3]
OTHER_KEY, OTHER = DEV_PRIVATE_KEYS[4], DEV_ADDRESSES[4]
SPENDER_KEY, SPENDER = DEV_PRIVATE_KEYS[6], DEV_ADDRESSES[6]
TZS = 10**18
IACCESS_CONTROL_ID = bytes.fromhex("7965db0b")
IERC165_ID = bytes.fromhex("01ffc9a7")


# ----- helpers -----


def expect_error(chain: NtzsDeployment, key: str, call: Any) -> tuple[str, tuple]:
    """Send `call` and return the custom error it reverts with (name, args)."""
    with pytest.raises(ContractCustomError) as excinfo:
        chain.transact(key, call)
    return decode_custom_error(chain.contract.abi, excinfo.value)


def events(chain: NtzsDeployment, receipt: Any, name: str) -> list[Any]:
    event = getattr(chain.contract.events, name)()
    return list(event.process_receipt(receipt, errors=DISCARD))


def mint(chain: NtzsDeployment, to: str, amount: int) -> Any:
    return chain.transact(chain.minter_key, chain.contract.functions.mint(to, amount))


def as_admin(chain: NtzsDeployment, function_name: str, *args: Any) -> Any:
    call = getattr(chain.contract.functions, function_name)(*args)
    return chain.transact(chain.admin_key, call)


def balance(chain: NtzsDeployment, account: str) -> int:
    return chain.contract.functions.balanceOf(account).call()


def transfer(chain: NtzsDeployment, key: str, to: str, amount: int) -> Any:
    return chain.transact(key, chain.contract.functions.transfer(to, amount))


def new_ref() -> bytes:
    return deposit_ref(uuid.uuid4())


# ----- deployment and roles -----


def test_token_metadata_and_role_ids(chain: NtzsDeployment) -> None:
    functions = chain.contract.functions
    assert (functions.name().call(), functions.symbol().call()) == ("nTZS", "nTZS")
    assert functions.decimals().call() == 18
    for role in ("MINTER_ROLE", *OPERATIONAL_ROLES):
        assert getattr(functions, role)().call() == role_id(role)


def test_constructor_grants_only_the_admin_role(chain: NtzsDeployment) -> None:
    artifact = load_ntzs_artifact()
    factory = chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    admin = DEV_ADDRESSES[7]
    receipt = transact(chain.w3, DEV_PRIVATE_KEYS[7], factory.constructor(admin))
    token = chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])

    assert token.functions.hasRole(DEFAULT_ADMIN_ROLE, admin).call()
    for role in ("MINTER_ROLE", *OPERATIONAL_ROLES):
        assert not token.functions.hasRole(role_id(role), admin).call()


# (function, arguments, role it needs). The wrong caller holds every other role: the minter for
# the non-minting functions, the admin (all roles but MINTER_ROLE) for the minting ones.
GATED_CALLS: list[tuple[str, Callable[[], tuple], str]] = [
    ("mint", lambda: (HOLDER, TZS), "MINTER_ROLE"),
    ("mintForDeposit", lambda: (HOLDER, TZS, b"\x01" * 32), "MINTER_ROLE"),
    ("voidDepositRef", lambda: (b"\x01" * 32,), "MINTER_ROLE"),
    ("burn", lambda: (HOLDER, TZS), "BURNER_ROLE"),
    ("pause", lambda: (), "PAUSER_ROLE"),
    ("unpause", lambda: (), "PAUSER_ROLE"),
    ("freeze", lambda: (HOLDER,), "FREEZER_ROLE"),
    ("unfreeze", lambda: (HOLDER,), "FREEZER_ROLE"),
    ("blacklist", lambda: (HOLDER,), "BLACKLISTER_ROLE"),
    ("unblacklist", lambda: (HOLDER,), "BLACKLISTER_ROLE"),
    ("wipeBlacklisted", lambda: (HOLDER,), "WIPER_ROLE"),
    ("renounceDeployerAdmin", lambda: (), "DEFAULT_ADMIN_ROLE"),
    ("grantRole", lambda: (role_id("MINTER_ROLE"), HOLDER), "DEFAULT_ADMIN_ROLE"),
    ("revokeRole", lambda: (role_id("MINTER_ROLE"), DEV_ADDRESSES[1]), "DEFAULT_ADMIN_ROLE"),
]


@pytest.mark.parametrize(("function_name", "make_args", "role"), GATED_CALLS)
def test_role_gated_function_refuses_the_wrong_caller(
    chain: NtzsDeployment, function_name: str, make_args: Callable[[], tuple], role: str
) -> None:
    if role == "MINTER_ROLE":
        caller_key, caller = chain.admin_key, chain.admin_address
    else:
        caller_key, caller = chain.minter_key, chain.minter_address
    needed = DEFAULT_ADMIN_ROLE if role == "DEFAULT_ADMIN_ROLE" else role_id(role)
    call = getattr(chain.contract.functions, function_name)(*make_args())

    assert expect_error(chain, caller_key, call) == (
        "AccessControlUnauthorizedAccount",
        (caller, needed),
    )


def test_renounce_deployer_admin_refused_for_the_last_admin(chain: NtzsDeployment) -> None:
    renounce = chain.contract.functions.renounceDeployerAdmin()
    assert expect_error(chain, chain.admin_key, renounce) == ("LastAdminCannotLeave", ())
    renounce_role = chain.contract.functions.renounceRole(DEFAULT_ADMIN_ROLE, chain.admin_address)
    assert expect_error(chain, chain.admin_key, renounce_role) == ("LastAdminCannotLeave", ())
    assert chain.contract.functions.hasRole(DEFAULT_ADMIN_ROLE, chain.admin_address).call()


def test_renounce_deployer_admin_hands_over_to_the_other_admin(chain: NtzsDeployment) -> None:
    successor_key, successor = DEV_PRIVATE_KEYS[8], DEV_ADDRESSES[8]
    as_admin(chain, "grantRole", DEFAULT_ADMIN_ROLE, successor)

    receipt = chain.transact(chain.admin_key, chain.contract.functions.renounceDeployerAdmin())

    (revoked,) = events(chain, receipt, "RoleRevoked")
    assert (revoked.args.role, revoked.args.account) == (DEFAULT_ADMIN_ROLE, chain.admin_address)
    has_role = chain.contract.functions.hasRole
    assert not has_role(DEFAULT_ADMIN_ROLE, chain.admin_address).call()
    assert has_role(DEFAULT_ADMIN_ROLE, successor).call()
    # The successor is now the last admin and is held by the same guard.
    revoke_self = chain.contract.functions.revokeRole(DEFAULT_ADMIN_ROLE, successor)
    assert expect_error(chain, successor_key, revoke_self) == ("LastAdminCannotLeave", ())


# ----- mint, burn, transfer -----


def test_mint_emits_transfer_from_zero(chain: NtzsDeployment) -> None:
    receipt = mint(chain, HOLDER, 5 * TZS)

    (log,) = events(chain, receipt, "Transfer")
    assert log.address == chain.address
    assert (log.args["from"], log.args.to, log.args.value) == (ZERO_ADDRESS, HOLDER, 5 * TZS)
    assert balance(chain, HOLDER) == 5 * TZS
    assert chain.contract.functions.totalSupply().call() == 5 * TZS


def test_burner_burns_own_balance_or_within_allowance(chain: NtzsDeployment) -> None:
    mint(chain, chain.admin_address, 3 * TZS)
    mint(chain, HOLDER, 4 * TZS)
    burn = chain.contract.functions.burn

    receipt = chain.transact(chain.admin_key, burn(chain.admin_address, TZS))
    (log,) = events(chain, receipt, "Transfer")
    assert (log.args["from"], log.args.to, log.args.value) == (
        chain.admin_address,
        ZERO_ADDRESS,
        TZS,
    )

    # Another holder's tokens only within the allowance that holder gave the burner.
    name, args = expect_error(chain, chain.admin_key, burn(HOLDER, TZS))
    assert (name, args) == ("ERC20InsufficientAllowance", (chain.admin_address, 0, TZS))
    chain.transact(HOLDER_KEY, chain.contract.functions.approve(chain.admin_address, TZS))
    chain.transact(chain.admin_key, burn(HOLDER, TZS))

    assert balance(chain, chain.admin_address) == 2 * TZS
    assert balance(chain, HOLDER) == 3 * TZS
    assert chain.contract.functions.totalSupply().call() == 5 * TZS


# ----- pause -----


def test_pause_blocks_mint_transfer_and_burn(chain: NtzsDeployment) -> None:
    mint(chain, HOLDER, 2 * TZS)
    mint(chain, chain.admin_address, TZS)
    receipt = as_admin(chain, "pause")
    assert [log.args.account for log in events(chain, receipt, "Paused")] == [chain.admin_address]
    functions = chain.contract.functions
    refused = ("EnforcedPause", ())

    assert expect_error(chain, chain.minter_key, functions.mint(HOLDER, TZS)) == refused
    deposit_call = functions.mintForDeposit(HOLDER, TZS, new_ref())
    assert expect_error(chain, chain.minter_key, deposit_call) == refused
    assert expect_error(chain, HOLDER_KEY, functions.transfer(OTHER, TZS)) == refused
    burn_call = functions.burn(chain.admin_address, TZS)
    assert expect_error(chain, chain.admin_key, burn_call) == refused
    assert (balance(chain, HOLDER), chain.contract.functions.totalSupply().call()) == (
        2 * TZS,
        3 * TZS,
    )

    as_admin(chain, "unpause")
    transfer(chain, HOLDER_KEY, OTHER, TZS)
    assert (balance(chain, HOLDER), balance(chain, OTHER)) == (TZS, TZS)


def test_void_deposit_ref_allowed_while_paused(chain: NtzsDeployment) -> None:
    ref = new_ref()
    as_admin(chain, "pause")

    receipt = chain.transact(chain.minter_key, chain.contract.functions.voidDepositRef(ref))

    assert [log.args.depositRef for log in events(chain, receipt, "DepositRefVoided")] == [ref]


# ----- freeze and blacklist -----


def test_frozen_account_receives_but_cannot_send(chain: NtzsDeployment) -> None:
    mint(chain, OTHER, 5 * TZS)
    receipt = as_admin(chain, "freeze", HOLDER)
    assert [log.args.account for log in events(chain, receipt, "Frozen")] == [HOLDER]
    assert chain.contract.functions.isFrozen(HOLDER).call()

    mint(chain, HOLDER, TZS)
    transfer(chain, OTHER_KEY, HOLDER, TZS)
    assert balance(chain, HOLDER) == 2 * TZS

    send = chain.contract.functions.transfer(OTHER, TZS)
    assert expect_error(chain, HOLDER_KEY, send) == ("AccountFrozen", (HOLDER,))
    chain.transact(HOLDER_KEY, chain.contract.functions.approve(SPENDER, TZS))
    pull = chain.contract.functions.transferFrom(HOLDER, SPENDER, TZS)
    assert expect_error(chain, SPENDER_KEY, pull) == ("AccountFrozen", (HOLDER,))

    receipt = as_admin(chain, "unfreeze", HOLDER)
    assert [log.args.account for log in events(chain, receipt, "Unfrozen")] == [HOLDER]
    transfer(chain, HOLDER_KEY, OTHER, TZS)
    assert balance(chain, HOLDER) == TZS


def test_blacklisted_account_neither_sends_nor_receives(chain: NtzsDeployment) -> None:
    mint(chain, HOLDER, 2 * TZS)
    mint(chain, OTHER, 2 * TZS)
    chain.transact(OTHER_KEY, chain.contract.functions.approve(HOLDER, TZS))
    receipt = as_admin(chain, "blacklist", HOLDER)
    assert [log.args.account for log in events(chain, receipt, "Blacklisted")] == [HOLDER]
    assert chain.contract.functions.isBlacklisted(HOLDER).call()
    functions = chain.contract.functions
    refused = ("AccountBlacklisted", (HOLDER,))

    assert expect_error(chain, HOLDER_KEY, functions.transfer(OTHER, TZS)) == refused
    assert expect_error(chain, OTHER_KEY, functions.transfer(HOLDER, TZS)) == refused
    assert expect_error(chain, chain.minter_key, functions.mint(HOLDER, TZS)) == refused
    deposit_call = functions.mintForDeposit(HOLDER, TZS, new_ref())
    assert expect_error(chain, chain.minter_key, deposit_call) == refused
    # Nor can it spend an allowance it was given before.
    pull = functions.transferFrom(OTHER, SPENDER, TZS)
    assert expect_error(chain, HOLDER_KEY, pull) == refused

    receipt = as_admin(chain, "unblacklist", HOLDER)
    assert [log.args.account for log in events(chain, receipt, "Unblacklisted")] == [HOLDER]
    transfer(chain, HOLDER_KEY, OTHER, TZS)
    assert (balance(chain, HOLDER), balance(chain, OTHER)) == (TZS, 3 * TZS)


# ----- wipe -----


@pytest.mark.parametrize("frozen", [False, True], ids=["not-frozen", "frozen"])
@pytest.mark.parametrize("paused", [False, True], ids=["running", "paused"])
def test_wipe_burns_a_blacklisted_balance(
    chain: NtzsDeployment, frozen: bool, paused: bool
) -> None:
    mint(chain, HOLDER, 7 * TZS)
    mint(chain, OTHER, TZS)
    if frozen:
        as_admin(chain, "freeze", HOLDER)
    as_admin(chain, "blacklist", HOLDER)
    if paused:
        as_admin(chain, "pause")

    receipt = as_admin(chain, "wipeBlacklisted", HOLDER)

    (transfer_log,) = events(chain, receipt, "Transfer")
    (wiped,) = events(chain, receipt, "Wiped")
    assert (transfer_log.args["from"], transfer_log.args.to, transfer_log.args.value) == (
        HOLDER,
        ZERO_ADDRESS,
        7 * TZS,
    )
    assert (wiped.address, wiped.args.account, wiped.args.amount) == (
        chain.address,
        HOLDER,
        7 * TZS,
    )
    assert balance(chain, HOLDER) == 0
    assert chain.contract.functions.totalSupply().call() == TZS


@pytest.mark.parametrize("frozen", [False, True], ids=["plain", "frozen"])
def test_wipe_refused_for_an_account_not_blacklisted(chain: NtzsDeployment, frozen: bool) -> None:
    mint(chain, HOLDER, TZS)
    if frozen:
        as_admin(chain, "freeze", HOLDER)

    wipe = chain.contract.functions.wipeBlacklisted(HOLDER)

    assert expect_error(chain, chain.admin_key, wipe) == ("AccountNotBlacklisted", (HOLDER,))
    assert balance(chain, HOLDER) == TZS


# ----- deposit references -----


def test_mint_for_deposit_emits_deposit_minted_right_after_its_transfer(
    chain: NtzsDeployment,
) -> None:
    ref = new_ref()
    is_minted = chain.contract.functions.isDepositMinted
    assert not is_minted(ref).call()

    receipt = chain.transact(
        chain.minter_key, chain.contract.functions.mintForDeposit(HOLDER, 3 * TZS, ref)
    )

    (transfer_log,) = events(chain, receipt, "Transfer")
    (minted,) = events(chain, receipt, "DepositMinted")
    assert (transfer_log.args["from"], transfer_log.args.to, transfer_log.args.value) == (
        ZERO_ADDRESS,
        HOLDER,
        3 * TZS,
    )
    assert (minted.args.depositRef, minted.args.to, minted.args.amount) == (ref, HOLDER, 3 * TZS)
    assert minted.address == transfer_log.address == chain.address
    assert minted.logIndex == transfer_log.logIndex + 1
    assert is_minted(ref).call()
    assert balance(chain, HOLDER) == 3 * TZS


def test_mint_for_deposit_twice_reverts_with_deposit_already_minted(
    chain: NtzsDeployment,
) -> None:
    ref = new_ref()
    mint_for_deposit = chain.contract.functions.mintForDeposit
    chain.transact(chain.minter_key, mint_for_deposit(HOLDER, TZS, ref))

    second = mint_for_deposit(HOLDER, TZS, ref)
    assert expect_error(chain, chain.minter_key, second) == ("DepositAlreadyMinted", (ref,))
    # Mined anyway (gas given, no estimate), the second attempt fails on chain and mints nothing.
    receipt = chain.transact(chain.minter_key, second, gas=200_000)
    assert receipt["status"] == 0
    assert balance(chain, HOLDER) == TZS


def test_voided_ref_cannot_be_minted(chain: NtzsDeployment) -> None:
    ref = new_ref()
    functions = chain.contract.functions

    receipt = chain.transact(chain.minter_key, functions.voidDepositRef(ref))

    (voided,) = events(chain, receipt, "DepositRefVoided")
    assert (voided.address, voided.args.depositRef) == (chain.address, ref)
    assert functions.isDepositRefVoided(ref).call()
    assert not functions.isDepositMinted(ref).call()
    minting = functions.mintForDeposit(HOLDER, TZS, ref)
    assert expect_error(chain, chain.minter_key, minting) == ("DepositRefVoided", (ref,))
    again = functions.voidDepositRef(ref)
    assert expect_error(chain, chain.minter_key, again) == ("DepositRefVoided", (ref,))
    assert balance(chain, HOLDER) == 0


def test_a_minted_ref_cannot_be_voided(chain: NtzsDeployment) -> None:
    ref = new_ref()
    functions = chain.contract.functions
    chain.transact(chain.minter_key, functions.mintForDeposit(HOLDER, TZS, ref))

    void = functions.voidDepositRef(ref)

    assert expect_error(chain, chain.minter_key, void) == ("DepositAlreadyMinted", (ref,))
    assert functions.isDepositMinted(ref).call()
    assert not functions.isDepositRefVoided(ref).call()


def test_zero_deposit_ref_is_refused(chain: NtzsDeployment) -> None:
    call = chain.contract.functions.mintForDeposit(HOLDER, TZS, b"\x00" * 32)
    assert expect_error(chain, chain.minter_key, call) == ("InvalidDepositRef", ())


# ----- ERC-165 -----


def test_supports_interface(chain: NtzsDeployment) -> None:
    supports = chain.contract.functions.supportsInterface

    assert chain.contract.functions.DEPOSIT_REF_INTERFACE_ID().call() == DEPOSIT_REF_INTERFACE_ID
    assert supports(DEPOSIT_REF_INTERFACE_ID).call()
    assert supports(IACCESS_CONTROL_ID).call()
    assert supports(IERC165_ID).call()
    assert not supports(bytes.fromhex("deadbeef")).call()
    assert not supports(bytes.fromhex("ffffffff")).call()
