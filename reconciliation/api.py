"""Public transparency endpoints (DESIGN §8): the supply as the last snapshot proved it.

Anonymous, throttled (DRF scope ``supply``), aggregates only. Served from stored snapshots,
never from a chain read per request. A figure that is not known is never served as 0:

* ``/api/v1/supply`` (JSON): the last snapshot whose chain figures could be read, with its
  age, while it is younger than ``FRESH_FOR``; 503 with a sentence after (or before any).
* ``/api/v1/supply/total`` and ``/api/v1/supply/circulating`` (plain-text decimal nTZS, all
  18 decimals, as price sites read them): the last snapshot, 503 as soon as it is unavailable
  or older than ``FRESH_FOR`` (a price site must not take a stale number for a current one).

Circulating supply = on-chain supply minus the balances of ``TREASURY_ADDRESSES``, both read
at the snapshot's block.
"""

from __future__ import annotations

import datetime as dt

from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from core.clock import now
from core.money import tzs_to_units, units_decimal_text
from reconciliation.models import SupplySnapshot

FRESH_FOR = dt.timedelta(minutes=15)


def _latest(*, readable: bool) -> SupplySnapshot | None:
    snapshots = SupplySnapshot.objects.all()
    if readable:
        snapshots = snapshots.filter(onchain_supply_units__isnull=False)
    return snapshots.order_by("-at", "-pk").first()


def _fresh(snapshot: SupplySnapshot | None) -> bool:
    return snapshot is not None and now() - snapshot.at < FRESH_FOR


def _decimal(units) -> str | None:
    return None if units is None else units_decimal_text(int(units))


def _unavailable_sentence() -> str:
    return _(
        "The nTZS supply is unavailable: no snapshot of the last 15 minutes could read the "
        "chain. Try again later."
    )


class PublicSupplyApi(APIView):
    authentication_classes: list = []  # anonymous: no session, no token, no CSRF
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "supply"


SUPPLY_FIELDS = inline_serializer(
    "Supply",
    {
        "onchain_supply": serializers.CharField(help_text="nTZS, exact decimal"),
        "db_minted": serializers.CharField(help_text="nTZS minted for deposits (claimed logs)"),
        "reconciled": serializers.CharField(help_text="nTZS explained by entries (signed)"),
        "in_flight": serializers.CharField(help_text="nTZS minted, not yet confirmed"),
        "discrepancy": serializers.CharField(
            help_text="on-chain minus (minted + reconciled + in flight)"
        ),
        "circulating_supply": serializers.CharField(allow_null=True),
        "decimals": serializers.IntegerField(),
        "chain_id": serializers.IntegerField(),
        "block_number": serializers.IntegerField(),
        "snapshot_at": serializers.DateTimeField(),
        "snapshot_age_seconds": serializers.IntegerField(),
        "latest_read_available": serializers.BooleanField(
            help_text="false when the newest snapshot could not read the chain"
        ),
    },
)
UNAVAILABLE = inline_serializer("SupplyUnavailable", {"detail": serializers.CharField()})


class SupplyApi(PublicSupplyApi):
    @extend_schema(
        operation_id="supply",
        summary="The nTZS supply and its reconciliation, from the last snapshot",
        responses={200: SUPPLY_FIELDS, 503: OpenApiResponse(UNAVAILABLE), 429: UNAVAILABLE},
        tags=["supply"],
    )
    def get(self, request):
        snapshot = _latest(readable=True)
        if not _fresh(snapshot):
            return Response(
                {"detail": _unavailable_sentence()}, status=status.HTTP_503_SERVICE_UNAVAILABLE
            )
        newest = _latest(readable=False)
        supply = int(snapshot.onchain_supply_units)
        circulating = (
            None if snapshot.treasury_units is None else supply - int(snapshot.treasury_units)
        )
        return Response(
            {
                "onchain_supply": _decimal(supply),
                "db_minted": _decimal(tzs_to_units(snapshot.db_minted_tzs)),
                "reconciled": _decimal(snapshot.reconciled_units),
                "in_flight": _decimal(tzs_to_units(snapshot.in_flight_tzs)),
                "discrepancy": _decimal(snapshot.discrepancy_units),
                "circulating_supply": _decimal(circulating),
                "decimals": 18,  # NTZS's, fixed (DESIGN §4)
                "chain_id": snapshot.chain_id,
                "block_number": snapshot.block_number,
                "snapshot_at": snapshot.at,
                "snapshot_age_seconds": int((now() - snapshot.at).total_seconds()),
                "latest_read_available": newest is None or newest.pk == snapshot.pk,
            }
        )


def _plain(text: str, status_code: int = 200) -> HttpResponse:
    response = HttpResponse(text, content_type="text/plain; charset=utf-8", status=status_code)
    response["Cache-Control"] = "no-store" if status_code != 200 else "max-age=60"
    return response


PLAIN = {
    (200, "text/plain"): OpenApiTypes.STR,
    (503, "text/plain"): OpenApiTypes.STR,
    (429, "application/json"): UNAVAILABLE,  # the throttle's answer, rendered by DRF
}


class SupplyPlainApi(PublicSupplyApi):
    figure = "total"

    def perform_content_negotiation(self, request, force=False):
        # Price sites ask for text/plain, which no DRF renderer offers: the figure is a plain
        # HttpResponse of its own, so never refuse them with 406 (a throttle answers JSON).
        return super().perform_content_negotiation(request, force=True)

    def get(self, request):
        snapshot = _latest(readable=False)
        if not _fresh(snapshot) or snapshot.onchain_supply_units is None:
            return _plain(_unavailable_sentence() + "\n", status.HTTP_503_SERVICE_UNAVAILABLE)
        units = int(snapshot.onchain_supply_units)
        if self.figure == "circulating":
            if snapshot.treasury_units is None:
                return _plain(_unavailable_sentence() + "\n", status.HTTP_503_SERVICE_UNAVAILABLE)
            units -= int(snapshot.treasury_units)
        return _plain(units_decimal_text(units))


class SupplyTotalApi(SupplyPlainApi):
    figure = "total"

    @extend_schema(
        operation_id="supply_total",
        summary="Total nTZS supply (plain-text decimal) from a snapshot under 15 minutes old",
        responses=PLAIN,
        tags=["supply"],
    )
    def get(self, request):
        return super().get(request)


class SupplyCirculatingApi(SupplyPlainApi):
    figure = "circulating"

    @extend_schema(
        operation_id="supply_circulating",
        summary="Circulating nTZS supply: total minus the treasury addresses' balances",
        responses=PLAIN,
        tags=["supply"],
    )
    def get(self, request):
        return super().get(request)
