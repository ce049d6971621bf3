"""The Safe lane in Backstage (DESIGN §7.9, §9): the ``mint_requires_safe`` queue; a Safe
Transaction Builder batch file for the deposits selected there (GET previews exactly what will
be exported and writes nothing; POST calls ``minting.services.safe.safe_batch_file``, which
records the ``SafeBatchExport``, and answers with the file). The preview shows each call in
words — contract, method, recipient, amount, reference — but not its calldata: a mint payload
leaves the system only through the export, which records it (DESIGN §7.9: after an export, no
payment may be left unbacked); the call that voids an exported
``mintForDeposit`` payload; the maker's record of a consumed Safe nonce (four eyes: the checker
decides in "Waiting for me"); and the record of an executed Safe transaction by its hash, whose
answer is the verification in plain words.

Compliance officers and super admins (the services' own operator roles) open these pages; the
services decide everything else (roles again, the beneficiary, the deposit's state, the chain)
and a refusal is shown in their words. The queue and the preview read the chain only for what
the export itself reads (the token's policy, voided references), in one batch."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from functools import partial

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Max, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods
from web3.exceptions import Web3Exception

from core.exceptions import ServiceError
from core.models import DualControlRequest
from core.roles import user_has_role
from deposits.models import DepositRequest
from deposits.selectors import deposit_get
from minting.chain import ChainError
from minting.contract_artifact import deposit_ref
from minting.models import SafeBatchExport
from minting.services.deposit_refs import MINT_FOR_DEPOSIT, export_method, signs_with_ref
from minting.services.lanes import (
    safe_export_void_payload,
    safe_nonce_consumed_record,
    safe_void_payload_export,
)
from minting.services.safe import (
    NONCE_RECORD,
    OPERATOR_ROLES,
    SafeExportCouldMintTwice,
    approved_nonce_records,  # the route-back's own rule for a dead plain-mint export
    chain_client,
    exportable_check,  # the export's own refusal, shown in the preview before the POST
    exports_that_could_double,  # the export's own rule, shown in the preview before the POST
    mint_call,
    mint_with_ref,
    nonce_export_covered,
    safe_batch_file,
    safe_mint_record,
)

S = DepositRequest.Status
QUEUE_LIMIT = 200  # deposits listed; a longer Safe queue is an incident of its own
# Refusals a person reads: the services' and the chain's; an unanswering node is one too.
REFUSALS = (ServiceError, ChainError, OSError, ValueError, Web3Exception)


def refusal_text(exc: Exception) -> str:
    if isinstance(exc, ServiceError | ChainError):
        return str(exc)
    return _("The chain could not be read (%(error)s); try again.") % {"error": type(exc).__name__}


def safe_lane_allowed(user) -> bool:
    """Compliance and super admins: the roles the Safe services themselves require."""
    return user.is_authenticated and user_has_role(user, *OPERATOR_ROLES)


def _require_allowed(request) -> None:
    if not safe_lane_allowed(request.user):
        raise PermissionDenied


# --- Forms -------------------------------------------------------------------------------------


# Wide enough for a whole deposit id (36) and a whole transaction hash (66).
ID_INPUT = forms.TextInput(attrs={"size": 40, "autocomplete": "off", "spellcheck": "false"})
HASH_INPUT = forms.TextInput(attrs={"size": 70, "autocomplete": "off", "spellcheck": "false"})


class ExportForm(forms.Form):
    safe_nonce = forms.IntegerField(
        label=gettext_lazy("Safe nonce (optional)"),
        min_value=0,
        required=False,
        help_text=gettext_lazy(
            "The nonce the proposal will use in the Safe app, when you know it; it is written "
            "into the batch file and lets two people later prove the proposal dead."
        ),
    )
    acknowledge = forms.BooleanField(
        label=gettext_lazy(
            "I have checked in the Safe app that no earlier proposal for these deposits will be "
            "executed (rejected, or replaced at the same Safe nonce)."
        ),
        required=False,
    )


class VoidForm(forms.Form):
    """Nothing to enter: the button is the decision."""


class NonceForm(forms.Form):
    tx_hash = forms.CharField(
        label=gettext_lazy("Safe transaction hash"), max_length=100, widget=HASH_INPUT
    )
    proposal_nonce = forms.IntegerField(
        label=gettext_lazy("Safe nonce of the exported proposal (if the export did not record it)"),
        min_value=0,
        required=False,
    )
    # Not required here: an empty note reaches the service, which refuses it in its words.
    evidence = forms.CharField(
        label=gettext_lazy("Evidence for the checker"),
        max_length=4000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class RecordForm(forms.Form):
    deposit_id = forms.CharField(label=gettext_lazy("Deposit ID"), max_length=64, widget=ID_INPUT)
    tx_hash = forms.CharField(
        label=gettext_lazy("Safe transaction hash"), max_length=100, widget=HASH_INPUT
    )


# --- Reads -------------------------------------------------------------------------------------


@dataclass
class PayloadState:
    """Whether the deposit's exported payloads can still mint it, as far as the database and
    one chain read tell: ``none`` (never exported), ``dead``, ``live`` or ``unknown``."""

    state: str
    text: str
    ref_live: bool = False  # a mintForDeposit payload may still execute (or unknown)
    plain_live: bool = False  # a plain mint payload may still execute


@dataclass
class QueueRow:
    deposit: DepositRequest
    since: object  # when it entered the Safe lane
    exports: list[SafeBatchExport] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)  # per export, same order
    payloads: PayloadState | None = None
    ref_voided: bool | None = None  # read only with a mintForDeposit export; None: unknown

    @property
    def wallet_short(self) -> str:
        """The queue's narrow column; the full address is its title and on the preview."""
        address = self.deposit.wallet.address
        return f"{address[:8]}…{address[-6:]}"

    @property
    def exported(self) -> list[tuple[SafeBatchExport, str]]:
        return list(zip(self.exports, self.methods, strict=True))

    @property
    def exported_with_ref(self) -> bool:
        return MINT_FOR_DEPOSIT in self.methods

    @property
    def exported_plain(self) -> bool:
        return any(method != MINT_FOR_DEPOSIT for method in self.methods)


