import hmac

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from backstage.health import health_checks, is_ready, readiness
from backstage.metrics import CONTENT_TYPE, metrics_text
from core.roles import STAFF_ROLES, user_has_role


def _is_staff_session(request) -> bool:
    """A staff role, and the second factor passed when it is required (django_otp)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user_has_role(user, *STAFF_ROLES):
        return False
    if settings.STAFF_OTP_REQUIRED:
        is_verified = getattr(user, "is_verified", None)
        return bool(is_verified and is_verified())
    return True


def _bearer(request) -> str | None:
    """The bearer token sent, or None when the request carries none."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def _token_matches(given: str) -> bool:
    expected = settings.METRICS_TOKEN
    if not expected:
        return False  # no token configured: the bearer path is closed
    # Bytes, so a non-ASCII header compares (and fails) instead of raising.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


@never_cache
@require_GET
def readyz(request):
    """Anonymous callers: ``ready`` (200) or ``not ready`` (503) from the database, cache and
    broker, remembered for 10 s, no figures. Staff sessions and ``Authorization: Bearer
    <METRICS_TOKEN>`` get every check as JSON, the chain from the last stored check_minter
    result. Nothing here writes a row or moves an alert (DESIGN §8)."""
    token = _bearer(request)
    if _is_staff_session(request) or (token is not None and _token_matches(token)):
        checks = health_checks(chain="stored")
        ready = is_ready(checks)
        body = {
            "ready": ready,
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
        }
        return JsonResponse(body, status=200 if ready else 503)
    if token is not None:
        response = HttpResponse(
            "invalid token", status=401, content_type="text/plain; charset=utf-8"
        )
        response["WWW-Authenticate"] = 'Bearer realm="readyz"'
        return response
    ready = readiness()
    return HttpResponse(
        "ready" if ready else "not ready",
        status=200 if ready else 503,
        content_type="text/plain; charset=utf-8",
    )


@never_cache
@require_GET
def metrics(request):
    """Prometheus text behind ``Authorization: Bearer <METRICS_TOKEN>`` (compared in constant
    time); without a configured token the endpoint is closed. Gauges come from the database
    at scrape time (backstage.metrics)."""
    token = _bearer(request)
    if token is None or not _token_matches(token):
        response = HttpResponse(
            "a valid bearer token is required", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE)
