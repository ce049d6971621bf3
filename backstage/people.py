"""Backstage pages about people: reject a KYC case with a reason, ask for a wallet's manual
verification (the maker's half; a different person decides it in the four-eyes queue), ask for
a staff role grant (four eyes) or remove a role (one person), and list and revoke API tokens.

Each page is a confirmation page: GET shows exactly what will happen and who it concerns, POST
calls the service the matching management command calls, with the logged-in person as the
actor. The services decide (roles, the beneficiary rule, reasons); their refusals are shown in
their own words. The pages hang off the model admins' ``get_urls`` (backstage/admin/accounts.py),
so opening one needs the screen's view permission first."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework.authtoken.models import Token

from accounts.models import KycCase, User, Wallet
from accounts.services import kyc_review, wallet_verify_manual_request
from accounts.services.staff import staff_role_grant_request, staff_role_remove
from accounts.services.tokens import API_TOKEN_PREFIX_LENGTH, api_token_revoke
from core.exceptions import ServiceError
from core.roles import STAFF_ROLES, user_roles

ROLE_CHOICES = [(role, role) for role in STAFF_ROLES]


# Free text is not required by the forms: the services refuse a missing reason or evidence in
# their own sentence (one wording on every path: screen and command).
class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"), widget=forms.Textarea, max_length=1000, required=False
    )


class EvidenceForm(forms.Form):
    evidence = forms.CharField(
        label=gettext_lazy("Evidence"), widget=forms.Textarea, max_length=4000, required=False
    )


class RoleGrantForm(EvidenceForm):
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=ROLE_CHOICES)


class RoleRemoveForm(ReasonForm):
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=ROLE_CHOICES)


def _form_errors(form) -> str:
    return " ".join(error for errors in form.errors.values() for error in errors)


def _page(request, model_admin, template: str, title: str, **context) -> TemplateResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title,
        **context,
    }
    return TemplateResponse(request, template, context)


def _run(request, form, action) -> bool:
    """Validate ``form`` and call ``action(cleaned_data)``, which returns the success message;
    a refusal (the form's or the service's sentence) becomes an error message."""
    if not form.is_valid():
        messages.error(request, _form_errors(form))
        return False
    try:
        messages.success(request, action(form.cleaned_data))
    except ServiceError as exc:
        messages.error(request, str(exc))
        return False
    return True


def _viewable(model_admin, request, queryset, object_id):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    return get_object_or_404(queryset, pk=object_id)


# --- KYC ---------------------------------------------------------------------------------------


def kyc_reject_page(request, object_id, *, model_admin):
    case = _viewable(model_admin, request, KycCase.objects.select_related("user"), object_id)
    form = ReasonForm(request.POST or None)
    if request.method == "POST":

        def reject(data) -> str:
            kyc_review(
                case_id=case.pk,
                actor=request.user,
                decision=KycCase.Status.REJECTED,
                reason=data["reason"],
            )
            return _("KYC case of %(name)s rejected.") % {"name": case.full_name}

        if _run(request, form, reject):
            return redirect("admin:accounts_kyccase_change", case.pk)
    return _page(
        request,
        model_admin,
        "backstage/people_kyc_reject.html",
        _("Reject a KYC case"),
        case=case,
        form=form,
    )


# --- Wallets -----------------------------------------------------------------------------------


def wallet_verify_page(request, object_id, *, model_admin):
    wallet = _viewable(model_admin, request, Wallet.objects.select_related("user"), object_id)
    form = EvidenceForm(request.POST or None)
    if request.method == "POST":

        def ask(data) -> str:
            made = wallet_verify_manual_request(
                user=wallet.user,
                address=wallet.address,
                chain=wallet.chain,
                evidence=data["evidence"],
                maker=request.user,
            )
            return _(
                "Manual verification requested (%(id)s); a different person must approve it "
                "in the four-eyes queue."
            ) % {"id": made.pk}

        if _run(request, form, ask):
            return redirect("admin:accounts_wallet_change", wallet.pk)
    return _page(
        request,
        model_admin,
        "backstage/people_wallet_verify.html",
        _("Ask for a manual wallet verification"),
        wallet=wallet,
        form=form,
    )


# --- Staff roles -------------------------------------------------------------------------------


def user_roles_page(request, object_id, *, model_admin):
    person = _viewable(model_admin, request, User.objects.all(), object_id)
    grant_form = RoleGrantForm(request.POST if "grant" in request.POST else None, prefix="grant")
    remove_form = RoleRemoveForm(
        request.POST if "remove" in request.POST else None, prefix="remove"
    )
    if request.method == "POST":
        if "grant" in request.POST:

            def grant(data) -> str:
                made = staff_role_grant_request(
                    email=person.email,
                    role=data["role"],
                    evidence=data["evidence"],
                    maker=request.user,
                )
                return _(
                    "Role %(role)s requested for %(user)s (%(id)s); another super admin must "
                    "approve it in the four-eyes queue."
                ) % {"role": data["role"], "user": person, "id": made.pk}

            done = _run(request, grant_form, grant)
        else:

            def remove(data) -> str:
                staff_role_remove(
                    email=person.email, role=data["role"], actor=request.user, reason=data["reason"]
                )
                return _("Role %(role)s removed from %(user)s.") % {
                    "role": data["role"],
                    "user": person,
                }

            done = _run(request, remove_form, remove)
        if done:
            return redirect("admin:accounts_user_roles", person.pk)
    return _page(
        request,
        model_admin,
        "backstage/people_roles.html",
        _("Staff roles of %(user)s") % {"user": person},
        person=person,
        roles=sorted(user_roles(person)),
        grant_form=grant_form,
        remove_form=remove_form,
        can_act=model_admin.has_roles_permission(request),
    )


# --- API tokens --------------------------------------------------------------------------------


TOKENS_SHOWN = 200


def api_tokens_page(request, *, model_admin):
    """Every API token by its owner, creation time and the first characters of its key (enough
    to match a leaked key someone reports; never the whole key)."""
    if not model_admin.has_tokens_permission(request):
        raise PermissionDenied
    # The newest first, a page's worth: finding one key is a search by its owner's e-mail.
    tokens = Token.objects.select_related("user").order_by("-created")[:TOKENS_SHOWN]
    return _page(
        request,
        model_admin,
        "backstage/people_tokens.html",
        _("API tokens"),
        tokens=[
            {
                "user": token.user,
                "created": token.created,
                "prefix": token.key[:API_TOKEN_PREFIX_LENGTH],
            }
            for token in tokens
        ],
        revoke_form=ReasonForm(),
    )


def api_token_revoke_page(request, object_id, *, model_admin):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not model_admin.has_tokens_permission(request):
        raise PermissionDenied
    person = get_object_or_404(User.objects.all(), pk=object_id)
    form = ReasonForm(request.POST)

    def revoke(data) -> str:
        api_token_revoke(user_id=person.pk, actor=request.user, reason=data["reason"])
        return _("The API token of %(user)s is revoked.") % {"user": person}

    _run(request, form, revoke)
    return redirect(reverse("admin:accounts_user_tokens"))