def _deposits(ids=None) -> list[DepositRequest]:
    queryset = DepositRequest.objects.select_related("user", "wallet").annotate(
        safe_since=Max("transitions__at", filter=Q(transitions__to_status=S.MINT_REQUIRES_SAFE))
    )
    if ids is None:
        queryset = queryset.filter(status=S.MINT_REQUIRES_SAFE).order_by("created_at")
        return list(queryset[:QUEUE_LIMIT])
    found = {d.pk: d for d in queryset.filter(pk__in=ids)}
    return [found[i] for i in ids if i in found]


def _refs_voided(deposit_ids: list[uuid.UUID]) -> dict[uuid.UUID, bool] | None:
    """``isDepositRefVoided`` of each deposit, in one JSON-RPC batch (None: unreadable)."""
    if not deposit_ids:
        return {}
    try:
        answers = chain_client().views(
            [("isDepositRefVoided", (deposit_ref(d),)) for d in deposit_ids]
        )
    except REFUSALS:
        return None
    return dict(zip(deposit_ids, (bool(a) for a in answers), strict=True))


def _payload_state(row: QueueRow, voided: dict | None) -> PayloadState:
    if not row.exports:
        return PayloadState("none", _("never exported"))
    plain = [e for e, m in zip(row.exports, row.methods, strict=True) if m != MINT_FOR_DEPOSIT]
    records = approved_nonce_records(row.deposit.pk) if plain else []
    plain_live = not all(nonce_export_covered(export, records) for export in plain)
    if row.exported_with_ref and voided is None:
        return PayloadState(
            "unknown",
            _("unknown: the chain could not be read"),
            ref_live=True,
            plain_live=plain_live,
        )
    ref_live = row.exported_with_ref and not voided.get(row.deposit.pk, False)
    if ref_live or plain_live:
        return PayloadState(
            "live",
            _("no: an exported payload can still be executed"),
            ref_live=ref_live,
            plain_live=plain_live,
        )
    why = []
    if row.exported_with_ref:
        why.append(_("reference voided on chain"))
    if plain:
        why.append(_("Safe nonce consumed, recorded by two people"))
    return PayloadState("dead", _("yes: %(why)s") % {"why": ", ".join(why)})


