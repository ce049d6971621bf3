"""Customer pages: sign-up, home (what is missing), KYC, wallet registration and proof;
and the password-reset pages. (The staff second-factor pages are Backstage's:
backstage/otp_views.py.)

Adapters only: parse the form, call one service or selector, render. A service refusal is a
form error on the page, never a 500.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts import selectors, services, throttle
from accounts.forms import (
    AppUrlPasswordResetForm,
    KycSubmitForm,
    SignUpConfirmForm,
    SignUpForm,
    WalletRegisterForm,
    WalletVerifyForm,
    form_add_service_error,
)
from accounts.services import signup as signup_services
from accounts.services.passwords import user_password_changed
from core.exceptions import NotFound, ServiceError
from core.http import client_address

LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"


@require_http_methods(["GET", "POST"])
def signup(request):
    """Always answers "check your e-mail" for a valid address, registered or not."""
    if request.user.is_authenticated:
        return redirect("accounts:home")
    form = SignUpForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        refusal = throttle.signup_request_refusal(
            client=client_address(request), email=form.cleaned_data["email"]
        )
        if refusal is not None:
            form.add_error(None, refusal.message)
        else:
            try:
                signup_services.user_sign_up_request(
                    email=form.cleaned_data["email"], full_name=form.cleaned_data["full_name"]
                )
            except ServiceError as exc:  # input only (the address, the name): never "taken"
                form_add_service_error(form, exc)
            else:
                return redirect("accounts:signup_sent")
    return render(request, "accounts/signup.html", {"form": form})


def signup_sent(request):
    return render(request, "accounts/signup_sent.html")


@never_cache
@require_http_methods(["GET", "POST"])
def signup_confirm(request, token):
    """The e-mailed link: choose a password; the account is created and logged in."""
    try:
        claim = signup_services.user_sign_up_claim(token=token)
    except signup_services.SignUpAlreadyConfirmed as exc:
        return render(
            request, "accounts/signup_confirm.html", {"refusal": str(exc), "already": True}
        )
    except ServiceError as exc:
        return render(request, "accounts/signup_confirm.html", {"refusal": str(exc)}, status=400)
    form = SignUpConfirmForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            user = signup_services.user_sign_up_confirm(
                token=token, password=form.cleaned_data["password"]
            )
        except signup_services.SignUpAlreadyConfirmed as exc:  # a second tab, a moment ago
            return render(
                request, "accounts/signup_confirm.html", {"refusal": str(exc), "already": True}
            )
        except ServiceError as exc:
            form_add_service_error(form, exc)
        else:
            login(request, user, backend=LOGIN_BACKEND)
            messages.success(
                request, _("Welcome! Your e-mail is confirmed and your account is ready.")
            )
            return redirect("accounts:home")
    return render(request, "accounts/signup_confirm.html", {"form": form, "claim": claim})


class PasswordResetView(auth_views.PasswordResetView):
    """Links from APP_URL, requests throttled (accounts.forms.AppUrlPasswordResetForm)."""

    form_class = AppUrlPasswordResetForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """A completed reset always lifts the account's login locks and revokes its API tokens,
    even when the new password equals the old one (the save signal sees no change then): the
    person has just proven they hold the mailbox."""

    def form_valid(self, form):
        response = super().form_valid(form)
        user_password_changed(user=form.user)
        return response


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
            messages.success(request, _("Thank you. We will review your details and let you know."))
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
