"""Reconciliation ledgers, read-only for everyone: the indexer writes transfers, role events
and cursors; snapshots come from the snapshot task; entries only from the four-eyes service
(reconciliation.services.entries). Amounts show as exact nTZS (base units in the detail)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from backstage.admin.base import ReadOnlyAdmin
from backstage.admin.site import site
from core.money import units_as_ntzs
from reconciliation.models import (
    ChainTransfer,
    IndexerCursor,
    ReconciliationEntry,
    SupplySnapshot,
    TokenRoleEvent,
)

UNAVAILABLE = _("unavailable")


def _ntzs(units) -> str:
    return UNAVAILABLE if units is None else units_as_ntzs(int(units))


@admin.register(ChainTransfer, site=site)
class ChainTransferAdmin(ReadOnlyAdmin):
    list_display = ("block_number", "kind", "from_address", "to_address", "amount", "tx_hash")
    list_filter = ("kind",)
    # exact matches on indexed columns: a hash or an address is typed whole
    search_fields = ("=tx_hash", "=from_address", "=to_address")
    ordering = ("-block_number", "-log_index")
    show_full_result_count = False

    @admin.display(description=_("amount (nTZS)"), ordering="amount_units")
    def amount(self, obj):
        return _ntzs(obj.amount_units)


@admin.register(TokenRoleEvent, site=site)
class TokenRoleEventAdmin(ReadOnlyAdmin):
    list_display = ("block_number", "kind", "role", "account", "sender", "tx_hash")
    list_filter = ("kind",)
    search_fields = ("=account", "=tx_hash")
    ordering = ("-block_number", "-log_index")


@admin.register(IndexerCursor, site=site)
class IndexerCursorAdmin(ReadOnlyAdmin):
    list_display = ("name", "chain_id", "block_number", "block_hash", "updated_at")


@admin.register(SupplySnapshot, site=site)
class SupplySnapshotAdmin(ReadOnlyAdmin):
    list_display = (
        "at",
        "block_number",
        "onchain_supply",
        "db_minted_tzs",
        "reconciled",
        "in_flight_tzs",
        "discrepancy",
    )
    ordering = ("-at",)
    date_hierarchy = "at"
    show_full_result_count = False

    @admin.display(description=_("on-chain supply (nTZS)"))
    def onchain_supply(self, obj):
        return _ntzs(obj.onchain_supply_units)

    @admin.display(description=_("reconciled (nTZS)"))
    def reconciled(self, obj):
        return _ntzs(obj.reconciled_units)

    @admin.display(description=_("discrepancy (nTZS)"))
    def discrepancy(self, obj):
        return _ntzs(obj.discrepancy_units)


@admin.register(ReconciliationEntry, site=site)
class ReconciliationEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "entry_type",
        "amount",
        "to_address",
        "tx_hash",
        "created_by",
        "approved_by",
    )
    list_filter = ("entry_type",)
    search_fields = ("=tx_hash", "=to_address")
    list_select_related = ("created_by", "approved_by")
    ordering = ("-created_at",)

    @admin.display(description=_("amount (nTZS)"), ordering="amount_units")
    def amount(self, obj):
        return _ntzs(obj.amount_units)
