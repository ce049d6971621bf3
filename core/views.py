from django.http import JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def healthz(request):
    """The process is alive. Readiness (database, cache, broker) is /readyz."""
    return JsonResponse({"status": "ok"})
