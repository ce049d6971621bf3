from django.http import JsonResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.http import require_GET, require_safe


@require_GET
def healthz(request):
    """The process is alive. Readiness (database, cache, broker) is /readyz."""
    return JsonResponse({"status": "ok"})


@require_safe
def favicon(request):
    """Browsers ask every site for /favicon.ico, on pages without our <link rel="icon"> too
    (the API's JSON, a file download): answer with the icon instead of a 404."""
    return redirect(static("core/favicon.ico"))
