"""Recording an executed Safe mint by its hash (DESIGN §7.9), against real Safes 1.4.1 and
1.3.0 on anvil: every refusal with its sentence, the accepted mint counted as Safe issuance,
one Safe transaction minting for three deposits, and too few confirmations."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from eth_account import Account
from web3 import Web3
from web3.logs import DISCARD

from core.exceptions import ConflictError, PermissionRefused
from core.models import AdminAction
from deposits.models import DepositTransition
from minting.chain import role_id
from minting.contract_artifact import deposit_ref
from minting.models import DailyIssuance, MintLogClaim, MintTransaction
from minting.services.runner import mint_client
from minting.services.safe import SafeRecordRefused, safe_awaiting_recheck, safe_mint_record
from tests.support.chain_fixtures import deploy_local_safe, deploy_ntzs, transact

UNITS = 10**18


# --- Helpers shared by the Safe tests ---------------------------------------------------------


@pytest.fixture(name="safe")
def safe_fixture(local_safe, minting, settings):
    """The session's Safe, holding MINTER_ROLE (reverted after the test) and configured as
    SAFE_ADDRESS."""
    minting.transact(
        minting.admin_key,
        minting.contract.functions.grantRole(role_id("MINTER_ROLE"), local_safe.address),
    )
    settings.SAFE_ADDRESS = local_safe.address
    return local_safe


def receipt_of(chain, tx_hash):
    return chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)


def calldata(chain, method: str, *args) -> bytes:
    return bytes.fromhex(chain.contract.encode_abi(method, args=list(args))[2:])


def safe_mint(safe, chain, deposit, *, amount_tzs=None, to=None, ref=True, token=None) -> str:
    """The Safe executes mintForDeposit (or mint) for the deposit, optionally with wrong terms;
    returns the mined transaction hash."""
    to = to or deposit.wallet.address
    units = (amount_tzs or deposit.amount_tzs) * UNITS
    if ref:
        data = calldata(chain, "mintForDeposit", to, units, deposit_ref(deposit.pk))
    else:
        data = calldata(chain, "mint", to, units)
    tx_hash = safe.exec_call(token or chain.address, data)
    assert receipt_of(chain, tx_hash)["status"] == 1
    return tx_hash


def safe_exec(safe, chain, to: str, data: bytes, *, operation: int = 0) -> str:
    """execTransaction with an operation (1 = DELEGATECALL, for MultiSendCallOnly)."""
    return _send_from(
        safe.owner_key, chain, safe.address, _exec_calldata(safe, to, data, operation=operation)
    )


def _exec_calldata(safe, to: str, data: bytes, *, operation: int = 0) -> bytes:
    from safe_eth.eth import EthereumClient
    from safe_eth.safe import Safe

    client = EthereumClient(safe.url)
    safe_tx = Safe(safe.address, client).build_multisig_tx(
        Web3.to_checksum_address(to), 0, bytes(data), operation=operation
    )
    safe_tx.sign(safe.owner_key)
    owner = Account.from_key(safe.owner_key).address
    built = safe_tx.w3_tx.build_transaction(
        {"from": owner, "gas": 2_000_000, "nonce": 0, "gasPrice": 10**9, "chainId": 31337}
    )
    return bytes.fromhex(built["data"][2:])


def _send_from(key: str, chain, to: str, data: bytes) -> str:
    sender = Account.from_key(key).address
    tx = {
        "from": sender,
        "to": to,
        "data": data,
        "chainId": 31337,
        "nonce": chain.w3.eth.get_transaction_count(sender, "pending"),
    }
    tx["gas"] = chain.w3.eth.estimate_gas(tx) * 2
    block = chain.w3.eth.get_block("latest")
    tx |= {"maxFeePerGas": 2 * block["baseFeePerGas"] + 10**9, "maxPriorityFeePerGas": 10**9}
    signed = Account.from_key(key).sign_transaction(tx)
    tx_hash = "0x" + chain.w3.eth.send_raw_transaction(signed.raw_transaction).hex()
    assert receipt_of(chain, tx_hash)["status"] == 1
    return tx_hash


def block_day(chain, tx_hash) -> dt.date:
    block = chain.w3.eth.get_block(receipt_of(chain, tx_hash)["blockNumber"])
    return dt.datetime.fromtimestamp(block["timestamp"], tz=dt.UTC).date()


def transfer_log_index(chain, tx_hash, to: str) -> int:
    transfers = chain.contract.events.Transfer().process_receipt(
        receipt_of(chain, tx_hash), errors=DISCARD
    )
    return next(e["logIndex"] for e in transfers if e["args"]["to"] == to)


def refused(deposit, tx_hash, actor) -> str:
    with pytest.raises(SafeRecordRefused) as caught:
        safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=actor)
    deposit.refresh_from_db()
    assert deposit.status == "mint_requires_safe"
    assert not MintLogClaim.objects.filter(deposit=deposit).exists()
    return str(caught.value)


# --- Accepted -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_safe_mint_is_recorded_and_counted_as_safe_issuance(
    safe, minting, paid_deposit, compliance
):
    deposit = paid_deposit(10_000)
    assert deposit.status == "mint_requires_safe"
    tx_hash = safe_mint(safe, minting, deposit)

    assert safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=compliance) == "minted"

    deposit.refresh_from_db()
    assert (deposit.status, deposit.mint_tx_hash) == ("minted", tx_hash)
    claim = MintLogClaim.objects.get(deposit=deposit)
    assert (claim.tx_hash, claim.log_index) == (
        tx_hash,
        transfer_log_index(minting, tx_hash, deposit.wallet.address),
    )
    mint = MintTransaction.objects.get(deposit=deposit)
    assert (mint.status, mint.source, mint.tx_hash) == ("minted", "safe", tx_hash)
    day = DailyIssuance.objects.get(day=block_day(minting, tx_hash))
    assert (day.safe_issued_tzs, day.issued_tzs, day.reserved_tzs) == (10_000, 0, 0)
    assert minting.contract.functions.balanceOf(deposit.wallet.address).call() == 10_000 * UNITS
    last = DepositTransition.objects.filter(deposit=deposit).latest("at")
    assert (last.from_status, last.to_status, last.source) == (
        "mint_requires_safe",
        "minted",
        "safe",
    )
    action = AdminAction.objects.get(action="safe.mint_record")
    assert (action.actor, action.target_id, action.outcome) == (
        compliance,
        str(deposit.pk),
        "minted",
    )


@pytest.mark.django_db
def test_a_plain_mint_is_recorded_without_deposit_references(
    safe, minting, paid_deposit, superadmin, settings
):
    settings.NTZS_MINT_WITH_REF = False
    deposit = paid_deposit(12_000)
    tx_hash = safe_mint(safe, minting, deposit, ref=False)
    assert (
        safe_mint_record(
            deposit_id=deposit.pk, tx_hash=tx_hash.upper().replace("0X", "0x"), actor=superadmin
        )
        == "minted"
    )
    deposit.refresh_from_db()
    assert deposit.status == "minted"
    assert DailyIssuance.objects.get(day=block_day(minting, tx_hash)).safe_issued_tzs == 12_000


@pytest.mark.django_db
def test_one_safe_transaction_minting_for_three_deposits_is_recorded_against_each(
    safe, minting, paid_deposit, compliance, baraka
):
    """A Transaction Builder batch becomes one Safe transaction: a DELEGATECALL to
    MultiSendCallOnly with one mintForDeposit per deposit."""
    from safe_eth.eth import EthereumClient
    from safe_eth.eth.contracts import get_multi_send_call_only_V1_4_1_contract
    from safe_eth.safe.multi_send import MultiSend, MultiSendOperation, MultiSendTx

    deposits = [paid_deposit(10_000), paid_deposit(20_000), paid_deposit(30_000, user=baraka)]
    factory = get_multi_send_call_only_V1_4_1_contract(minting.w3)
    multisend = transact(minting.w3, minting.admin_key, factory.constructor())["contractAddress"]
    data = MultiSend(EthereumClient(minting.url), multisend, call_only=True).build_tx_data(
        [
            MultiSendTx(
                MultiSendOperation.CALL,
                minting.address,
                0,
                calldata(
                    minting,
                    "mintForDeposit",
                    d.wallet.address,
                    d.amount_tzs * UNITS,
                    deposit_ref(d.pk),
                ),
            )
            for d in deposits
        ]
    )
    tx_hash = safe_exec(safe, minting, multisend, data, operation=1)

    for deposit in deposits:
        assert (
            safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=compliance) == "minted"
        )
    claims = list(MintLogClaim.objects.filter(tx_hash=tx_hash).order_by("log_index"))
    assert [c.deposit_id for c in claims] == [d.pk for d in deposits]
    assert len({c.log_index for c in claims}) == 3
    assert DailyIssuance.objects.get(day=block_day(minting, tx_hash)).safe_issued_tzs == 60_000
    again = refused(paid_deposit(10_000), tx_hash, compliance)
    assert "has no matching Transfer" in again


@pytest.mark.django_db
def test_a_safe_transaction_sent_through_a_relayer_is_accepted(
    safe, minting, paid_deposit, compliance
):
    """receipt.to is the relayer (here another Safe calling ours), not our Safe."""
    relayer = deploy_local_safe(minting.node, safe.version)
    deposit = paid_deposit(15_000)
    inner = _exec_calldata(
        safe,
        minting.address,
        calldata(
            minting,
            "mintForDeposit",
            deposit.wallet.address,
            15_000 * UNITS,
            deposit_ref(deposit.pk),
        ),
    )
    tx_hash = relayer.exec_call(safe.address, inner)
    receipt = receipt_of(minting, tx_hash)
    assert receipt["status"] == 1 and receipt["to"] == relayer.address

    assert safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=compliance) == "minted"


# --- Refused, one sentence each ----------------------------------------------------------------


@pytest.mark.django_db
def test_an_unknown_hash_is_refused_as_not_found(safe, minting, paid_deposit, compliance):
    deposit = paid_deposit(10_000)
    message = refused(deposit, "0x" + "ab" * 32, compliance)
    assert message == (
        f"Transaction 0x{'ab' * 32} was not found on chain 31337; check the hash "
        "and the network, or wait until it is mined."
    )


@pytest.mark.django_db
def test_something_that_is_not_a_hash_is_refused(safe, minting, paid_deposit, compliance):
    message = refused(paid_deposit(10_000), "0x1234", compliance)
    assert message == "'0x1234' is not a transaction hash (0x followed by 64 hex digits)."


@pytest.mark.django_db
def test_a_reverted_safe_transaction_is_refused(safe, minting, paid_deposit, compliance):
    deposit = paid_deposit(10_000)
    # The Safe holds no NTZS: its transfer fails, and with safeTxGas 0 the whole tx reverts.
    tx_hash = safe.exec_call(
        minting.address, calldata(minting, "transfer", deposit.wallet.address, UNITS), gas=400_000
    )
    assert receipt_of(minting, tx_hash)["status"] == 0
    assert refused(deposit, tx_hash, compliance) == (
        f"Transaction {tx_hash} reverted on chain; it minted nothing."
    )


@pytest.mark.django_db
def test_a_mint_executed_by_another_safe_is_refused(safe, minting, paid_deposit, compliance):
    other = deploy_local_safe(minting.node, safe.version)
    minting.transact(
        minting.admin_key,
        minting.contract.functions.grantRole(role_id("MINTER_ROLE"), other.address),
    )
    deposit = paid_deposit(10_000)
    tx_hash = safe_mint(other, minting, deposit)
    assert refused(deposit, tx_hash, compliance) == (
        f"Transaction {tx_hash} was executed by the Safe {other.address}, not by our Safe "
        f"{safe.address}."
    )


@pytest.mark.django_db
def test_a_direct_mint_by_the_minter_key_is_refused(safe, minting, paid_deposit, compliance):
    deposit = paid_deposit(10_000)
    receipt = minting.transact(
        minting.minter_key,
        minting.contract.functions.mintForDeposit(
            deposit.wallet.address, 10_000 * UNITS, deposit_ref(deposit.pk)
        ),
    )
    tx_hash = "0x" + receipt["transactionHash"].hex()
    assert refused(deposit, tx_hash, compliance) == (
        f"Transaction {tx_hash} is not a successful Safe execution: it has no ExecutionSuccess "
        "event."
    )


@pytest.mark.django_db
def test_a_safe_mint_for_another_deposit_has_no_matching_transfer(
    safe, minting, paid_deposit, compliance
):
    deposit, other = paid_deposit(10_000), paid_deposit(10_000)
    tx_hash = safe_mint(safe, minting, other)
    assert refused(deposit, tx_hash, compliance) == (
        f"Transaction {tx_hash} has no matching Transfer: NTZS emitted no DepositMinted for "
        f"deposit {deposit.pk}'s reference."
    )


@pytest.mark.django_db
def test_a_safe_transaction_that_minted_nothing_has_no_matching_transfer(
    safe, minting, paid_deposit, compliance, settings
):
    settings.NTZS_MINT_WITH_REF = False
    deposit = paid_deposit(10_000)
    tx_hash = safe.exec_call(
        minting.address, calldata(minting, "approve", deposit.wallet.address, 0)
    )
    assert receipt_of(minting, tx_hash)["status"] == 1
    assert refused(deposit, tx_hash, compliance) == (
        f"Transaction {tx_hash} has no matching Transfer: NTZS minted nothing in it."
    )


@pytest.mark.django_db
@pytest.mark.parametrize("with_ref", [True, False], ids=["mintForDeposit", "mint"])
def test_a_safe_mint_of_the_wrong_amount_is_refused(
    safe, minting, paid_deposit, compliance, settings, with_ref
):
    settings.NTZS_MINT_WITH_REF = with_ref
    deposit = paid_deposit(10_000)
    tx_hash = safe_mint(safe, minting, deposit, amount_tzs=100_000, ref=with_ref)
    message = refused(deposit, tx_hash, compliance)
    assert message.startswith(f"Transaction {tx_hash} mints the wrong amount: 100,000 TZS")
    assert message.endswith(f"but deposit {deposit.pk} is for 10,000 TZS.")


@pytest.mark.django_db
@pytest.mark.parametrize("with_ref", [True, False], ids=["mintForDeposit", "mint"])
def test_a_safe_mint_to_the_wrong_recipient_is_refused(
    safe, minting, paid_deposit, compliance, baraka, settings, with_ref
):
    settings.NTZS_MINT_WITH_REF = with_ref
    deposit = paid_deposit(10_000)
    tx_hash = safe_mint(safe, minting, deposit, to=baraka.test_wallet.address, ref=with_ref)
    assert refused(deposit, tx_hash, compliance) == (
        f"Transaction {tx_hash} mints to the wrong recipient {baraka.test_wallet.address}, not "
        f"to the deposit's wallet {deposit.wallet.address}."
    )


@pytest.mark.django_db
def test_a_safe_mint_on_another_token_is_refused(safe, minting, paid_deposit, compliance):
    impostor = deploy_ntzs(minting.node)
    impostor.transact(
        impostor.admin_key,
        impostor.contract.functions.grantRole(role_id("MINTER_ROLE"), safe.address),
    )
    deposit = paid_deposit(10_000)
    tx_hash = safe_mint(safe, minting, deposit, token=impostor.address)
    assert refused(deposit, tx_hash, compliance) == (
        f"Transaction {tx_hash} minted on the token {impostor.address}, not on NTZS "
        f"{minting.address}."
    )


@pytest.mark.django_db
def test_a_mint_log_recorded_for_one_deposit_is_refused_for_another(
    safe, minting, paid_deposit, compliance, settings
):
    settings.NTZS_MINT_WITH_REF = False  # same wallet, same amount: only the claim tells apart
    first, second = paid_deposit(10_000), paid_deposit(10_000)
    tx_hash = safe_mint(safe, minting, first, ref=False)
    assert safe_mint_record(deposit_id=first.pk, tx_hash=tx_hash, actor=compliance) == "minted"
    index = MintLogClaim.objects.get(deposit=first).log_index
    assert refused(second, tx_hash, compliance) == (
        f"The mint log {tx_hash}#{index} was already used by deposit {first.pk}; one mint log "
        "satisfies one thing."
    )


@pytest.mark.django_db
def test_a_minted_deposit_is_not_recorded_twice(safe, minting, paid_deposit, compliance):
    deposit = paid_deposit(10_000)
    tx_hash = safe_mint(safe, minting, deposit)
    safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=compliance)
    with pytest.raises(ConflictError, match="is already minted"):
        safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=compliance)
    assert MintLogClaim.objects.filter(tx_hash=tx_hash).count() == 1
    assert DailyIssuance.objects.get(day=block_day(minting, tx_hash)).safe_issued_tzs == 10_000


@pytest.mark.django_db
def test_only_compliance_or_super_admin_records_a_safe_mint(safe, minting, paid_deposit, amina):
    deposit = paid_deposit(10_000)
    tx_hash = safe_mint(safe, minting, deposit)
    with pytest.raises(PermissionRefused):
        safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=amina)
    deposit.refresh_from_db()
    assert deposit.status == "mint_requires_safe"


# --- Confirmations ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_too_few_confirmations_waits_then_confirm_mints_records_it(
    safe, minting, paid_deposit, compliance, settings
):
    settings.MINT_CONFIRMATIONS = 3
    deposit = paid_deposit(10_000)
    tx_hash = safe_mint(safe, minting, deposit)

    assert (
        safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=compliance)
        == "awaiting_confirmations"
    )
    deposit.refresh_from_db()
    mint = MintTransaction.objects.get(deposit=deposit)
    assert deposit.status == "mint_requires_safe"
    assert (mint.status, mint.tx_hash, mint.source) == ("awaiting_confirmations", tx_hash, "safe")
    assert not MintLogClaim.objects.exists()
    assert not DailyIssuance.objects.filter(safe_issued_tzs__gt=0).exists()
    assert safe_awaiting_recheck(mint_client()) == 0  # still 1 confirmation

    minting.node.rpc("anvil_mine", hex(2))
    assert safe_awaiting_recheck(mint_client()) == 1

    deposit.refresh_from_db()
    assert (deposit.status, deposit.mint_tx_hash) == ("minted", tx_hash)
    assert MintLogClaim.objects.get(deposit=deposit).tx_hash == tx_hash
    assert DailyIssuance.objects.get(day=block_day(minting, tx_hash)).safe_issued_tzs == 10_000
    assert safe_awaiting_recheck(mint_client()) == 0


@pytest.mark.django_db
def test_a_waiting_safe_mint_whose_log_was_taken_meanwhile_is_marked_failed(
    safe, minting, paid_deposit, compliance, settings
):
    settings.MINT_CONFIRMATIONS = 3
    settings.NTZS_MINT_WITH_REF = False
    first, second = paid_deposit(10_000), paid_deposit(10_000)
    tx_hash = safe_mint(safe, minting, first, ref=False)
    assert (
        safe_mint_record(deposit_id=first.pk, tx_hash=tx_hash, actor=compliance)
        == "awaiting_confirmations"
    )
    minting.node.rpc("anvil_mine", hex(2))
    assert safe_mint_record(deposit_id=second.pk, tx_hash=tx_hash, actor=compliance) == "minted"

    assert safe_awaiting_recheck(mint_client()) == 0
    mint = MintTransaction.objects.get(deposit=first)
    assert mint.status == "failed" and "already used by deposit" in mint.error
    first.refresh_from_db()
    assert first.status == "mint_requires_safe"


# --- Command --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_command_records_a_safe_mint(safe, minting, paid_deposit, compliance, capsys):
    deposit = paid_deposit(10_000)
    tx_hash = safe_mint(safe, minting, deposit)
    call_command("safe_mint_record", str(deposit.pk), tx_hash, "--actor", compliance.email)
    assert (
        f"Deposit {deposit.pk} is minted by Safe transaction {tx_hash}." in capsys.readouterr().out
    )


@pytest.mark.django_db
def test_the_owner_of_the_deposit_may_not_record_its_safe_mint(safe, minting, paid_deposit, amina):
    amina.groups.add(Group.objects.get(name="platform_compliance"))  # staff, and the customer
    deposit = paid_deposit(10_000)
    tx_hash = safe_mint(safe, minting, deposit)

    with pytest.raises(PermissionRefused):
        safe_mint_record(deposit_id=deposit.pk, tx_hash=tx_hash, actor=amina)

    deposit.refresh_from_db()
    assert deposit.status == "mint_requires_safe"
    assert not MintLogClaim.objects.filter(deposit=deposit).exists()
    assert not AdminAction.objects.filter(action="safe.mint_record").exists()
