import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.clock import now
from core.fields import TokenUnitsField


class TokenDeployment(models.Model):
    """A deployment of the NTZS contract by ``deploy_ntzs``.

    The deploy block's hash is what proves a backup RPC serves the same chain (DESIGN §7.6):
    the same chain id does not.
    """

    chain_id = models.BigIntegerField(verbose_name=_("chain ID"))
    contract_address = models.CharField(max_length=42, verbose_name=_("contract address"))  # EIP-55
    deploy_block = models.BigIntegerField(verbose_name=_("deploy block"))
    # 0x + 32 bytes hex
    deploy_block_hash = models.CharField(max_length=66, verbose_name=_("deploy block hash"))
    tx_hash = models.CharField(max_length=66, verbose_name=_("transaction hash"))
    deployer_address = models.CharField(max_length=42, verbose_name=_("deployer address"))
    deployed_at = models.DateTimeField(default=now, verbose_name=_("deployed at"))

    class Meta:
        verbose_name = _("token deployment")
        verbose_name_plural = _("token deployments")
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

    address = models.CharField(max_length=42, verbose_name=_("address"))  # EIP-55
    chain_id = models.BigIntegerField(verbose_name=_("chain ID"))
    # the next nonce this system will sign
    next_nonce = models.BigIntegerField(default=0, verbose_name=_("next nonce"))
    # chain's 'latest' count, as seen
    last_mined_nonce = models.BigIntegerField(default=0, verbose_name=_("last mined nonce"))
    # the "stop minting" switch
    sending_enabled = models.BooleanField(default=True, verbose_name=_("sending enabled"))
    disabled_reason = models.TextField(blank=True, verbose_name=_("reason sending is off"))
    preflight_ok = models.BooleanField(default=False, verbose_name=_("preflight passed"))
    # why jobs wait (shown by mint_status)
    preflight_reason = models.TextField(blank=True, verbose_name=_("preflight reason"))
    preflight_at = models.DateTimeField(null=True, blank=True, verbose_name=_("preflight at"))
    updated_at = models.DateTimeField(default=now, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("signer account")
        verbose_name_plural = _("signer accounts")
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

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("ID")
    )
    deposit = models.OneToOneField(
        "deposits.DepositRequest",
        on_delete=models.PROTECT,
        related_name="mint_transaction",
        verbose_name=_("deposit"),
    )
    chain_id = models.BigIntegerField(verbose_name=_("chain ID"))
    contract_address = models.CharField(max_length=42, verbose_name=_("contract address"))
    to_address = models.CharField(max_length=42, verbose_name=_("recipient address"))
    amount_units = TokenUnitsField(verbose_name=_("amount (token units)"))  # amount_tzs * 10**18
    source = models.CharField(
        max_length=8, choices=Source, default=Source.WORKER, verbose_name=_("source")
    )
    status = models.CharField(
        max_length=24, choices=Status, default=Status.PENDING, verbose_name=_("status")
    )
    # The amount now held in DailyIssuance(reserved_day).reserved_tzs; 0 when none.
    reserved_day = models.DateField(null=True, blank=True, verbose_name=_("reserved on day"))
    reserved_tzs = models.BigIntegerField(default=0, verbose_name=_("reserved (TZS)"))
    # last "daily cap reached" log
    cap_deferred_on = models.DateField(
        null=True, blank=True, verbose_name=_("deferred by the cap on")
    )
    # How the worker signed it: mintForDeposit (True) or plain mint (False: the token lacks
    # deposit references, or this deposit's reference was voided for a Safe route-back).
    uses_deposit_ref = models.BooleanField(
        null=True, blank=True, verbose_name=_("uses the deposit reference")
    )
    # of the mint that counted
    tx_hash = models.CharField(max_length=66, blank=True, verbose_name=_("transaction hash"))
    log_index = models.IntegerField(null=True, blank=True, verbose_name=_("log index"))
    # The chain head read before its first attempt was signed: no log of any attempt can be
    # below it, so log reads start here (None on rows made before it was stored: they start
    # at NTZS_DEPLOY_BLOCK).
    logs_from_block = models.BigIntegerField(
        null=True, blank=True, verbose_name=_("logs from block")
    )
    # When the recorded mint was found again at or below the safe head (DESIGN §7.4
    # "Finality"): claims are append-only, so the re-check's marker lives here.
    finality_checked_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("finality checked at")
    )
    error = models.TextField(blank=True, verbose_name=_("error"))
    attempt_count = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    created_at = models.DateTimeField(default=now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(default=now, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("mint transaction")
        verbose_name_plural = _("mint transactions")
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

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("ID")
    )
    mint_transaction = models.ForeignKey(
        MintTransaction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="attempts",
        verbose_name=_("mint transaction"),
    )
    signer = models.ForeignKey(
        SignerAccount, on_delete=models.PROTECT, related_name="attempts", verbose_name=_("signer")
    )
    nonce = models.BigIntegerField(verbose_name=_("nonce"))
    tx_hash = models.CharField(max_length=66, unique=True, verbose_name=_("transaction hash"))
    # the signed bytes, hex: rebroadcast exactly these
    raw_tx = models.TextField(verbose_name=_("signed transaction"))
    # wei
    max_fee_per_gas = models.DecimalField(
        max_digits=40, decimal_places=0, verbose_name=_("max fee per gas (wei)")
    )
    # wei
    max_priority_fee_per_gas = models.DecimalField(
        max_digits=40, decimal_places=0, verbose_name=_("max priority fee per gas (wei)")
    )
    gas_limit = models.BigIntegerField(verbose_name=_("gas limit"))
    kind = models.CharField(max_length=16, choices=Kind, default=Kind.MINT, verbose_name=_("kind"))
    status = models.CharField(
        max_length=16, choices=Status, default=Status.SIGNED, verbose_name=_("status")
    )
    error = models.TextField(blank=True, verbose_name=_("error"))
    created_at = models.DateTimeField(default=now, verbose_name=_("created at"))
    sent_at = models.DateTimeField(null=True, blank=True, verbose_name=_("sent at"))
    # What the mined one of a nonce's attempts cost, from its receipt (None until then, and on
    # the attempts that lost): gas_used x effective_gas_price + l1_fee, in wei. ``l1_fee`` is
    # the OP Stack's L1 data fee (the receipt's ``l1Fee``; 0 on a chain without one).
    gas_used = models.BigIntegerField(null=True, blank=True, verbose_name=_("gas used"))
    effective_gas_price = models.DecimalField(
        max_digits=40,
        decimal_places=0,
        null=True,
        blank=True,
        verbose_name=_("effective gas price (wei)"),
    )
    l1_fee = models.DecimalField(
        max_digits=40, decimal_places=0, null=True, blank=True, verbose_name=_("L1 data fee (wei)")
    )
    # the UTC day of its block
    mined_on = models.DateField(null=True, blank=True, verbose_name=_("mined on"))

    class Meta:
        verbose_name = _("mint attempt")
        verbose_name_plural = _("mint attempts")
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

    chain_id = models.BigIntegerField(verbose_name=_("chain ID"))
    tx_hash = models.CharField(max_length=66, verbose_name=_("transaction hash"))
    log_index = models.IntegerField(verbose_name=_("log index"))
    deposit = models.ForeignKey(
        "deposits.DepositRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="mint_log_claims",
        verbose_name=_("deposit"),
    )
    supersedes = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="superseded_by",
        verbose_name=_("supersedes"),
    )
    # no FK upward
    reconciliation_entry_id = models.UUIDField(
        null=True, blank=True, verbose_name=_("reconciliation entry ID")
    )
    claimed_at = models.DateTimeField(default=now, verbose_name=_("claimed at"))

    class Meta:
        verbose_name = _("mint log claim")
        verbose_name_plural = _("mint log claims")
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

    day = models.DateField(primary_key=True, verbose_name=_("day"))
    cap_override_tzs = models.BigIntegerField(
        null=True, blank=True, verbose_name=_("cap override (TZS)")
    )
    cap_override_reason = models.TextField(blank=True, verbose_name=_("cap override reason"))
    reserved_tzs = models.BigIntegerField(default=0, verbose_name=_("reserved (TZS)"))
    issued_tzs = models.BigIntegerField(default=0, verbose_name=_("issued (TZS)"))
    safe_issued_tzs = models.BigIntegerField(default=0, verbose_name=_("issued by the Safe (TZS)"))

    class Meta:
        verbose_name = _("daily issuance")
        verbose_name_plural = _("daily issuance")
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

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("ID")
    )
    deposits = models.ManyToManyField(
        "deposits.DepositRequest", related_name="safe_exports", verbose_name=_("deposits")
    )
    safe_nonce = models.BigIntegerField(null=True, blank=True, verbose_name=_("Safe nonce"))
    # The chain head read before the export was written: its payload cannot mint below it, so
    # the route-back's log reads start here (None: NTZS_DEPLOY_BLOCK).
    logs_from_block = models.BigIntegerField(
        null=True, blank=True, verbose_name=_("logs from block")
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("actor"),
    )
    payload = models.JSONField(default=dict, verbose_name=_("payload"))
    at = models.DateTimeField(default=now, verbose_name=_("time"))

    class Meta:
        verbose_name = _("Safe batch export")
        verbose_name_plural = _("Safe batch exports")

    def __str__(self) -> str:
        return f"Safe export {self.id} at {self.at:%Y-%m-%d %H:%M}"