def safe_queue_rows(ids=None) -> list[QueueRow]:
    """The Safe lane's deposits (or the ``ids`` given, in that order) with their exports."""
    deposits = _deposits(ids)
    rows = {d.pk: QueueRow(deposit=d, since=d.safe_since) for d in deposits}
    exports = (
        SafeBatchExport.objects.filter(deposits__in=list(rows))
        .select_related("actor")
        .prefetch_related("deposits")
        .order_by("at")
        .distinct()
    )
    for export in exports:
        for deposit in export.deposits.all():
            row = rows.get(deposit.pk)
            if row is not None:
                row.exports.append(export)
                row.methods.append(export_method(export, deposit.pk))
    with_ref = [pk for pk, row in rows.items() if row.exported_with_ref]
    voided = _refs_voided(with_ref)
    for row in rows.values():
        row.payloads = _payload_state(row, voided)
        row.ref_voided = None if voided is None else voided.get(row.deposit.pk)
    return list(rows.values())


@dataclass
class PreviewRow:
    row: QueueRow
    call: dict | None = None
    refusal: str = ""  # the export service's sentence: this deposit would refuse the POST
    # Earlier exports that may still execute with nothing on chain to stop both from minting
    # (the loud warning), by the export's own rule; the POST must confirm exactly these.
    doubling: list[SafeBatchExport] = field(default_factory=list)

    @property
    def plain(self) -> bool:
        return self.call is not None and self.call["method"] != MINT_FOR_DEPOSIT

    @property
    def doubles(self) -> bool:
        return bool(self.doubling)


@dataclass
class Preview:
    rows: list[PreviewRow]
    with_ref: bool | None = None  # the token's policy for new exports; None: unknown
    refusal: str = ""  # the whole export would be refused (the chain, the configuration)

    @property
    def total_tzs(self) -> int:
        return sum(r.row.deposit.amount_tzs for r in self.rows if r.call is not None)

    @property
    def calls(self) -> list[dict]:
        return [r.call for r in self.rows if r.call is not None]

    @property
    def exportable(self) -> bool:
        return not self.refusal and bool(self.rows) and all(not r.refusal for r in self.rows)

    @property
    def earlier(self) -> list[PreviewRow]:
        return [r for r in self.rows if r.row.exports]

    @property
    def doubles(self) -> list[PreviewRow]:
        return [r for r in self.rows if r.doubles]

    @property
    def doubling_export_ids(self) -> list[uuid.UUID]:
        """The earlier exports the person confirms by ticking the box, each once."""
        ids: list[uuid.UUID] = []
        for row in self.rows:
            ids += [e.pk for e in row.doubling if e.pk not in ids]
        return ids


def safe_batch_preview(ids: list[uuid.UUID]) -> Preview:
    """Exactly what ``safe_batch_file`` would export for these deposits — the calls, the
    method, the total, the earlier exports — computed the way it computes them, with nothing
    written. Deposits it would refuse carry its sentence."""
    preview = Preview(rows=[PreviewRow(row=row) for row in safe_queue_rows(ids)])
    token = settings.NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA
    try:
        if not token:
            raise ServiceError(
                _("NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA is not set; configure the token.")
            )
        preview.with_ref = mint_with_ref(chain_client)
        voided = _refs_voided([r.row.deposit.pk for r in preview.rows]) if preview.with_ref else {}
        if voided is None:
            raise ServiceError(_("The chain could not be read; try again."))
    except REFUSALS as exc:
        preview.refusal = refusal_text(exc)
        return preview
    for item in preview.rows:
        deposit = item.row.deposit
        try:
            exportable_check(deposit)
        except ServiceError as exc:
            item.refusal = str(exc)
            continue
        ref_voided = voided.get(deposit.pk, False)
        item.call = mint_call(
            deposit=deposit,
            token=token,
            with_ref=signs_with_ref(policy=preview.with_ref, ref_voided=ref_voided),
        )
        item.doubling = exports_that_could_double(
            deposit_id=deposit.pk,
            new_method=item.call["method"],
            exports=item.row.exports,
            ref_voided=item.row.ref_voided,
        )
    return preview


def _selected_ids(values) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for value in values:
        try:
            deposit_id = uuid.UUID(str(value).strip())
        except ValueError:
            raise Http404(_("There is no deposit %(id)s.") % {"id": value}) from None
        if deposit_id not in ids:
            ids.append(deposit_id)
    return ids


