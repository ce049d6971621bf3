"""Forms of the customer pages. They only shape input; the rules are in accounts.services,
whose refusals the views attach to the form (``form_add_service_error``)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from core.exceptions import ServiceError


def form_add_service_error(form: forms.Form, exc: ServiceError) -> None:
    """Show a service refusal on the field it names, or above the form."""
    field = getattr(exc, "field", None)
    form.add_error(field if field in form.fields else None, str(exc))


class SignUpForm(forms.Form):
    email = forms.EmailField(label=_("Email"), max_length=254)
    full_name = forms.CharField(label=_("Full name"), max_length=200, required=False)
    password = forms.CharField(
        label=_("Password"),
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


class EmailAuthenticationForm(AuthenticationForm):
    """Log in with the email address, in any letter case (emails are stored lower-case)."""

    def clean_username(self):
        return (self.cleaned_data.get("username") or "").strip().lower()


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
