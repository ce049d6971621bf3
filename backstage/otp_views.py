"""The staff second factor: the code page and the first enrolment (QR code, secret, one code
to confirm, recovery codes shown once), mounted under /backstage/otp/ in config/urls.py and
rendered in the Backstage frame. The rules live in accounts.services.otp and accounts.throttle.
"""

from __future__ import annotations

import segno
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from accounts import throttle
from accounts.forms import OtpEnrolForm, OtpTokenForm, form_add_service_error
from accounts.services import otp as otp_services
from accounts.services.staff import user_is_staff_account
from backstage.admin.site import site as backstage_site
from core.exceptions import ServiceError
from core.http import client_address


def _staff_next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:index")


def _to(name: str, request) -> str:
    return f"{reverse(name)}?{urlencode({'next': _staff_next(request)})}"


def _staff_page(request, template: str, context: dict, status: int = 200):
    response = render(
        request,
        template,
        {**backstage_site.each_context(request), "next": _staff_next(request), **context},
        status=status,
    )
    add_never_cache_headers(response)
    return response


def _staff_only(view):
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated or not user_is_staff_account(request.user):
            login_url = reverse("admin:login")
            return redirect(f"{login_url}?{urlencode({'next': request.get_full_path()})}")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@_staff_only
@require_http_methods(["GET", "POST"])
def staff_otp_verify(request):
    """After the password: a code from the authenticator, or one recovery code."""
    if request.user.is_verified():
        return redirect(_staff_next(request))
    if not otp_services.otp_confirmed_devices(request.user):
        return redirect(_to("staff_otp_enrol", request))
    form = OtpTokenForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        # Codes are counted with the passwords: a pair that keeps guessing gets locked.
        account, client = request.user.email, client_address(request)
        refusal = throttle.login_refusal(account=account, client=client)
        if refusal is not None:
            form.add_error(None, refusal.message)
        else:
            device = otp_services.otp_verify(user=request.user, token=form.cleaned_data["token"])
            if device is None:
                throttle.login_failed(account=account, client=client)
                form.add_error(
                    "token",
                    _(
                        "That code is not valid (or was used already); enter "
                        "the code your app shows now, or a recovery code."
                    ),
                )
            else:
                otp_login(request, device)
                request.session.cycle_key()
                return redirect(_staff_next(request))
    return _staff_page(request, "accounts/staff_otp_verify.html", {"form": form})


@_staff_only
@require_http_methods(["GET", "POST"])
def staff_otp_enrol(request):
    """First login without an authenticator: QR code and secret, one code to confirm, then
    the recovery codes, shown once."""
    try:
        device = otp_services.otp_enrolment_device(user=request.user)
    except ServiceError:
        return redirect(_to("staff_otp_verify", request))
    form = OtpEnrolForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = otp_services.otp_enrol_confirm(
                user=request.user, token=form.cleaned_data["token"]
            )
        except ServiceError as exc:
            form_add_service_error(form, exc)
        else:
            otp_login(request, device)
            request.session.cycle_key()
            return _staff_page(request, "accounts/staff_otp_recovery_codes.html", {"codes": codes})
    # segno draws the QR code as SVG markup with presentation attributes only (no style=,
    # no script), so it is safe to inline under a strict Content-Security-Policy; the
    # markup is generated here from our own secret, never from input.
    qr_svg = segno.make(device.config_url, error="m").svg_inline(scale=4, border=2)
    return _staff_page(
        request,
        "accounts/staff_otp_enrol.html",
        {
            "form": form,
            "qr_svg": mark_safe(qr_svg),  # noqa: S308 - generated markup, see above
            "secret": otp_services.otp_secret_text(device),
        },
    )
