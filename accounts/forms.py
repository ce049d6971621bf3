"""Forms of the customer pages. They only shape input; the rules are in accounts.services,
whose refusals the views attach to the form (``form_add_service_error``)."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts import throttle
from accounts.services.passwords import app_url_origin
from core.exceptions import ServiceError
from core.http import client_address


def form_add_service_error(form: forms.Form, exc: ServiceError) -> None:
    """Show a service refusal on the field it names, or above the form."""
    field = getattr(exc, "field", None)
    form.add_error(field if field in form.fields else None, str(exc))


class SignUpForm(forms.Form):
    """Sign-up asks only who you are; the password is chosen on the page the e-mailed link
    opens (accounts.services.signup says why)."""

    email = forms.EmailField(label=_("Email"), max_length=254)
    full_name = forms.CharField(label=_("Full name"), max_length=200, required=False)


class SignUpConfirmForm(forms.Form):
    password = forms.CharField(
        label=_("Choose a password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password_confirm = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        cleaned = super().clean()
        password, confirm = cleaned.get("password"), cleaned.get("password_confirm")
        if password and confirm and password != confirm:
            self.add_error("password_confirm", _("The two passwords are not the same."))
        return cleaned


class ThrottledLoginMixin:
    """Login throttling (accounts.throttle) for an AuthenticationForm: a locked (account,
    client) pair is refused before the password is even checked; every wrong password is
    counted in the shared cache. Both login pages use it (/login/ and /backstage/login/)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The stock label is the model field's untranslated verbose name ("email").
        self.fields["username"].label = _("Email")

    def clean_username(self):
        return (self.cleaned_data.get("username") or "").strip().lower()

    def clean(self):
        account = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not account or not password:
            return super().clean()
        client = client_address(self.request)
        refusal = throttle.login_refusal(account=account, client=client)
        if refusal is not None:
            raise ValidationError(refusal.message, code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError as exc:
            if getattr(exc, "code", None) == "invalid_login" or self.user_cache is None:
                throttle.login_failed(account=account, client=client)
            raise
        throttle.login_succeeded(account=account, client=client)
        return cleaned


class EmailAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    """Log in with the email address, in any letter case (emails are stored lower-case)."""

    # Django's own sentence is translated with Django's words ("email/nywila" in Kiswahili)
    # and talks of case-sensitivity, which e-mail addresses here do not have.
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _(
            "This e-mail address and password do not match an account. Check both and try "
            "again, or reset your password."
        ),
    }


class StaffAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The Backstage login: the same throttle; the second factor comes next
    (accounts.middleware sends the session to it)."""


class AppUrlPasswordResetForm(PasswordResetForm):
    """Reset links are built from settings.APP_URL, never from the request's Host header
    (which the requester chooses: a forged one would mail a link to their own site).
    Requests are throttled per client address and per e-mail address."""

    def __init__(self, *args, request=None, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        email = cleaned.get("email")
        if email and self.request is not None:
            refusal = throttle.password_reset_request_refusal(
                client=client_address(self.request), email=email
            )
            if refusal is not None:
                raise ValidationError(refusal.message, code="throttled")
        return cleaned

    def save(self, **kwargs):
        protocol, domain = app_url_origin()
        kwargs["domain_override"] = domain
        kwargs["use_https"] = protocol == "https"
        return super().save(**kwargs)


class OtpTokenForm(forms.Form):
    token = forms.CharField(
        label=_("Code"),
        max_length=16,
        help_text=_("The 6-digit code from your authenticator app, or one of your recovery codes."),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "spellcheck": "false",
            }
        ),
    )

    def clean_token(self):
        return "".join((self.cleaned_data.get("token") or "").split())


class OtpEnrolForm(forms.Form):
    token = forms.CharField(
        label=_("Code from the app"),
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
        ),
    )

    def clean_token(self):
        return "".join((self.cleaned_data.get("token") or "").split())


class KycSubmitForm(forms.Form):
    national_id = forms.CharField(
        label=_("NIDA number"),
        max_length=40,
        help_text=_("The 20 digits on your national ID card; spaces and dashes are fine."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    full_name = forms.CharField(
        label=_("Full name as on your ID card"),
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )


class WalletRegisterForm(forms.Form):
    address = forms.CharField(
        label=_("Wallet address on Base"),
        max_length=100,
        help_text=_("Starts with 0x and has 42 characters. Copy it from your wallet app."),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "0x…"}
        ),
    )


class WalletVerifyForm(forms.Form):
    challenge = forms.UUIDField(widget=forms.HiddenInput)
    signature = forms.CharField(
        label=_("Signature"),
        max_length=200,
        help_text=_("Filled in by your browser wallet, or paste the signature here."),
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
    )
