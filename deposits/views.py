"""Customer deposit pages: new deposit, "check your phone" / bank transfer instructions, the
live status fragment, "check again", history and receipts (DESIGN §5, §5.1, §6).

Adapters only: parse the form, call one service or selector, render. A service refusal is a
form error on the page, never a 500. A customer reaches only their own deposits (another's
is a 404, like a missing one); URLs carry the deposit's UUID and nothing personal. Pages with
deposit details are never cached.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.forms import form_add_service_error
from accounts.selectors import user_onboarding_state
from core.exceptions import NotFound, ServiceError
from deposits.exceptions import IdempotencyConflict
from deposits.forms import DepositForm, tsh
from deposits.models import DepositRequest
from deposits.phones import phone_mask
from deposits.selectors import (
    DepositProgress,
    DepositStageTimes,
    deposit_checkable,
    deposit_progress,
    deposit_stage_times,
    tx_explorer_url,
    user_deposit_get,
    user_deposits,
    user_unresolved_payments,
)
from deposits.services import payments
from deposits.services.intake import deposit_create

HISTORY_PAGE_SIZE = 20


@dataclass(frozen=True)
class DepositCard:
    """A deposit as the pages show it."""

    deposit: DepositRequest
    progress: DepositProgress

    @property
    def amount(self) -> str:
        return tsh(self.deposit.amount_tzs)

    @property
    def phone(self) -> str:
        return phone_mask(self.deposit.buyer_phone) if self.deposit.buyer_phone else ""

    @property
    def explorer_url(self) -> str:
        return tx_explorer_url(self.deposit.mint_tx_hash)

    @property
    def is_zenopay(self) -> bool:
        return self.deposit.payment_provider == DepositRequest.Provider.ZENOPAY

    @property
    def heading(self) -> str:
        """The page's heading; the live status carries it too, so the script can change it
        when the deposit moves on ("Check your phone" → "Your deposit")."""
        if self.progress.step == 1:
            return _("Check your phone") if self.is_zenopay else _("Make your bank transfer")
        return _("Your deposit")

    @property
    def stage_times(self) -> DepositStageTimes:
        return deposit_stage_times(deposit=self.deposit)


def _card(deposit: DepositRequest) -> DepositCard:
    return DepositCard(deposit=deposit, progress=deposit_progress(deposit=deposit))


def _own_deposit(request, deposit_id) -> DepositRequest:
    try:
        return user_deposit_get(user=request.user, deposit_id=deposit_id)
    except NotFound:
        raise Http404(_("There is no such deposit in your account.")) from None


def _wants_fragment(request) -> bool:
    return request.headers.get("X-Requested-With") == "fetch"


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def deposit_new(request):
    if not user_onboarding_state(request.user).ready_to_deposit:
        messages.info(request, _("Finish the steps below before you buy nTZS."))
        return redirect("accounts:home")
    form = DepositForm(request.POST if request.method == "POST" else None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            deposit, _created = deposit_create(user=request.user, data=form.deposit_input())
        except IdempotencyConflict:
            form.renew_idempotency_key()
            form.add_error(
                None,
                _(
                    "This form was already sent for another deposit. Check the "
                    "details and send it again."
                ),
            )
        except ServiceError as exc:
            form_add_service_error(form, exc)
        else:
            return redirect("deposits:detail", deposit_id=deposit.pk)
    form.ensure_idempotency_key()
    unresolved = [_card(d) for d in user_unresolved_payments(user=request.user)[:3]]
    return render(request, "deposits/new.html", {"form": form, "unresolved": unresolved})


@login_required
@never_cache
@require_GET
def deposit_detail(request, deposit_id):
    card = _card(_own_deposit(request, deposit_id))
    template = "deposits/detail_zenopay.html" if card.is_zenopay else "deposits/detail_bank.html"
    return render(request, template, {"card": card})


@login_required
@never_cache
@require_GET
def deposit_status_fragment(request, deposit_id):
    card = _card(_own_deposit(request, deposit_id))
    return render(request, "deposits/_status.html", {"card": card})


@login_required
@never_cache
@require_POST
def deposit_check_again(request, deposit_id):
    deposit = _own_deposit(request, deposit_id)
    checking = deposit_checkable(deposit=deposit)
    if checking:
        payments.deposit_check_again(deposit_id=deposit.pk, actor=request.user)
    if _wants_fragment(request):
        return render(
            request, "deposits/_status.html", {"card": _card(deposit), "checking": checking}
        )
    if checking:
        messages.info(
            request,
            _("We are checking with your mobile money provider. This page updates by itself."),
        )
    else:
        messages.info(request, _("There is no payment to check on this deposit."))
    return redirect("deposits:detail", deposit_id=deposit.pk)


@login_required
@never_cache
@require_GET
def deposit_history(request):
    paginator = Paginator(user_deposits(user=request.user), HISTORY_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    cards = [_card(d) for d in page.object_list]
    return render(request, "deposits/history.html", {"page": page, "cards": cards})


@login_required
@never_cache
@require_GET
def deposit_receipt(request, deposit_id):
    card = _card(_own_deposit(request, deposit_id))
    return render(request, "deposits/receipt.html", {"card": card})