def _deposit_or_404(deposit_id) -> DepositRequest:
    try:
        return deposit_get(deposit_id=deposit_id)
    except ServiceError as exc:
        raise Http404(str(exc)) from None


def _nonce_requests(deposit_id) -> list[DualControlRequest]:
    return list(
        DualControlRequest.objects.filter(action=NONCE_RECORD, target_id=str(deposit_id))
        .select_related("maker", "checker")
        .order_by("-made_at")[:20]
    )


# --- Pages -------------------------------------------------------------------------------------


def safe_queue(request, *, site):
    _require_allowed(request)
    context = {
        **site.each_context(request),
        "title": _("Safe lane"),
        "rows": safe_queue_rows(),
        "queue_limit": QUEUE_LIMIT,
    }
    return TemplateResponse(request, "backstage/safe_queue.html", context)


def _download(batch: dict, filename: str) -> HttpResponse:
    response = HttpResponse(json.dumps(batch, indent=2) + "\n", content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "HEAD", "POST"])
def safe_export(request, *, site):
    """GET: the preview (reads only). POST: the export, answered with the batch file."""
    _require_allowed(request)
    source = request.POST if request.method == "POST" else request.GET
    ids = _selected_ids(source.getlist("deposit"))
    if not ids:
        messages.error(request, _("Select at least one deposit to export."))
        return redirect("admin:safe_queue")
    preview = safe_batch_preview(ids)
    if len(preview.rows) != len(ids):
        raise Http404(_("A selected deposit does not exist."))
    form = ExportForm(request.POST if request.method == "POST" else None)
    refused_ids: list[str] = []
    if request.method == "POST" and form.is_valid():
        # The tick confirms the earlier exports this page showed (its hidden fields), and only
        # those: the service decides under its lock whether they are all that could double.
        checked = request.POST.getlist("checked_export") if form.cleaned_data["acknowledge"] else []
        try:
            result = safe_batch_file(
                deposit_ids=ids,
                actor=request.user,
                safe_nonce=form.cleaned_data["safe_nonce"],
                checked_exports=checked,
            )
        except SafeExportCouldMintTwice as exc:
            # Shown again as it is now, the box unticked: what must be checked has changed.
            # The box confirms what the service refused too (a chain read may differ between
            # the preview and the service's own check under the lock).
            preview = safe_batch_preview(ids)
            refused_ids = [str(export_id) for export_id in exc.export_ids]
            data = request.POST.copy()
            data.pop("acknowledge", None)
            form = ExportForm(data)
            form.is_valid()
            form.add_error(
                None,
                _(
                    "This export could mint twice: tick the box once you have checked in the "
                    "Safe app that none of the earlier proposals listed below for these "
                    "deposits will be executed."
                ),
            )
            if not preview.doubles:  # the preview lists none of them: the service's words do
                form.add_error(None, refusal_text(exc))
        except REFUSALS as exc:
            messages.error(request, refusal_text(exc))
        else:
            messages.success(
                request,
                _(
                    "Safe export %(id)s is recorded: load the downloaded file in the Safe "
                    "Transaction Builder, then record the executed transaction's hash here."
                )
                % {"id": result["export_id"]},
            )
            return _download(result["batch"], f"ntzs-safe-mint-{result['export_id']}.json")
    to_confirm = list(dict.fromkeys([str(i) for i in preview.doubling_export_ids] + refused_ids))
    context = {
        **site.each_context(request),
        "title": _("Safe batch file"),
        "preview": preview,
        "form": form,
        "ids": ids,
        "to_confirm": to_confirm,
    }
    return TemplateResponse(request, "backstage/safe_export.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
def safe_void(request, *, site, deposit_id):
    """GET: the ``voidDepositRef`` call that kills every exported ``mintForDeposit`` payload
    of the deposit. POST: the same call as a batch file for the Safe (recorded)."""
    _require_allowed(request)
    deposit = _deposit_or_404(deposit_id)
    void, refusal = None, ""
    try:
        void = safe_export_void_payload(deposit_id=deposit.pk)
    except REFUSALS as exc:
        refusal = refusal_text(exc)
    if request.method == "POST" and void is not None:
        try:
            void = safe_void_payload_export(deposit_id=deposit.pk, actor=request.user)
        except ServiceError as exc:
            messages.error(request, str(exc))
        else:
            return _download(void["batch"], f"ntzs-safe-void-{deposit.pk}.json")
    context = {
        **site.each_context(request),
        "title": _("Void the exported Safe payload"),
        "row": safe_queue_rows([deposit.pk])[0],
        "void": void,
        "refusal": refusal,
        "form": VoidForm(),
    }
    return TemplateResponse(request, "backstage/safe_void.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
def safe_nonce(request, *, site, deposit_id):
    """The maker's half of "this Safe nonce was consumed and minted nothing"; a different
    person approves it in the four-eyes queue."""
    _require_allowed(request)
    deposit = _deposit_or_404(deposit_id)
    form = NonceForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            made = safe_nonce_consumed_record(
                deposit_id=deposit.pk,
                tx_hash=data["tx_hash"],
                evidence=data["evidence"],
                maker=request.user,
                proposal_nonce=data["proposal_nonce"],
            )
        except REFUSALS as exc:
            messages.error(request, refusal_text(exc))
        else:
            messages.success(
                request,
                _(
                    "Four-eyes request %(id)s is made (Safe nonce %(nonce)s consumed); another "
                    "member of staff decides it in Waiting for me. Until then the exported "
                    "payload counts as executable."
                )
                % {"id": made.pk, "nonce": made.params["safe_nonce"]},
            )
            return redirect("admin:safe_nonce", deposit_id=deposit.pk)
    context = {
        **site.each_context(request),
        "title": _("Record a consumed Safe nonce"),
        "row": safe_queue_rows([deposit.pk])[0],
        "requests": _nonce_requests(deposit.pk),
        "form": form,
    }
    return TemplateResponse(request, "backstage/safe_nonce.html", context)


@dataclass(frozen=True)
class RecordAnswer:
    kind: str  # minted | awaiting | refused
    text: str


def _record(request, data) -> RecordAnswer:
    try:
        outcome = safe_mint_record(
            deposit_id=data["deposit_id"].strip(), tx_hash=data["tx_hash"], actor=request.user
        )
    except REFUSALS as exc:
        return RecordAnswer("refused", refusal_text(exc))
    tx_hash = data["tx_hash"].strip().lower()
    if outcome == "minted":
        return RecordAnswer(
            "minted",
            _("Minted: deposit %(deposit)s is minted by Safe transaction %(tx)s.")
            % {"deposit": data["deposit_id"].strip(), "tx": tx_hash},
        )
    return RecordAnswer(
        "awaiting",
        _(
            "Awaiting confirmations: Safe transaction %(tx)s proves the mint but is not yet "
            "%(n)s block(s) deep; the deposit is recorded as minted by itself once it is "
            "(confirm_mints checks it). Nothing more to do."
        )
        % {"tx": tx_hash, "n": settings.MINT_CONFIRMATIONS},
    )


@require_http_methods(["GET", "HEAD", "POST"])
def safe_record(request, *, site):
    """The executed Safe transaction's hash; the answer is the verification in plain words."""
    _require_allowed(request)
    answer = None
    if request.method == "POST":
        form = RecordForm(request.POST)
        if form.is_valid():
            answer = _record(request, form.cleaned_data)
    else:
        form = RecordForm(initial={"deposit_id": request.GET.get("deposit", "")})
    context = {
        **site.each_context(request),
        "title": _("Record a Safe transaction hash"),
        "form": form,
        "answer": answer,
        "confirmations": settings.MINT_CONFIRMATIONS,
    }
    return TemplateResponse(request, "backstage/safe_record.html", context)


def safe_urls(site) -> list:
    """The Safe lane's URLs, added by ``BackstageSite.get_urls`` (namespace ``admin``)."""
    return [
        path("safe/", site.admin_view(partial(safe_queue, site=site)), name="safe_queue"),
        path("safe/export/", site.admin_view(partial(safe_export, site=site)), name="safe_export"),
        path("safe/record/", site.admin_view(partial(safe_record, site=site)), name="safe_record"),
        path(
            "safe/<uuid:deposit_id>/void/",
            site.admin_view(partial(safe_void, site=site)),
            name="safe_void",
        ),
        path(
            "safe/<uuid:deposit_id>/nonce/",
            site.admin_view(partial(safe_nonce, site=site)),
            name="safe_nonce",
        ),
    ]
