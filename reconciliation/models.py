"""What the chain says (indexed logs, cursors, supply snapshots) and the entries that explain
every on-chain movement the deposits do not (DESIGN §4, §8).

Token amounts are exact base units in ``TokenUnitsField`` (NUMERIC(78,0) on PostgreSQL, decimal
text on SQLite, whose decimals would round them; signed where the books need a sign): balances,
burns and wipes can be fractional nTZS, so whole shillings could never balance them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.clock import now
from core.fields import TokenUnitsField


class ChainTransfer(models.Model):
    """One indexed token ``Transfer`` log. Rows of a block that stops being canonical (a reorg)
    are deleted by the indexer and read again from the canonical chain."""

    class Kind(models.TextChoices):
        MINT = "mint", _("mint")
        BURN = "burn", _("burn")
        TRANSFER = "transfer", _("transfer")

    class Claim(models.TextChoices):
        DEPOSIT = "deposit", _("a deposit")
        ENTRY = "entry", _("a reconciliation entry")
        SUPERSEDED = "superseded", _("a superseded claim")

    chain_id = models.BigIntegerField(verbose_name=_("chain"))
    tx_hash = models.CharField(max_length=66, verbose_name=_("transaction hash"))
    log_index = models.IntegerField(verbose_name=_("log index"))
    block_number = models.BigIntegerField(verbose_name=_("block"))
    block_hash = models.CharField(max_length=66, verbose_name=_("block hash"))
    from_address = models.CharField(max_length=42, verbose_name=_("from"))
    to_address = models.CharField(max_length=42, verbose_name=_("to"))
    amount_units = TokenUnitsField(verbose_name=_("amount (base units)"))
    kind = models.CharField(max_length=8, choices=Kind.choices, verbose_name=_("kind"))
    # For an unclaimed mint: whether its transaction was executed by SAFE_ADDRESS (an
    # ExecutionSuccess of our Safe), read once by the matching; None until read.
    safe_executed = models.BooleanField(null=True, blank=True, verbose_name=_("Safe executed"))
    indexed_at = models.DateTimeField(default=now, verbose_name=_("indexed at"))
    # The "judged" marker of a mint log: which MintLogClaim names it, set when the indexer
    # inserts the row or by the matching once the claim exists (claims are append-only and
    # one per log, so a marker never goes stale except by supersession, which the matching
    # applies; a reorg deletes the row and its marker with it). NULL: no claim seen yet —
    # the only rows the matching and the untracked lists look at. ``claimed_tzs`` is the
    # claimed deposit's amount (the books' figure, not the log's), so a snapshot's DB minted
    # is one sum over the marked rows up to its block.
    claim = models.CharField(
        max_length=10,
        choices=Claim.choices,
        null=True,
        blank=True,
        verbose_name=_("claimed by"),
    )
    claimed_tzs = models.BigIntegerField(
        null=True, blank=True, verbose_name=_("claimed deposit amount (TZS)")
    )

    class Meta:
        verbose_name = _("chain transfer")
        verbose_name_plural = _("chain transfers")
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "tx_hash", "log_index"], name="chain_transfer_once"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["mint", "burn", "transfer"]), name="chain_transfer_kind"
            ),
            models.CheckConstraint(condition=Q(amount_units__gte=0), name="chain_transfer_amount"),
            models.CheckConstraint(
                condition=Q(claim__isnull=True)
                | Q(claim__in=["deposit", "entry", "superseded"], kind="mint"),
                name="chain_transfer_claim",
            ),
            models.CheckConstraint(
                condition=Q(claimed_tzs__isnull=True) | Q(claim="deposit"),
                name="chain_transfer_claimed_tzs",
            ),
        ]
        indexes = [
            # reorg deletes and range reads: rows at or above a block
            models.Index(fields=["chain_id", "block_number"], name="chain_transfer_block"),
            # an address's transfers, in and out (impacted addresses). Out: every mint is from
            # the zero address, which no lookup asks for (impact_address_normalise refuses
            # it; the others follow a recipient or a holder), so mints are left out of the
            # index: one index fewer to maintain for each of them. A lookup of a given
            # address still uses it (PostgreSQL proves `from_address = '0xAb…'` implies the
            # condition when the address is a literal, as Django sends it).
            models.Index(
                fields=["from_address", "block_number"],
                condition=~Q(from_address="0x" + "00" * 20),
                name="chain_transfer_from",
            ),
            models.Index(fields=["to_address", "block_number"], name="chain_transfer_to"),
            # the snapshot's DB minted: one index-only sum of the claimed deposits' amounts
            models.Index(
                fields=["chain_id", "block_number"],
                include=["claimed_tzs"],
                condition=Q(kind="mint", claim="deposit"),
                name="chain_transfer_minted",
            ),
            # mint logs no claim was seen for: what each matching pass looks at
            models.Index(
                fields=["chain_id", "block_number"],
                condition=Q(kind="mint", claim__isnull=True),
                name="chain_transfer_unjudged",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.tx_hash}#{self.log_index}"


class TokenRoleEvent(models.Model):
    """One indexed ``RoleGranted`` or ``RoleRevoked`` log (the roles report reads these)."""

    class Kind(models.TextChoices):
        GRANTED = "granted", _("granted")
        REVOKED = "revoked", _("revoked")

    chain_id = models.BigIntegerField(verbose_name=_("chain"))
    tx_hash = models.CharField(max_length=66, verbose_name=_("transaction hash"))
    log_index = models.IntegerField(verbose_name=_("log index"))
    block_number = models.BigIntegerField(verbose_name=_("block"))
    block_hash = models.CharField(max_length=66, verbose_name=_("block hash"))
    kind = models.CharField(max_length=8, choices=Kind.choices, verbose_name=_("kind"))
    role = models.CharField(max_length=66, verbose_name=_("role"))  # bytes32, 0x-hex
    account = models.CharField(max_length=42, verbose_name=_("account"))
    sender = models.CharField(max_length=42, verbose_name=_("sender"))
    indexed_at = models.DateTimeField(default=now, verbose_name=_("indexed at"))

    class Meta:
        verbose_name = _("token role event")
        verbose_name_plural = _("token role events")
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "tx_hash", "log_index"], name="token_role_event_once"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["granted", "revoked"]), name="token_role_event_kind"
            ),
        ]
        indexes = [
            models.Index(fields=["chain_id", "block_number"], name="token_role_event_block"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.role} {self.account}"


class IndexerCursor(models.Model):
    """How far one stream (``transfers``, ``roles``) is indexed, with that block's hash so the
    next run can tell a reorg below the cursor."""

    name = models.CharField(max_length=32, primary_key=True, verbose_name=_("stream"))
    chain_id = models.BigIntegerField(verbose_name=_("chain"))
    block_number = models.BigIntegerField(verbose_name=_("last indexed block"))
    block_hash = models.CharField(max_length=66, verbose_name=_("block hash"))
    # Where indexing began, and the token's supply before it (what no indexed log explains:
    # a legacy token's opening balance); None until it could be read.
    first_block = models.BigIntegerField(null=True, blank=True, verbose_name=_("first block"))
    supply_before_units = TokenUnitsField(
        null=True, blank=True, verbose_name=_("supply before the first block")
    )
    updated_at = models.DateTimeField(default=now, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("indexer cursor")
        verbose_name_plural = _("indexer cursors")

    def __str__(self) -> str:
        return f"{self.name} @ {self.block_number}"


class ReconciliationEntry(models.Model):
    """An on-chain movement the deposits do not explain, explained by two people. Immutable:
    no edit and no delete, in the admin and (by trigger) in the database."""

    class EntryType(models.TextChoices):
        UNTRACKED_MINT = "untracked_mint", _("untracked mint")
        TEST_MINT = "test_mint", _("test mint")
        MANUAL_CORRECTION = "manual_correction", _("manual correction")
        DOUBLE_MINT = "double_mint", _("double mint")
        BURN = "burn", _("burn")
        WIPE = "wipe", _("wipe")
        OPENING_BALANCE = "opening_balance", _("opening balance")
        OTHER = "other", _("other")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    chain_id = models.BigIntegerField(verbose_name=_("chain"))
    tx_hash = models.CharField(max_length=66, blank=True, verbose_name=_("transaction hash"))
    log_index = models.IntegerField(null=True, blank=True, verbose_name=_("log index"))
    # an opening balance is stated at a block (supply from before this system)
    block_number = models.BigIntegerField(null=True, blank=True, verbose_name=_("block"))
    to_address = models.CharField(max_length=42, blank=True, verbose_name=_("address"))
    # signed base units: a burn or a wipe is negative
    amount_units = TokenUnitsField(signed=True, verbose_name=_("amount (base units)"))
    entry_type = models.CharField(
        max_length=32, choices=EntryType.choices, verbose_name=_("entry type")
    )
    reason = models.TextField(verbose_name=_("reason"))
    notes = models.TextField(blank=True, verbose_name=_("notes"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("made by"),
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("approved by"),
    )
    dual_control_request_id = models.UUIDField(
        null=True, blank=True, verbose_name=_("four-eyes request")
    )
    created_at = models.DateTimeField(default=now, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("reconciliation entry")
        verbose_name_plural = _("reconciliation entries")
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "tx_hash", "log_index"],
                condition=Q(log_index__isnull=False),
                name="reconciliation_entry_log_once",
            ),
            models.CheckConstraint(
                condition=~Q(created_by=models.F("approved_by")),
                name="reconciliation_entry_four_eyes",
            ),
            models.CheckConstraint(
                condition=Q(
                    entry_type__in=[
                        "untracked_mint",
                        "test_mint",
                        "manual_correction",
                        "double_mint",
                        "burn",
                        "wipe",
                        "opening_balance",
                        "other",
                    ]
                ),
                name="reconciliation_entry_type",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entry_type} {self.amount_units}"


class SupplySnapshot(models.Model):
    """``totalSupply`` at a block against the books. A figure that could not be read is NULL
    (shown and served as unavailable), never 0."""

    at = models.DateTimeField(default=now, db_index=True, verbose_name=_("taken at"))
    chain_id = models.BigIntegerField(verbose_name=_("chain"))
    block_number = models.BigIntegerField(null=True, blank=True, verbose_name=_("block"))
    onchain_supply_units = TokenUnitsField(
        null=True, blank=True, verbose_name=_("on-chain supply (base units)")
    )
    # claimed mint logs up to the block, in shillings (the books' side of the equation)
    db_minted_tzs = models.BigIntegerField(verbose_name=_("DB minted (TZS)"))
    # the sum of minted deposits: a cross-check of the claims
    deposits_minted_tzs = models.BigIntegerField(
        null=True, blank=True, verbose_name=_("minted deposits (TZS)")
    )
    reconciled_units = TokenUnitsField(signed=True, verbose_name=_("reconciled (base units)"))
    in_flight_tzs = models.BigIntegerField(default=0, verbose_name=_("in flight (TZS)"))
    discrepancy_units = TokenUnitsField(
        signed=True, null=True, blank=True, verbose_name=_("discrepancy (base units)")
    )
    unavailable_reason = models.TextField(blank=True, verbose_name=_("why unavailable"))
    # The balances of TREASURY_ADDRESSES at the block (circulating = on-chain supply minus
    # this), read with the supply; NULL when it could not be read, 0 with no address listed.
    treasury_units = TokenUnitsField(
        null=True, blank=True, verbose_name=_("treasury balances (base units)")
    )

    class Meta:
        verbose_name = _("supply snapshot")
        verbose_name_plural = _("supply snapshots")

    def __str__(self) -> str:
        return f"snapshot {self.at:%Y-%m-%d %H:%M} block {self.block_number}"
