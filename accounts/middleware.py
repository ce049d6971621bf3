"""Staff sessions: they end after ``STAFF_SESSION_IDLE_S`` idle, and no Backstage page opens
before the second factor (``STAFF_OTP_REQUIRED``).

Placed after django_otp's OTPMiddleware, which tells whether this session passed the second
factor (``request.user.is_verified()``). Customer pages stay open to staff without it: staff
are customers too; only the staff pages (``staff_path``) need it. The ``--actor`` management
commands do not pass through here: they rest on shell access (DESIGN §4)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import reverse

from accounts.services.staff import user_is_staff_account
from core.clock import now

SESSION_LAST_SEEN = "staff_last_seen"
_TOUCH_EVERY_S = 30  # saving the session on every request would be a write per page view


def staff_path(path: str) -> bool:
    """Whether ``path`` is a staff page: the Backstage (the Django admin, with every screen and
    action added to it). The staff-only API description (/api/schema/, /api/docs/) is not
    gated: it is documentation, with no data and no action."""
    return path.startswith(reverse("admin:index"))


def _otp_exempt(path: str) -> bool:
    """The pages a staff member uses to pass the second factor (or to leave)."""
    return path in {
        reverse("admin:login"),
        reverse("admin:logout"),
        reverse("staff_otp_verify"),
        reverse("staff_otp_enrol"),
    }


def user_has_otp_device(user) -> bool:
    from django_otp import devices_for_user

    return any(True for _device in devices_for_user(user, confirmed=True))


class StaffSessionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user_is_staff_account(user):
            response = self._idle_timeout(request)
            if response is not None:
                return response
            response = self._second_factor(request)
            if response is not None:
                return response
        return self.get_response(request)

    def _idle_timeout(self, request):
        current = now().timestamp()
        last_seen = request.session.get(SESSION_LAST_SEEN)
        idle = current - last_seen if isinstance(last_seen, int | float) else None
        if idle is not None and idle > settings.STAFF_SESSION_IDLE_S:
            path = request.get_full_path()
            logout(request)
            if staff_path(request.path):
                return redirect(f"{reverse('admin:login')}?{urlencode({'next': path})}")
            return None  # a customer page: it now answers as for anyone logged out
        if idle is None or idle >= _TOUCH_EVERY_S:
            request.session[SESSION_LAST_SEEN] = current
            # The session row itself also dies after the idle time, even if never read again.
            request.session.set_expiry(settings.STAFF_SESSION_IDLE_S)
        return None

    def _second_factor(self, request):
        if not settings.STAFF_OTP_REQUIRED or not staff_path(request.path):
            return None
        if _otp_exempt(request.path) or request.user.is_verified():
            return None
        target = "staff_otp_verify" if user_has_otp_device(request.user) else "staff_otp_enrol"
        return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
