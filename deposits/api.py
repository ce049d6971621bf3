"""The ZenoPay webhook (DESIGN §6): store, refuse what must be refused, answer fast."""

from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.http import client_address
from deposits.services.payments import BODY_CAP, zenopay_webhook_receive


def _body_capped(request) -> bytes:
    """Read at most one byte past the cap: an oversized body is refused (413) and stored
    truncated, never read whole into memory."""
    django_request = request._request
    try:
        declared = int(django_request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > BODY_CAP:
        return django_request.read(BODY_CAP + 1)
    return django_request.body


class ZenoPayWebhookApi(APIView):
    authentication_classes: list = []  # ZenoPay is not a user; the x-api-key is checked below
    permission_classes = [AllowAny]
    throttle_classes: list = []  # per-client throttling happens in the service (it counts)

    def post(self, request):
        result = zenopay_webhook_receive(
            body=_body_capped(request),
            headers=dict(request.headers),
            remote_ip=client_address(request._request),  # through TRUSTED_PROXY_HOPS
            token=request.query_params.get("t"),
        )
        ok = result.http_status == 200
        return Response(
            {"status": "received" if ok else "rejected", "reason": result.reason},
            status=result.http_status,
        )
