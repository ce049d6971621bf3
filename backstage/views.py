from django.http import JsonResponse
from django.views.decorators.http import require_GET

from backstage.health import health_checks


@require_GET
def readyz(request):
    """503 when the process cannot serve (database, broker); chain, tasks and webhook are
    reported either way. Aggregates only: no personal data."""
    checks = health_checks()
    ready = all(c.ok for c in checks if c.critical)
    body = {"ready": ready,
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks}}
    return JsonResponse(body, status=200 if ready else 503)
