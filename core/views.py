from django.http import JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request):
    """The process is alive. Readiness (database, broker, chain) is /readyz, built later."""
    return JsonResponse({"status": "ok"})
