"""The fake ZenoPay's HTTP face (same paths and JSON as ZenoPay) and the phone page."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from core.text import text_json_loads
from deposits.sandbox.forms import KnobsForm, OrderActionForm
from deposits.sandbox.selectors import (
    sandbox_knobs_get,
    sandbox_orders_pending,
    sandbox_orders_recent,
)
from deposits.sandbox.services import (
    SandboxAnswer,
    SandboxError,
    SandboxRefusal,
    sandbox_create_answer,
    sandbox_knobs_set,
    sandbox_order_approve,
    sandbox_order_create,
    sandbox_order_decline,
    sandbox_status_answer,
)

# "create_times_out": the order is recorded, then the caller must see a timeout. Over a real
# socket the view simply answers later than the caller's read timeout (ZENOPAY_TIMEOUT + 1 s).
# The in-process transport used by the tests (tests/support/zenopay_sandbox.py) cannot time
# out by itself: it marks its requests with IN_PROCESS_HEADER, the view then skips the sleep
# and tags its answer with SIMULATE_HEADER, and the transport raises requests.ReadTimeout
# instead of handing the answer over.
IN_PROCESS_HEADER = "X-Sandbox-In-Process"
SIMULATE_HEADER = "X-Sandbox-Simulate"


def _answer(answer: SandboxAnswer) -> HttpResponse:
    if isinstance(answer.body, dict):
        return JsonResponse(answer.body, status=answer.http_status)
    return HttpResponse(answer.body, status=answer.http_status, content_type="text/html")


def _key_missing(request: HttpRequest) -> bool:
    # Like ZenoPay, the header must be there; the sandbox accepts any value.
    return "x-api-key" not in request.headers


@csrf_exempt
@require_POST
def create(request: HttpRequest) -> HttpResponse:
    if _key_missing(request):
        return JsonResponse(
            SandboxRefusal(401, "Missing API key (x-api-key header)").body, status=401
        )
    try:
        payload = text_json_loads(request.body)
    except ValueError:
        return JsonResponse(SandboxRefusal(400, "Invalid JSON body").body, status=400)
    if not isinstance(payload, dict):
        return JsonResponse(SandboxRefusal(400, "Invalid JSON body").body, status=400)
    try:
        order = sandbox_order_create(payload=payload)
    except SandboxRefusal as refusal:
        return JsonResponse(refusal.body, status=refusal.http_status)
    response = JsonResponse(sandbox_create_answer(order))
    if sandbox_knobs_get().create_times_out:
        if request.headers.get(IN_PROCESS_HEADER) == "1":
            response[SIMULATE_HEADER] = "timeout"
        else:
            time.sleep(settings.ZENOPAY_TIMEOUT + 1)  # the order is committed already
    return response


@csrf_exempt
@require_GET
def order_status(request: HttpRequest) -> HttpResponse:
    if _key_missing(request):
        return JsonResponse(
            {
                "result": "FAIL",
                "resultcode": "401",
                "message": "Missing API key (x-api-key header)",
            },
            status=401,
        )
    order_id = request.GET.get("order_id", "").strip()
    if not order_id:
        return JsonResponse(
            {"result": "FAIL", "resultcode": "400", "message": "order_id is required"}, status=400
        )
    return _answer(sandbox_status_answer(order_id=order_id))


@require_GET
def phone(request: HttpRequest) -> HttpResponse:
    knobs = sandbox_knobs_get()
    knobs_form = KnobsForm(initial={name: getattr(knobs, name) for name in KnobsForm.base_fields})
    return render(
        request,
        "sandbox/phone.html",
        {
            "pending": sandbox_orders_pending(),
            "recent": sandbox_orders_recent(),
            "knobs_form": knobs_form,
        },
    )


@require_POST
def phone_order(request: HttpRequest) -> HttpResponse:
    form = OrderActionForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(e for errs in form.errors.values() for e in errs)
        messages.error(request, f"Nothing done: {errors}")
        return redirect("zenopay_sandbox:phone")
    order_id, action = form.cleaned_data["order_id"], form.cleaned_data["action"]
    try:
        if action == OrderActionForm.DECLINE:
            sandbox_order_decline(order_id=order_id)
        else:
            order = sandbox_order_approve(
                order_id=order_id,
                amount_tzs=(
                    form.cleaned_data["amount_tzs"]
                    if action == OrderActionForm.APPROVE_OTHER_AMOUNT
                    else None
                ),
                drop_webhook=action == OrderActionForm.APPROVE_DROP_WEBHOOK,
            )
    except SandboxError as exc:
        messages.error(request, str(exc))
        return redirect("zenopay_sandbox:phone")
    if action == OrderActionForm.DECLINE:
        messages.success(
            request,
            f"Declined order {order_id}: FAILED"
            + ("; the webhook says so." if sandbox_knobs_get().webhook_on_failure else "."),
        )
    else:
        dropped = " The webhook was dropped." if order.drop_webhook else ""
        messages.success(
            request,
            f"Paid {order.paid_amount_tzs} TZS for order {order_id} "
            f"(transid {order.transid}).{dropped}",
        )
    return redirect("zenopay_sandbox:phone")


@require_POST
def phone_knobs(request: HttpRequest) -> HttpResponse:
    form = KnobsForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(e for errs in form.errors.values() for e in errs)
        messages.error(request, f"Knobs not changed: {errors}")
        return redirect("zenopay_sandbox:phone")
    sandbox_knobs_set(**form.cleaned_data)
    messages.success(request, "Knobs saved.")
    return redirect("zenopay_sandbox:phone")
