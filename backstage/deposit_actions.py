"""The deposit screens' actions (DESIGN §9): each a confirmation page — GET shows exactly what
will happen (the deposit, the amount, who benefits, the service that will run) and changes
nothing; POST calls that service with the logged-in person as the actor. The services decide
who may act (roles, the bank, the beneficiary, four eyes); a refusal is shown in their words.

Which buttons a deposit's page offers follows the role table and the deposit's status; that is
only a convenience: a forged POST meets the same service refusal. The four-eyes actions
(manual confirmation, hold release, refund) only make the request here; the four-eyes queue
decides it.

Also the reads behind the deposit's detail page (``deposit_detail_facts``), each bounded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, prefetch_related_objects
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods
from web3.exceptions import Web3Exception

from backstage.admin.base import request_has_role
from core.exceptions import ServiceError
from core.models import AdminAction, DualControlRequest
from core.roles import BANK_ADMIN, PLATFORM_COMPLIANCE, SUPER_ADMIN
from deposits.models import DepositApproval, DepositRequest
from deposits.selectors import tx_explorer_url
from deposits.services.bank import (
    deposit_bank_approve,
    deposit_bank_reject,
    deposit_platform_approve,
    deposit_platform_reject,
)
from deposits.services.operator import (
    UNPAID_REFUNDABLE,
    deposit_cancel_by_operator,
    deposit_confirm_manual_request,
    deposit_hold_release_request,
    deposit_refund_record_request,
)
from deposits.services.transitions import deposit_lane
from minting.chain import ChainError
from minting.models import MintLogClaim, MintTransaction
from minting.rpc import mint_client
from minting.services.lanes import mint_refund_record, mint_route_to_safe, mint_route_to_worker
from minting.services.operator import mint_retry
from reconciliation.selectors import claims_on_chain

S = DepositRequest.Status
BANK_TRANSFER = DepositRequest.Provider.BANK_TRANSFER
ZENOPAY = DepositRequest.Provider.ZENOPAY
OPERATORS = (PLATFORM_COMPLIANCE, SUPER_ADMIN)
FACTS_SHOWN = 100  # rows of each history on the detail page; the ledgers' own lists hold all
MINT_STATUSES_REFUNDABLE = (S.MINT_PENDING, S.MINT_FAILED, S.MINT_REQUIRES_SAFE)
# Refusals a person reads: the services' (roles, states, four eyes) and the chain's.
REFUSALS = (ServiceError, ChainError)
# A node that does not answer while a retry reads its proof: that deposit's error, not a 500
# that would hide what the rows before it did.
CHAIN_UNREADABLE = (OSError, Web3Exception)


def refusal_text(exc: Exception) -> str:
    if isinstance(exc, REFUSALS):
        return str(exc)
    return _("The chain could not be read (%(error)s); try again.") % {"error": exc}


# --- Forms -----------------------------------------------------------------------------------


class ConfirmForm(forms.Form):
    """Nothing to enter: the button is the decision."""


class ReasonForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=1000, widget=forms.Textarea)


class BankApprovalForm(forms.Form):
    amount_received_tzs = forms.CharField(
        label=gettext_lazy("Amount received (TZS)"),
        max_length=24,
        help_text=gettext_lazy("Whole shillings, as the bank statement shows them."),
    )
    bank_reference = forms.CharField(
        label=gettext_lazy("Bank reference"),
        max_length=200,
        help_text=gettext_lazy("The bank's reference of the received transfer, as it shows it."),
    )


class ManualConfirmationForm(forms.Form):
    transid = forms.CharField(label=gettext_lazy("ZenoPay transaction id"), max_length=200)
    amount_tzs = forms.CharField(label=gettext_lazy("Amount on the dashboard (TZS)"), max_length=24)
    phone = forms.CharField(
        label=gettext_lazy("Phone on the dashboard"), max_length=64, required=False
    )
    evidence = forms.CharField(
        label=gettext_lazy("Evidence"),
        widget=forms.Textarea,
        help_text=gettext_lazy("What the checker needs: the dashboard entry, a screenshot's name."),
    )


class HoldReleaseForm(forms.Form):
    resolution = forms.ChoiceField(
        label=gettext_lazy("Resolution"),
        choices=[
            ("clear", gettext_lazy("Clear the hold (not for an amount mismatch)")),
            (
                "cancel_and_orphan",
                gettext_lazy("Cancel; the paid amount becomes a new deposit (amount mismatch)"),
            ),
            ("refund", gettext_lazy("Record a refund of the payment")),
        ],
    )
    evidence = forms.CharField(label=gettext_lazy("Evidence"), widget=forms.Textarea)


class EvidenceForm(forms.Form):
    evidence = forms.CharField(
        label=gettext_lazy("Evidence"),
        widget=forms.Textarea,
        help_text=gettext_lazy("How, when and with which reference the money was refunded."),
    )


# --- The actions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DepositAction:
    name: str
    title: str
    service: str  # shown on the confirmation page: what runs
    roles: tuple[str, ...]  # who is offered the button (the service decides who may)
    form: type[forms.Form]
    offered: Callable[[DepositRequest], bool]  # the deposit's state in which it is offered
    explain: Callable[[DepositRequest], list[str]]  # what will happen, in sentences
    run: Callable[..., str]  # (request, deposit, data) -> the sentence shown after success
    four_eyes: bool = False


def _bank_open(deposit: DepositRequest, review_type: str) -> bool:
    return (
        deposit.payment_provider == BANK_TRANSFER
        and deposit.status == S.SUBMITTED
        and not deposit.hold_reason
        and not any(a.type == review_type for a in deposit.approvals.all())
    )


def _lane_sentence(deposit: DepositRequest) -> str:
    lane = deposit_lane(amount_tzs=deposit.amount_tzs)
    if lane == S.MINT_REQUIRES_SAFE:
        return _("at TSh %(amount)s it goes to the Safe lane (mint_requires_safe).") % {
            "amount": f"{deposit.amount_tzs:,}"
        }
    return _("at TSh %(amount)s the mint worker mints it (mint_pending).") % {
        "amount": f"{deposit.amount_tzs:,}"
    }


def _explain_bank_approve(deposit):
    platform = next((a for a in deposit.approvals.all() if a.type == "platform"), None)
    then = (
        _("The platform approval is already in: the payment is confirmed at once and %(lane)s")
        % {"lane": _lane_sentence(deposit)}
        if platform is not None and platform.decision == DepositApproval.Decision.APPROVED
        else _("The deposit then waits for the platform approval by compliance.")
    )
    return [
        _(
            "Records that %(bank)s received the transfer, with the amount and the bank's "
            "reference you enter."
        )
        % {"bank": deposit.bank.name},
        _(
            "An amount other than TSh %(amount)s puts the deposit on hold (amount mismatch); "
            "a four-eyes hold release then decides what happens to the money."
        )
        % {"amount": f"{deposit.amount_tzs:,}"},
        then,
    ]


def _explain_platform_approve(deposit):
    bank = next((a for a in deposit.approvals.all() if a.type == "bank"), None)
    if bank is not None and bank.decision == DepositApproval.Decision.APPROVED:
        then = _(
            "The bank approval is already in (reference %(ref)s): the payment is confirmed "
            "at once and %(lane)s"
        ) % {"ref": bank.bank_reference, "lane": _lane_sentence(deposit)}
    else:
        then = _("The deposit then waits for the bank approval by %(bank)s.") % {
            "bank": deposit.bank.name
        }
    return [_("Records the platform (compliance) approval of this bank transfer."), then]


def _explain_reject(deposit):
    return [
        _("Records the rejection with your reason; the deposit becomes rejected."),
        _("The customer sees the reason. Nothing is minted."),
    ]


def _run_bank_approve(request, deposit, data) -> str:
    status = deposit_bank_approve(
        deposit_id=deposit.pk,
        actor=request.user,
        bank_reference=data["bank_reference"],
        amount_received_tzs=data["amount_received_tzs"],
    )
    return _after_review(deposit, status)


def _run_platform_approve(request, deposit, data) -> str:
    return _after_review(
        deposit, deposit_platform_approve(deposit_id=deposit.pk, actor=request.user)
    )


def _after_review(deposit, status: str | None) -> str:
    if status:
        return _("Approval recorded; the deposit is now %(status)s.") % {"status": status}
    deposit.refresh_from_db(fields=["hold_reason"])
    if deposit.hold_reason:
        return _("Approval recorded; the deposit is on hold (%(reason)s).") % {
            "reason": deposit.hold_reason
        }
    return _("Approval recorded; the deposit waits for the other approval.")


def _run_bank_reject(request, deposit, data) -> str:
    deposit_bank_reject(deposit_id=deposit.pk, actor=request.user, reason=data["reason"])
    return _("The deposit is rejected.")


def _run_platform_reject(request, deposit, data) -> str:
    deposit_platform_reject(deposit_id=deposit.pk, actor=request.user, reason=data["reason"])
    return _("The deposit is rejected.")


RETRY_OUTCOMES = {
    "queued": gettext_lazy("queued for minting"),
    "minted": gettext_lazy("already minted: an earlier attempt had landed; recorded"),
    "nothing to do": gettext_lazy("nothing to do: the deposit is not mint_failed"),
}


def retry_outcome_text(outcome: str) -> str:
    return str(RETRY_OUTCOMES.get(outcome, outcome))


def _explain_retry(deposit):
    mint = MintTransaction.objects.filter(deposit=deposit).only("error").first()
    lines = [
        _(
            "Checks on the chain that no earlier attempt can still land: every attempt's "
            "nonce mined and none minted this deposit."
        ),
        _(
            "Proven dead: the deposit goes back to mint_pending and the worker mints it "
            "once. An earlier attempt that did mint: the deposit is recorded as minted, "
            "nothing is sent. Not proven: refused, nothing changes."
        ),
    ]
    if mint is not None and mint.error:
        lines.append(_("Last error: %(error)s") % {"error": mint.error})
    return lines


def _run_retry(request, deposit, data) -> str:
    outcome = mint_retry(client=mint_client(), deposit_id=deposit.pk, actor=request.user)
    return _("Retry: %(outcome)s.") % {"outcome": retry_outcome_text(outcome)}


def _run_cancel(request, deposit, data) -> str:
    deposit_cancel_by_operator(deposit_id=deposit.pk, actor=request.user, reason=data["reason"])
    return _("The deposit is cancelled.")


def _four_eyes_made(made) -> str:
    return _(
        "Four-eyes request %(id)s is made; another member of staff decides it in the "
        "four-eyes queue. Nothing has changed yet."
    ) % {"id": made.pk}


def _run_confirm_manual(request, deposit, data) -> str:
    return _four_eyes_made(
        deposit_confirm_manual_request(
            deposit_id=deposit.pk,
            transid=data["transid"],
            amount_tzs=data["amount_tzs"],
            phone=data["phone"],
            evidence=data["evidence"],
            maker=request.user,
        )
    )


def _run_hold_release(request, deposit, data) -> str:
    return _four_eyes_made(
        deposit_hold_release_request(
            deposit_id=deposit.pk,
            resolution=data["resolution"],
            evidence=data["evidence"],
            maker=request.user,
        )
    )


def _refund_in_minting(deposit) -> bool:
    return deposit.status in MINT_STATUSES_REFUNDABLE


def _run_refund(request, deposit, data) -> str:
    if _refund_in_minting(deposit):
        made = mint_refund_record(
            deposit_id=deposit.pk, evidence=data["evidence"], maker=request.user
        )
    else:
        made = deposit_refund_record_request(
            deposit_id=deposit.pk, evidence=data["evidence"], maker=request.user
        )
    return _four_eyes_made(made)


def _run_route_to_safe(request, deposit, data) -> str:
    mint_route_to_safe(deposit_id=deposit.pk, actor=request.user, reason=data["reason"])
    return _("The deposit is routed to the Safe lane.")


def _run_route_to_worker(request, deposit, data) -> str:
    mint_route_to_worker(deposit_id=deposit.pk, actor=request.user, reason=data["reason"])
    return _("The deposit is back in the worker lane.")


def _four_eyes_explain(what: str):
    def explain(deposit):
        return [
            what,
            _(
                "This makes a four-eyes request only: a different member of staff (never you, "
                "never the customer) approves or rejects it in the four-eyes queue, and only "
                "that approval changes the deposit."
            ),
        ]

    return explain


ACTIONS: dict[str, DepositAction] = {
    action.name: action
    for action in (
        DepositAction(
            name="bank-approve",
            title=gettext_lazy("Bank approval: fiat received"),
            service="deposits.services.bank.deposit_bank_approve",
            roles=(BANK_ADMIN, SUPER_ADMIN),
            form=BankApprovalForm,
            offered=lambda d: _bank_open(d, "bank"),
            explain=_explain_bank_approve,
            run=_run_bank_approve,
        ),
        DepositAction(
            name="bank-reject",
            title=gettext_lazy("Bank rejection"),
            service="deposits.services.bank.deposit_bank_reject",
            roles=(BANK_ADMIN, SUPER_ADMIN),
            form=ReasonForm,
            offered=lambda d: _bank_open(d, "bank"),
            explain=_explain_reject,
            run=_run_bank_reject,
        ),
        DepositAction(
            name="platform-approve",
            title=gettext_lazy("Platform approval"),
            service="deposits.services.bank.deposit_platform_approve",
            roles=OPERATORS,
            form=ConfirmForm,
            offered=lambda d: _bank_open(d, "platform"),
            explain=_explain_platform_approve,
            run=_run_platform_approve,
        ),
        DepositAction(
            name="platform-reject",
            title=gettext_lazy("Platform rejection"),
            service="deposits.services.bank.deposit_platform_reject",
            roles=OPERATORS,
            form=ReasonForm,
            offered=lambda d: _bank_open(d, "platform"),
            explain=_explain_reject,
            run=_run_platform_reject,
        ),
        DepositAction(
            name="retry-mint",
            title=gettext_lazy("Retry the failed mint"),
            service="minting.services.operator.mint_retry",
            roles=OPERATORS,
            form=ConfirmForm,
            offered=lambda d: d.status == S.MINT_FAILED,
            explain=_explain_retry,
            run=_run_retry,
        ),
        DepositAction(
            name="cancel",
            title=gettext_lazy("Cancel the deposit"),
            service="deposits.services.operator.deposit_cancel_by_operator",
            roles=OPERATORS,
            form=ReasonForm,
            offered=lambda d: d.status == S.SUBMITTED and not d.hold_reason,
            explain=lambda d: [
                _("The deposit becomes cancelled with your reason; nothing is minted."),
                _(
                    "A mobile-money deposit is still asked about once more: a payment that "
                    "did arrive reopens it."
                ),
            ],
            run=_run_cancel,
        ),
        DepositAction(
            name="confirm-manual",
            title=gettext_lazy("Manual ZenoPay confirmation (maker)"),
            service="deposits.services.operator.deposit_confirm_manual_request",
            roles=OPERATORS,
            form=ManualConfirmationForm,
            offered=lambda d: (
                d.payment_provider == ZENOPAY
                and (
                    d.status in (S.SUBMITTED, S.CANCELLED)
                    or (d.status == S.REJECTED and bool(d.hold_reason))
                )
            ),
            explain=_four_eyes_explain(
                gettext_lazy(
                    "Asks for the payment to be confirmed with what the ZenoPay dashboard "
                    "shows; at approval ZenoPay's order status is asked once more, and a "
                    "different answer refuses it."
                )
            ),
            run=_run_confirm_manual,
            four_eyes=True,
        ),
        DepositAction(
            name="hold-release",
            title=gettext_lazy("Release the hold (maker)"),
            service="deposits.services.operator.deposit_hold_release_request",
            roles=OPERATORS,
            form=HoldReleaseForm,
            offered=lambda d: bool(d.hold_reason),
            explain=_four_eyes_explain(
                gettext_lazy(
                    "Asks for the hold to be released with the resolution you choose; an "
                    "amount mismatch is never released as is."
                )
            ),
            run=_run_hold_release,
            four_eyes=True,
        ),
        DepositAction(
            name="refund",
            title=gettext_lazy("Record a refund (maker)"),
            service=(
                "deposits.services.operator.deposit_refund_record_request / "
                "minting.services.lanes.mint_refund_record"
            ),
            roles=OPERATORS,
            form=EvidenceForm,
            offered=lambda d: d.status in (*UNPAID_REFUNDABLE, *MINT_STATUSES_REFUNDABLE),
            explain=_four_eyes_explain(
                gettext_lazy(
                    "Asks for an off-system refund to be recorded; the deposit becomes "
                    "refunded at approval and is never minted. For a paid deposit the chain "
                    "is checked first: no mint may still land."
                )
            ),
            run=_run_refund,
            four_eyes=True,
        ),
        DepositAction(
            name="route-to-safe",
            title=gettext_lazy("Route to the Safe lane"),
            service="minting.services.lanes.mint_route_to_safe",
            roles=(SUPER_ADMIN,),
            form=ReasonForm,
            offered=lambda d: d.status in (S.MINT_PENDING, S.MINT_FAILED),
            explain=lambda d: [
                _(
                    "The deposit leaves the mint worker and waits for a Safe mint "
                    "(mint_requires_safe); a failed one only once the chain proves no "
                    "earlier attempt can still land."
                )
            ],
            run=_run_route_to_safe,
        ),
        DepositAction(
            name="route-to-worker",
            title=gettext_lazy("Back to the worker lane"),
            service="minting.services.lanes.mint_route_to_worker",
            roles=(SUPER_ADMIN,),
            form=ReasonForm,
            offered=lambda d: d.status == S.MINT_REQUIRES_SAFE,
            explain=lambda d: [
                _(
                    "The deposit goes back to mint_pending and the worker mints it; refused "
                    "while an exported Safe payload could still mint it."
                )
            ],
            run=_run_route_to_worker,
        ),
    )
}


def _has_role(request, roles) -> bool:
    return request_has_role(request, roles)


def deposit_actions_offered(request, deposit: DepositRequest) -> list[DepositAction]:
    """The buttons of a deposit's page: the person's roles and the deposit's state."""
    prefetch_related_objects([deposit], "approvals")  # read by each bank review's offer
    return [
        action
        for action in ACTIONS.values()
        if _has_role(request, action.roles) and action.offered(deposit)
    ]


