import uuid

from django.conf import settings
from django.db import models

from core.clock import now
from core.fields import TokenUnitsField


class TokenDeployment(models.Model):
    """A deployment of the NTZS contract by ``deploy_ntzs``.

    The deploy block's hash is what proves a backup RPC serves the same chain (DESIGN §7.6):
    the same chain id does not.
    """

    chain_id = models.BigIntegerField()
    contract_address = models.CharField(max_length=42)  # EIP-55
    deploy_block = models.BigIntegerField()
    deploy_block_hash = models.CharField(max_length=66)  # 0x + 32 bytes hex
    tx_hash = models.CharField(max_length=66)
    deployer_address = models.CharField(max_length=42)
    deployed_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-deployed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "contract_address"], name="token_deployment_unique_address"
            ),
        ]

    def __str__(self) -> str:
        return f"NTZS {self.contract_address} on {self.chain_id} @ {self.deploy_block}"


class SignerAccount(models.Model):
    """The nonce ledger of the hot minter key (one row per key and chain). Sending is
    serialised by a row lock on it, so any number of workers may run the pipeline."""

    address = models.CharField(max_length=42)  # EIP-55
    chain_id = models.BigIntegerField()
    next_nonce = models.BigIntegerField(default=0)  # the next nonce this system will sign
    last_mined_nonce = models.BigIntegerField(default=0)  # chain's 'latest' count, as seen
    sending_enabled = models.BooleanField(default=True)  # the "stop minting" switch
    disabled_reason = models.TextField(blank=True)
    preflight_ok = models.BooleanField(default=False)
    preflight_reason = models.TextField(blank=True)  # why jobs wait (shown by mint_status)
    preflight_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain_id", "address"], name="signer_unique"),
            models.CheckConstraint(
                condition=models.Q(next_nonce__gte=0) & models.Q(last_mined_nonce__gte=0),
                name="signer_nonces_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.address} on {self.chain_id} (next nonce {self.next_nonce})"


class MintTransaction(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        CAP_EXCEEDED = "cap_exceeded"
        SIGNED = "signed"
        SENT = "sent"
        MINTED = "minted"
        FAILED = "failed"
        AWAITING_CONFIRMATIONS = "awaiting_confirmations"

    class Source(models.TextChoices):
        WORKER = "worker"
        SAFE = "safe"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deposit = models.OneToOneField(
        "deposits.DepositRequest", on_delete=models.PROTECT, related_name="mint_transaction"
    )
    chain_id = models.BigIntegerField()
    contract_address = models.CharField(max_length=42)
    to_address = models.CharField(max_length=42)
    amount_units = TokenUnitsField()  # amount_tzs * 10**18
    source = models.CharField(max_length=8, choices=Source, default=Source.WORKER)
    status = models.CharField(max_length=24, choices=Status, default=Status.PENDING)
    # The amount now held in DailyIssuance(reserved_day).reserved_tzs; 0 when none.
    reserved_day = models.DateField(null=True, blank=True)
    reserved_tzs = models.BigIntegerField(default=0)
    cap_deferred_on = models.DateField(null=True, blank=True)  # last "daily cap reached" log
    # How the worker signed it: mintForDeposit (True) or plain mint (False: the token lacks
    # deposit references, or this deposit's reference was voided for a Safe route-back).
    uses_deposit_ref = models.BooleanField(null=True, blank=True)
    tx_hash = models.CharField(max_length=66, blank=True)  # of the mint that counted
    log_index = models.IntegerField(null=True, blank=True)
    # The chain head read before its first attempt was signed: no log of any attempt can be
    # below it, so log reads start here (None on rows made before it was stored: they start
    # at NTZS_DEPLOY_BLOCK).
    logs_from_block = models.BigIntegerField(null=True, blank=True)
    # When the recorded mint was found again at or below the safe head (DESIGN §7.4
    # "Finality"): claims are append-only, so the re-check's marker lives here.
    finality_checked_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=now)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reserved_tzs__gte=0), name="mint_reserved_non_negative"
            ),
        ]
        indexes = [models.Index(fields=["status"])]  # confirm_mints' work and mint_status

    def __str__(self) -> str:
        return f"mint {self.deposit_id} ({self.status})"


