"""Minting ledgers, read-only for everyone: the pipeline and the Safe lane write them through
minting.services; the minting control page and its actions come with their own screens."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from backstage.admin.base import ReadOnlyAdmin
from backstage.admin.site import site
from deposits.selectors import tx_explorer_url
from minting.models import (
    CircuitState,
    DailyIssuance,
    MintAttempt,
    MinterCheckRecord,
    MintLogClaim,
    MintTransaction,
    SafeBatchExport,
    SignerAccount,
    TokenDeployment,
)
from minting.selectors import wei_as_eth, wei_as_gwei


def _explorer_link(tx_hash: str):
    """The hash, linked to the chain's explorer when it has one (EXPLORER_URL)."""
    url = tx_explorer_url(tx_hash) if tx_hash else ""
    if not url:
        return tx_hash or "—"
    link = '<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>'
    return format_html(link, url, tx_hash)


@admin.register(MintTransaction, site=site)
class MintTransactionAdmin(ReadOnlyAdmin):
    list_display = ("deposit_id", "status", "source", "amount_units", "transaction", "created_at")
    list_filter = ("status", "source")
    search_fields = ("=tx_hash",)
    show_full_result_count = False

    @admin.display(description=_("transaction hash"))
    def transaction(self, obj):
        return _explorer_link(obj.tx_hash)


@admin.register(MintAttempt, site=site)
class MintAttemptAdmin(ReadOnlyAdmin):
    list_display = (
        "transaction",
        "nonce",
        "kind",
        "status",
        "max_fee_gwei",
        "cost",
        "created_at",
        "sent_at",
    )
    list_filter = ("kind", "status")
    search_fields = ("=tx_hash",)
    exclude = ("raw_tx",)  # signed bytes: of no use to a reader, and long
    show_full_result_count = False

    @admin.display(description=_("transaction hash"))
    def transaction(self, obj):
        return _explorer_link(obj.tx_hash)

    @admin.display(description=_("max fee per gas"))
    def max_fee_gwei(self, obj):
        return wei_as_gwei(int(obj.max_fee_per_gas))

    @admin.display(description=_("cost"))
    def cost(self, obj):
        if obj.gas_used is None or obj.effective_gas_price is None:
            return "—"
        return wei_as_eth(obj.gas_used * int(obj.effective_gas_price) + int(obj.l1_fee or 0))


@admin.register(MintLogClaim, site=site)
class MintLogClaimAdmin(ReadOnlyAdmin):
    list_display = ("tx_hash", "log_index", "deposit_id", "reconciliation_entry_id", "claimed_at")
    search_fields = ("tx_hash",)


@admin.register(SafeBatchExport, site=site)
class SafeBatchExportAdmin(ReadOnlyAdmin):
    list_display = ("id", "safe_nonce", "actor", "at")
    list_select_related = ("actor",)


@admin.register(DailyIssuance, site=site)
class DailyIssuanceAdmin(ReadOnlyAdmin):
    list_display = ("day", "cap_override_tzs", "reserved_tzs", "issued_tzs", "safe_issued_tzs")


@admin.register(SignerAccount, site=site)
class SignerAccountAdmin(ReadOnlyAdmin):
    list_display = ("address", "chain_id", "next_nonce", "last_mined_nonce", "sending_enabled")


@admin.register(CircuitState, site=site)
class CircuitStateAdmin(ReadOnlyAdmin):
    list_display = ("name", "state", "failures", "opened_at")


@admin.register(TokenDeployment, site=site)
class TokenDeploymentAdmin(ReadOnlyAdmin):
    list_display = ("chain_id", "contract_address", "deploy_block", "deployed_at")


@admin.register(MinterCheckRecord, site=site)
class MinterCheckRecordAdmin(ReadOnlyAdmin):
    list_display = ("name", "checked_at", "reachable", "has_minter_role", "paused")