def action_url(deposit_id, name: str) -> str:
    return reverse("admin:deposits_depositrequest_action", args=[deposit_id, name])


@require_http_methods(["GET", "HEAD", "POST"])
def deposit_action_view(request, object_id, name: str, *, model_admin):
    """GET: the confirmation page. POST: the service, with the logged-in person."""
    action = ACTIONS.get(name)
    if action is None:
        raise Http404
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    # A bank admin reaches only their bank's deposits: another bank's is "not found".
    deposit = model_admin.get_queryset(request).filter(pk=object_id).first()
    if deposit is None:
        raise Http404
    if request.method == "POST":
        form = action.form(request.POST)
        if form.is_valid():
            try:
                done = action.run(request, deposit, form.cleaned_data)
            except (*REFUSALS, *CHAIN_UNREADABLE) as exc:
                messages.error(request, refusal_text(exc))
            else:
                messages.success(request, done)
                return redirect("admin:deposits_depositrequest_change", deposit.pk)
    else:
        form = action.form()
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": action.title,
        "action": action,
        "deposit": deposit,
        "form": form,
        "explain": action.explain(deposit),
        "offered": action.offered(deposit) and _has_role(request, action.roles),
    }
    return TemplateResponse(request, "backstage/deposit_action.html", context)


# --- Bulk actions: retry failed mints, cancel stale unpaid deposits -----------------------------

