"""Customer pages: sign-up, home (what is missing), KYC, wallet registration and proof.

Adapters only: parse the form, call one service or selector, render. A service refusal is a
form error on the page, never a 500.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts import selectors, services
from accounts.forms import (
    KycSubmitForm,
    SignUpForm,
    WalletRegisterForm,
    WalletVerifyForm,
    form_add_service_error,
)
from core.exceptions import NotFound, ServiceError


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("accounts:home")
    form = SignUpForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_sign_up(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
                full_name=form.cleaned_data["full_name"],
            )
        except ServiceError as exc:
            form_add_service_error(form, exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("Welcome! Your account is ready."))
            return redirect("accounts:home")
    return render(request, "accounts/signup.html", {"form": form})


@login_required
def home(request):
    state = selectors.user_onboarding_state(request.user)
    return render(request, "accounts/home.html", {"state": state})


@login_required
@require_http_methods(["GET", "POST"])
def kyc_submit(request):
    state = selectors.user_onboarding_state(request.user)
    form = KycSubmitForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.kyc_submit(
                user=request.user,
                national_id=form.cleaned_data["national_id"],
                full_name=form.cleaned_data["full_name"],
            )
        except ServiceError as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(
                request, _("Thank you. We will review your details and let you know.")
            )
            return redirect("accounts:home")
    return render(request, "accounts/kyc_submit.html", {"form": form, "state": state})


@login_required
@require_http_methods(["GET", "POST"])
def wallet_register(request):
    form = WalletRegisterForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            wallet = services.wallet_register(
                user=request.user, address=form.cleaned_data["address"]
            )
        except ServiceError as exc:
            form_add_service_error(form, exc)
        else:
            if wallet.is_verified:
                return redirect("accounts:home")
            return redirect("accounts:wallet_verify", wallet_id=wallet.pk)
    wallets = selectors.user_wallets(request.user)
    return render(request, "accounts/wallet_register.html", {"form": form, "wallets": wallets})


@login_required
@require_http_methods(["GET", "POST"])
def wallet_verify(request, wallet_id):
    try:
        wallet = selectors.user_wallet_get(user=request.user, wallet_id=wallet_id)
    except NotFound:
        raise Http404(_("There is no such wallet in your account.")) from None
    if wallet.is_verified:
        return render(request, "accounts/wallet_verify.html", {"wallet": wallet})

    form = WalletVerifyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            try:
                services.wallet_verify_signature(
                    user=request.user,
                    wallet_id=wallet.pk,
                    challenge_id=form.cleaned_data["challenge"],
                    signature=form.cleaned_data["signature"],
                )
            except ServiceError as exc:
                form_add_service_error(form, exc)
            else:
                messages.success(request, _("Your wallet is verified."))
                return redirect("accounts:home")
        elif "challenge" in form.errors:
            del form.errors["challenge"]  # a tampered or stale hidden field: say it plainly
            form.add_error(None, _("The page was out of date; sign the message shown below."))

    try:
        challenge = selectors.wallet_challenge_open(
            wallet=wallet
        ) or services.wallet_challenge_create(user=request.user, wallet_id=wallet.pk)
    except ServiceError:  # verified a moment ago (another tab, or a colleague's approval)
        return redirect("accounts:wallet_verify", wallet_id=wallet.pk)
    if request.method == "POST":
        # A refused attempt is shown with the message to sign now; keep what was pasted.
        form.data = form.data.copy()
        form.data["challenge"] = str(challenge.pk)
    else:
        form = WalletVerifyForm(initial={"challenge": challenge.pk})
    return render(
        request,
        "accounts/wallet_verify.html",
        {"wallet": wallet, "challenge": challenge, "form": form},
    )