class MintAttempt(models.Model):
    """A signed transaction at a nonce. Append-only except ``status`` (forward only) and
    ``sent_at`` (set once). Fee bumps and nonce fills are new attempts at the same nonce."""

    class Kind(models.TextChoices):
        MINT = "mint"
        FEE_BUMP = "fee_bump"
        NONCE_FILL = "nonce_fill"

    class Status(models.TextChoices):
        SIGNED = "signed"
        SENT = "sent"
        MINED_OK = "mined_ok"
        MINED_REVERTED = "mined_reverted"
        REPLACED = "replaced"
        REJECTED = "rejected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    mint_transaction = models.ForeignKey(
        MintTransaction, on_delete=models.PROTECT, null=True, blank=True, related_name="attempts"
    )
    signer = models.ForeignKey(SignerAccount, on_delete=models.PROTECT, related_name="attempts")
    nonce = models.BigIntegerField()
    tx_hash = models.CharField(max_length=66, unique=True)
    raw_tx = models.TextField()  # the signed bytes, hex: rebroadcast exactly these
    max_fee_per_gas = models.DecimalField(max_digits=40, decimal_places=0)  # wei
    max_priority_fee_per_gas = models.DecimalField(max_digits=40, decimal_places=0)  # wei
    gas_limit = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=Kind, default=Kind.MINT)
    status = models.CharField(max_length=16, choices=Status, default=Status.SIGNED)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=now)
    sent_at = models.DateTimeField(null=True, blank=True)
    # What the mined one of a nonce's attempts cost, from its receipt (None until then, and on
    # the attempts that lost): gas_used x effective_gas_price + l1_fee, in wei. ``l1_fee`` is
    # the OP Stack's L1 data fee (the receipt's ``l1Fee``; 0 on a chain without one).
    gas_used = models.BigIntegerField(null=True, blank=True)
    effective_gas_price = models.DecimalField(
        max_digits=40, decimal_places=0, null=True, blank=True
    )
    l1_fee = models.DecimalField(max_digits=40, decimal_places=0, null=True, blank=True)
    mined_on = models.DateField(null=True, blank=True)  # the UTC day of its block

    class Meta:
        indexes = [
            models.Index(fields=["signer", "nonce"]),  # attempts at a nonce (recovery, proof)
            models.Index(fields=["status"]),  # live attempts
            models.Index(fields=["mined_on"]),  # the day's cost of minting (mint_status)
        ]

    def __str__(self) -> str:
        return f"{self.kind} nonce {self.nonce} {self.tx_hash[:12]} ({self.status})"


class MintLogClaim(models.Model):
    """One on-chain mint log satisfies one thing, once: always the token's Transfer-from-zero
    log (DepositMinted only identifies the deposit).

    Append-only. When a reorg moves a recorded mint to another block or log index, a new
    claim ``supersedes`` the old one; the claim that counts for a deposit is the one nothing
    supersedes (at most one first claim per deposit, each claim superseded at most once)."""

    chain_id = models.BigIntegerField()
    tx_hash = models.CharField(max_length=66)
    log_index = models.IntegerField()
    deposit = models.ForeignKey(
        "deposits.DepositRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="mint_log_claims",
    )
    supersedes = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="superseded_by",
    )
    reconciliation_entry_id = models.UUIDField(null=True, blank=True)  # no FK upward
    claimed_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "tx_hash", "log_index"], name="mint_log_claimed_once"
            ),
            models.UniqueConstraint(
                fields=["deposit"],
                condition=models.Q(supersedes__isnull=True),
                name="mint_log_first_claim_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tx_hash}#{self.log_index}"


class DailyIssuance(models.Model):
    """The reservation ledger of one UTC day (DESIGN §7.7)."""

    day = models.DateField(primary_key=True)
    cap_override_tzs = models.BigIntegerField(null=True, blank=True)
    cap_override_reason = models.TextField(blank=True)
    reserved_tzs = models.BigIntegerField(default=0)
    issued_tzs = models.BigIntegerField(default=0)
    safe_issued_tzs = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reserved_tzs__gte=0)
                & models.Q(issued_tzs__gte=0)
                & models.Q(safe_issued_tzs__gte=0),
                name="daily_issuance_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day}: reserved {self.reserved_tzs}, issued {self.issued_tzs}"


class SafeBatchExport(models.Model):
    """Written whenever the exact Safe call or a batch file for deposits is shown or
    downloaded: after an export, no payment may be left unbacked (DESIGN §7.9)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    deposits = models.ManyToManyField("deposits.DepositRequest", related_name="safe_exports")
    safe_nonce = models.BigIntegerField(null=True, blank=True)
    # The chain head read before the export was written: its payload cannot mint below it, so
    # the route-back's log reads start here (None: NTZS_DEPLOY_BLOCK).
    logs_from_block = models.BigIntegerField(null=True, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    payload = models.JSONField(default=dict)
    at = models.DateTimeField(default=now)

    def __str__(self) -> str:
        return f"Safe export {self.id} at {self.at:%Y-%m-%d %H:%M}"


class CircuitState(models.Model):
    """The shared RPC circuit breaker's state when Redis is not configured."""

    name = models.CharField(max_length=64, primary_key=True)
    state = models.CharField(max_length=16, default="closed")  # closed|open|half_open
    failures = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    trial_until = models.DateTimeField(null=True, blank=True)  # the cluster-wide trial lock

    def __str__(self) -> str:
        return f"{self.name}: {self.state}"


class MinterCheckRecord(models.Model):
    """The last result of ``minting.tasks.check_minter`` (one row per check name, replaced by
    each run). Health pages show it instead of calling the chain on every request, so a page
    costs no RPC call and a flood of requests cannot reach the provider."""

    name = models.CharField(max_length=32, primary_key=True, default="minter")
    checked_at = models.DateTimeField(default=now)
    reachable = models.BooleanField(default=False)  # the chain and the token could be read
    error = models.TextField(blank=True)  # why not, when unreachable
    chain_id = models.BigIntegerField(null=True, blank=True)
    contract_address = models.CharField(max_length=42, blank=True)
    minter_address = models.CharField(max_length=42, blank=True)
    has_minter_role = models.BooleanField(default=False)
    # Wei can exceed a 64-bit integer (9.2 ETH); a whole-number decimal holds any uint256.
    gas_balance_wei = models.DecimalField(max_digits=78, decimal_places=0, null=True, blank=True)
    paused = models.BooleanField(default=False)
    problems = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        state = "ok" if self.reachable and not self.problems else "problem"
        return f"{self.name} check at {self.checked_at:%Y-%m-%d %H:%M}: {state}"