BULK_MAX = 50  # each retry asks the chain; a larger selection is split by the operator


@dataclass(frozen=True)
class BulkRow:
    deposit: DepositRequest
    outcome: str
    error: str


@dataclass(frozen=True)
class BulkAction:
    name: str
    title: str
    explain: str
    submit: str
    form: type[forms.Form]
    run: Callable[..., list[BulkRow]]  # (request, deposits, data) -> one row per deposit


def _each(deposits, act: Callable[[DepositRequest], str]) -> list[BulkRow]:
    """``act`` on every deposit on its own: a refusal or a chain error is that row's error,
    and the others still go on."""
    rows = []
    for deposit in deposits:
        try:
            outcome = act(deposit)
        except (*REFUSALS, *CHAIN_UNREADABLE) as exc:
            rows.append(BulkRow(deposit, "", refusal_text(exc)))
        else:
            rows.append(BulkRow(deposit, outcome, ""))
    return rows


def deposits_retry_each(request, deposits, data=None) -> list[BulkRow]:
    try:
        client = mint_client()
    except (*REFUSALS, *CHAIN_UNREADABLE) as exc:
        return [BulkRow(deposit, "", refusal_text(exc)) for deposit in deposits]
    return _each(
        deposits,
        lambda deposit: retry_outcome_text(
            mint_retry(client=client, deposit_id=deposit.pk, actor=request.user)
        ),
    )