class CircuitState(models.Model):
    """The shared RPC circuit breaker's state when Redis is not configured."""

    name = models.CharField(max_length=64, primary_key=True, verbose_name=_("name"))
    # closed|open|half_open
    state = models.CharField(max_length=16, default="closed", verbose_name=_("state"))
    failures = models.PositiveIntegerField(default=0, verbose_name=_("failures"))
    opened_at = models.DateTimeField(null=True, blank=True, verbose_name=_("opened at"))
    # the cluster-wide trial lock
    trial_until = models.DateTimeField(null=True, blank=True, verbose_name=_("trial until"))

    class Meta:
        verbose_name = _("circuit state")
        verbose_name_plural = _("circuit states")

    def __str__(self) -> str:
        return f"{self.name}: {self.state}"


class MinterCheckRecord(models.Model):
    """The last result of ``minting.tasks.check_minter`` (one row per check name, replaced by
    each run). Health pages show it instead of calling the chain on every request, so a page
    costs no RPC call and a flood of requests cannot reach the provider."""

    name = models.CharField(
        max_length=32, primary_key=True, default="minter", verbose_name=_("name")
    )
    checked_at = models.DateTimeField(default=now, verbose_name=_("checked at"))
    # the chain and the token could be read
    reachable = models.BooleanField(default=False, verbose_name=_("reachable"))
    error = models.TextField(blank=True, verbose_name=_("error"))  # why not, when unreachable
    chain_id = models.BigIntegerField(null=True, blank=True, verbose_name=_("chain ID"))
    contract_address = models.CharField(
        max_length=42, blank=True, verbose_name=_("contract address")
    )
    minter_address = models.CharField(max_length=42, blank=True, verbose_name=_("minter address"))
    has_minter_role = models.BooleanField(default=False, verbose_name=_("has the minter role"))
    # Wei can exceed a 64-bit integer (9.2 ETH); a whole-number decimal holds any uint256.
    gas_balance_wei = models.DecimalField(
        max_digits=78, decimal_places=0, null=True, blank=True, verbose_name=_("gas balance (wei)")
    )
    paused = models.BooleanField(default=False, verbose_name=_("paused"))
    problems = models.JSONField(default=list, blank=True, verbose_name=_("problems"))

    class Meta:
        verbose_name = _("minter check")
        verbose_name_plural = _("minter checks")

    def __str__(self) -> str:
        state = "ok" if self.reachable and not self.problems else "problem"
        return f"{self.name} check at {self.checked_at:%Y-%m-%d %H:%M}: {state}"
