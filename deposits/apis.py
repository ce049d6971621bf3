"""REST API v1 for a customer's deposits (DESIGN §5, §6), HackSoft style: one view per
path, one method per operation, nested input serializers, services and selectors do the work.

- Token and session auth; token first, so a request without credentials gets 401 with
  ``WWW-Authenticate: Token`` (session requests need CSRF, as on the pages).
- Every error is ``{"error": "<code>", "detail": "<sentence>"}``, plus ``"field"`` when
  one input is at fault; the sentence is in the request's language (Accept-Language).
- Throttles are per user and per operation, counted in the shared cache (Redis), with rates
  from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` or the defaults below. "Check again" has
  none: the service's one rule (a check per deposit per 10 s) limits it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.selectors import user_kyc_approved
from core.exceptions import ConflictError, NotFound, PermissionRefused, ServiceError
from deposits.exceptions import IdempotencyConflict, InvalidDeposit, LimitRefused
from deposits.forms import AMOUNT_MAX_DIGITS, tsh
from deposits.models import DepositRequest
from deposits.phones import phone_mask
from deposits.selectors import (
    deposit_checkable,
    deposit_progress,
    tx_explorer_url,
    user_deposit_get,
    user_deposits,
)
from deposits.services.intake import DepositInput, deposit_create
from deposits.services.payments import deposit_check_again

IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_THROTTLE_RATES = {
    "deposits_create": "10/min",
    "deposits_read": "120/min",
}
# The service names the form field at fault; the API names its own input.
_API_FIELD = {"wallet": "wallet_id", "bank": "bank_id"}


# --- Errors ------------------------------------------------------------------------------------


class ApiError(exceptions.APIException):
    """An error answered as ``{"error": code, "detail": sentence[, "field": name]}``."""

    def __init__(self, detail: str, *, code: str, status_code: int, field: str | None = None):
        super().__init__(detail=detail, code=code)
        self.status_code, self.error_code, self.field = status_code, code, field


def _from_service_error(exc: ServiceError) -> ApiError:
    message = str(exc)
    if isinstance(exc, InvalidDeposit):
        field = _API_FIELD.get(exc.field, exc.field) if exc.field else None
        return ApiError(message, code="invalid", status_code=400, field=field)
    if isinstance(exc, LimitRefused):
        if exc.kind == "rate":
            return ApiError(message, code="rate_limited", status_code=429)
        return ApiError(message, code=f"limit_{exc.kind}", status_code=422, field="amount_tzs")
    if isinstance(exc, IdempotencyConflict):
        return ApiError(
            message, code="idempotency_conflict", status_code=422, field=IDEMPOTENCY_HEADER
        )
    if isinstance(exc, NotFound):
        return ApiError(
            _("There is no such deposit in your account."), code="not_found", status_code=404
        )
    if isinstance(exc, PermissionRefused):
        return ApiError(message, code="permission_denied", status_code=403)
    if isinstance(exc, ConflictError):
        return ApiError(message, code="conflict", status_code=409)
    return ApiError(message, code="refused", status_code=400)


def _first_validation_error(detail, field: str | None = None) -> tuple[str | None, str]:
    """(field, message) of the first error in a serializer's nested error structure."""
    if isinstance(detail, dict):
        key, value = next(iter(detail.items()))
        nested = None if key == api_settings.NON_FIELD_ERRORS_KEY else key
        return _first_validation_error(value, nested if field is None else f"{field}.{key}")
    if isinstance(detail, list) and detail:
        return _first_validation_error(detail[0], field)
    return field, str(detail)