def deposits_cancel_each(request, deposits, data) -> list[BulkRow]:
    def cancel(deposit) -> str:
        deposit_cancel_by_operator(deposit_id=deposit.pk, actor=request.user, reason=data["reason"])
        return _("cancelled")

    return _each(deposits, cancel)


BULK_ACTIONS = {
    "retry_failed_mints": BulkAction(
        name="retry_failed_mints",
        title=gettext_lazy("Retry failed mints"),
        explain=gettext_lazy(
            "Each deposit is retried on its own, only with the chain's proof that no earlier "
            "attempt can still land (minting.services.operator.mint_retry). A deposit that is "
            "not mint_failed is left as it is; a refusal on one does not stop the others."
        ),
        submit=gettext_lazy("Retry these mints"),
        form=ConfirmForm,
        run=deposits_retry_each,
    ),
    "cancel_unpaid_deposits": BulkAction(
        name="cancel_unpaid_deposits",
        title=gettext_lazy("Cancel unpaid deposits"),
        explain=gettext_lazy(
            "Each submitted deposit is cancelled on its own with your reason "
            "(deposits.services.operator.deposit_cancel_by_operator); nothing is minted. A "
            "held deposit, or one past submitted, is refused and left as it is; a mobile-money "
            "deposit is asked about once more, and a payment that did arrive reopens it."
        ),
        submit=gettext_lazy("Cancel these deposits"),
        form=ReasonForm,
        run=deposits_cancel_each,
    ),
}


