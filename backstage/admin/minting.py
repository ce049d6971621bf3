"""Minting ledgers, read-only for everyone: the pipeline and the Safe lane write them through
minting.services; the minting control page and its actions come with their own screens."""

from __future__ import annotations

from django.contrib import admin

from backstage.admin.base import ReadOnlyAdmin
from backstage.admin.site import site
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


@admin.register(MintTransaction, site=site)
class MintTransactionAdmin(ReadOnlyAdmin):
    list_display = ("deposit_id", "status", "source", "amount_units", "tx_hash", "created_at")
    list_filter = ("status", "source")
    search_fields = ("tx_hash",)
    show_full_result_count = False


@admin.register(MintAttempt, site=site)
class MintAttemptAdmin(ReadOnlyAdmin):
    list_display = ("tx_hash", "nonce", "kind", "status", "created_at", "sent_at")
    list_filter = ("kind", "status")
    search_fields = ("tx_hash",)
    exclude = ("raw_tx",)  # signed bytes: of no use to a reader, and long
    show_full_result_count = False


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