def _error_body(exc: exceptions.APIException) -> dict:
    if isinstance(exc, ApiError):
        body = {"error": exc.error_code, "detail": str(exc.detail)}
        if exc.field:
            body["field"] = exc.field
        return body
    if isinstance(exc, exceptions.ValidationError):
        field, message = _first_validation_error(exc.detail)
        body = {"error": "invalid", "detail": message}
        if field:
            body["field"] = field
        return body
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    if isinstance(exc, exceptions.ParseError):
        code = "malformed"
    elif isinstance(exc, exceptions.PermissionDenied) and str(exc.detail).startswith("CSRF"):
        code = "csrf_failed"
    return {"error": code, "detail": str(exc.detail)}


def api_exception_handler(exc, context):
    """DRF's handler (status codes, WWW-Authenticate, Retry-After) with our error body."""
    if isinstance(exc, ServiceError):
        exc = _from_service_error(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found."))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = _error_body(exc)
    return response


# --- Throttling and permissions ----------------------------------------------------------------


class DepositsThrottle(ScopedRateThrottle):
    """Per user, per operation (``view.throttle_scopes[method]``), in the shared cache."""

    def allow_request(self, request, view):
        self.scope = getattr(view, "throttle_scopes", {}).get(request.method)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super(ScopedRateThrottle, self).allow_request(request, view)

    def get_rate(self):
        rates = api_settings.DEFAULT_THROTTLE_RATES or {}
        return rates.get(self.scope) or DEFAULT_THROTTLE_RATES[self.scope]


class HasApprovedKyc(BasePermission):
    message = gettext_lazy("Your identity check must be approved before you can deposit.")
    code = "kyc_required"

    def has_permission(self, request, view):
        return bool(
            request.user and request.user.is_authenticated and user_kyc_approved(request.user)
        )


class DepositsApiBase(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [DepositsThrottle]
    throttle_scopes: dict[str, str] = {}

    def get_exception_handler(self):
        return api_exception_handler


# --- Output ------------------------------------------------------------------------------------


class WholeShillingsField(serializers.IntegerField):
    """An integer number of shillings: never a float, a boolean or a decimal string."""

    default_error_messages = {
        "invalid": gettext_lazy(
            "Send the amount as a whole number of shillings, for example 5000."
        ),
    }

    def to_internal_value(self, data):
        if isinstance(data, bool | float) or (
            isinstance(data, str) and not data.strip().lstrip("-").isdigit()
        ):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if len(str(abs(value))) > AMOUNT_MAX_DIGITS:
            raise serializers.ValidationError(
                _("The largest single deposit is TSh %(max)s.")
                % {"max": tsh(settings.MAX_DEPOSIT_TZS)}
            )
        return value


class DepositOutputSerializer(serializers.Serializer):
    """A deposit as its owner sees it. The phone number is masked."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=DepositRequest.Status.choices)
    stage = serializers.CharField(
        help_text="Where the deposit is on the customer's journey: "
        "sending, awaiting_payment, prompt_uncertain, "
        "awaiting_transfer, held, payment_received, safe, "
        "mint_delayed, minting, minted, failed, refunded."
    )
    failure = serializers.CharField(
        help_text="Why it ended without a mint: declined, "
        "cancelled, timed_out, refused, rejected, or empty."
    )
    status_reason = serializers.CharField()
    on_hold = serializers.BooleanField()
    can_check = serializers.BooleanField(help_text="Whether POST …/check makes sense now.")
    amount_tzs = serializers.IntegerField(help_text="Whole Tanzanian shillings.")
    payment_provider = serializers.ChoiceField(choices=DepositRequest.Provider.choices)
    buyer_phone_masked = serializers.CharField()
    chain = serializers.CharField()
    wallet_address = serializers.CharField()
    bank = serializers.CharField()
    transfer_reference = serializers.CharField(allow_null=True)
    account_name = serializers.CharField(help_text="Bank transfers: our account's name.")
    account_number = serializers.CharField(help_text="Bank transfers: the account to pay into.")
    transfer_instructions = serializers.CharField()
    psp_reference = serializers.CharField(help_text="ZenoPay transaction id or bank reference.")
    mint_tx_hash = serializers.CharField()
    explorer_url = serializers.CharField()
    created_at = serializers.DateTimeField()
    minted_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "Deposit"


def deposit_out(deposit: DepositRequest) -> dict:
    progress = deposit_progress(deposit=deposit)
    bank_transfer = deposit.payment_provider == DepositRequest.Provider.BANK_TRANSFER
    return DepositOutputSerializer(
        {
            "id": deposit.pk,
            "status": deposit.status,
            "stage": progress.stage,
            "failure": progress.failure,
            "status_reason": deposit.status_reason,
            "on_hold": bool(deposit.hold_reason),
            "can_check": deposit_checkable(deposit=deposit),
            "amount_tzs": deposit.amount_tzs,
            "payment_provider": deposit.payment_provider,
            "buyer_phone_masked": phone_mask(deposit.buyer_phone) if deposit.buyer_phone else "",
            "chain": deposit.chain,
            "wallet_address": deposit.wallet.address,
            "bank": deposit.bank.name,
            "transfer_reference": deposit.transfer_reference,
            "account_name": deposit.bank.account_name if bank_transfer else "",
            "account_number": deposit.bank.account_number if bank_transfer else "",
            "transfer_instructions": deposit.bank.transfer_instructions if bank_transfer else "",
            "psp_reference": deposit.psp_reference,
            "mint_tx_hash": deposit.mint_tx_hash,
            "explorer_url": tx_explorer_url(deposit.mint_tx_hash),
            "created_at": deposit.created_at,
            "minted_at": deposit.minted_at,
        }
    ).data


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.CharField()
    field = serializers.CharField(required=False)

    class Meta:
        ref_name = "Error"


def _errors(*codes: int) -> dict:
    return {code: OpenApiResponse(ErrorSerializer) for code in codes}


DEPOSIT_ID = OpenApiParameter("deposit_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


# --- Views -------------------------------------------------------------------------------------


class DepositPagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 100


class DepositsApi(DepositsApiBase):
    """``GET /api/v1/deposits`` lists; ``POST /api/v1/deposits`` creates."""

    throttle_scopes = {"GET": "deposits_read", "POST": "deposits_create"}

    class CreateInputSerializer(serializers.Serializer):
        amount_tzs = WholeShillingsField(help_text="Whole Tanzanian shillings.")
        payment_provider = serializers.ChoiceField(choices=DepositRequest.Provider.choices)
        wallet_id = serializers.UUIDField(help_text="One of your verified wallets.")
        buyer_phone = serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=32,
            default="",
            help_text="The Tanzanian mobile number that pays (zenopay only).",
        )
        bank_id = serializers.UUIDField(
            required=False,
            allow_null=True,
            default=None,
            help_text="The bank you transfer from (bank_transfer).",
        )

        class Meta:
            ref_name = "DepositCreateInput"

    class PageOutputSerializer(serializers.Serializer):
        count = serializers.IntegerField()
        next = serializers.URLField(allow_null=True)
        previous = serializers.URLField(allow_null=True)
        results = DepositOutputSerializer(many=True)

        class Meta:
            ref_name = "DepositPage"

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated(), HasApprovedKyc()]
        return super().get_permissions()

    @extend_schema(
        operation_id="deposits_list",
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
        responses={200: PageOutputSerializer, **_errors(401, 403, 429)},
    )
    def get(self, request):
        paginator = DepositPagination()
        page = paginator.paginate_queryset(user_deposits(user=request.user), request, view=self)
        return paginator.get_paginated_response([deposit_out(d) for d in page])

    @extend_schema(
        operation_id="deposits_create",
        request=CreateInputSerializer,
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                str,
                OpenApiParameter.HEADER,
                description="Any unique string (≤ 100 characters). Sending the same key again "
                "returns the same deposit (200); the same key with another body is "
                "refused (422).",
            )
        ],
        responses={
            201: DepositOutputSerializer,
            200: DepositOutputSerializer,
            **_errors(400, 401, 403, 422, 429),
        },
    )
    def post(self, request):
        serializer = self.CreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        deposit, created = deposit_create(
            user=request.user,
            data=DepositInput(
                **serializer.validated_data, idempotency_key=request.headers.get(IDEMPOTENCY_HEADER)
            ),
        )
        location = reverse("api-deposit-detail", kwargs={"deposit_id": deposit.pk})
        return Response(
            deposit_out(deposit),
            headers={"Location": location},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class DepositDetailApi(DepositsApiBase):
    """``GET /api/v1/deposits/{id}``: one of the caller's deposits (another's is 404)."""

    throttle_scopes = {"GET": "deposits_read"}

    @extend_schema(
        operation_id="deposits_retrieve",
        parameters=[DEPOSIT_ID],
        responses={200: DepositOutputSerializer, **_errors(401, 403, 404, 429)},
    )
    def get(self, request, deposit_id):
        deposit = user_deposit_get(user=request.user, deposit_id=deposit_id)
        return Response(deposit_out(deposit))


def _not_checkable(deposit: DepositRequest) -> ApiError:
    if deposit.payment_provider != DepositRequest.Provider.ZENOPAY:
        message = _("Only mobile money payments can be checked; the bank confirms transfers.")
    elif deposit.hold_reason:
        message = _("This payment is under review; there is nothing to check.")
    else:
        message = _("This deposit's payment is already settled; there is nothing to check.")
    return ApiError(message, code="not_checkable", status_code=409)


class DepositCheckApi(DepositsApiBase):
    """``POST /api/v1/deposits/{id}/check``: "I have already paid — check again". Asks ZenoPay
    soon, in a task, at most once per 10 s per deposit (the service's one rule: a press within
    that time queues nothing); answers at once (202)."""

    @extend_schema(
        operation_id="deposits_check",
        parameters=[DEPOSIT_ID],
        request=None,
        responses={202: DepositOutputSerializer, **_errors(401, 403, 404, 409)},
    )
    def post(self, request, deposit_id):
        deposit = user_deposit_get(user=request.user, deposit_id=deposit_id)
        if not deposit_checkable(deposit=deposit):
            raise _not_checkable(deposit)
        deposit_check_again(deposit_id=deposit.pk, actor=request.user)
        return Response(deposit_out(deposit), status=status.HTTP_202_ACCEPTED)


# --- Schema of the ZenoPay webhook (deposits.api), which has no serializer of its own ---------


class ZenoPayWebhookSchema(OpenApiViewExtension):
    """Documents ``POST /api/webhooks/zenopay`` for the staff-only schema, so that
    ``spectacular --validate --fail-on-warn`` passes without guessing."""

    target_class = "deposits.api.ZenoPayWebhookApi"

    def view_replacement(self):
        answer = inline_serializer(
            "ZenoPayWebhookAnswer",
            fields={
                "status": serializers.ChoiceField(choices=["received", "rejected"]),
                "reason": serializers.CharField(),
            },
        )
        hint = inline_serializer(
            "ZenoPayWebhookHint",
            fields={
                "order_id": serializers.CharField(),
                "payment_status": serializers.CharField(),
                "reference": serializers.CharField(required=False),
                "transid": serializers.CharField(required=False),
                "channel": serializers.CharField(required=False),
                "amount": serializers.CharField(required=False),
                "metadata": serializers.JSONField(required=False),
            },
        )

        class Documented(self.target_class):
            @extend_schema(
                operation_id="zenopay_webhook",
                request=hint,
                auth=[],
                description="A hint from ZenoPay; the payment is confirmed only by our own "
                "order-status query.",
                parameters=[OpenApiParameter("t", str, description="Token of the order.")],
                responses={code: answer for code in (200, 400, 401, 403, 413, 429)},
            )
            def post(self, request):
                return super().post(request)

        return Documented