# --- The detail page's facts -------------------------------------------------------------------


def deposit_detail_facts(*, deposit: DepositRequest, show_raw: bool) -> dict:
    """Everything recorded about one deposit, each list bounded (the ledgers' own screens
    hold the rest). Raw notification bodies only for ``show_raw`` (compliance, super admins):
    they carry customers' phone numbers and names."""
    pk = str(deposit.pk)
    mint = MintTransaction.objects.filter(deposit=deposit).first()
    attempts = (
        list(
            mint.attempts.defer("raw_tx")
            .select_related("signer")
            .order_by("created_at")[:FACTS_SHOWN]
        )
        if mint
        else []
    )
    notifications = deposit.notifications.order_by("-received_at")
    if not show_raw:
        notifications = notifications.defer("body", "headers")
    return {
        "transitions": deposit.transitions.select_related("actor").order_by("at", "id")[
            :FACTS_SHOWN
        ],
        "approvals": deposit.approvals.select_related("approver").order_by("at"),
        "notifications": notifications[:FACTS_SHOWN],
        "show_raw": show_raw,
        "mint": mint,
        "mint_explorer_url": tx_explorer_url(mint.tx_hash) if mint else "",
        "attempts": [(a, tx_explorer_url(a.tx_hash)) for a in attempts],
        "log_claims": claims_on_chain(
            MintLogClaim.objects.filter(deposit=deposit).order_by("claimed_at"), limit=FACTS_SHOWN
        ),
        "safe_exports": deposit.safe_exports.select_related("actor").order_by("-at")[:FACTS_SHOWN],
        # The makers' evidence (payment references, phones) is for the actions' roles, as on
        # the four-eyes pages: a bank admin sees none of it.
        "four_eyes": DualControlRequest.objects.filter(
            Q(target_type="deposit", target_id=pk) | Q(params__deposit_id=pk)
        )
        .select_related("maker", "checker")
        .order_by("-made_at")[:FACTS_SHOWN]
        if show_raw
        else [],
        "admin_actions": AdminAction.objects.filter(target_type="deposit", target_id=pk)
        .select_related("actor")
        .order_by("-at")[:FACTS_SHOWN],
        "orphans_seen": deposit.orphans_seen.order_by("created_at")[:FACTS_SHOWN],
        "explorer_url": tx_explorer_url(deposit.mint_tx_hash),
    }


__all__ = [
    "ACTIONS",
    "BULK_ACTIONS",
    "BULK_MAX",
    "DepositAction",
    "action_url",
    "deposit_action_view",
    "deposit_actions_offered",
    "deposit_detail_facts",
]
