"""One end-to-end run over real HTTP: the ZenoPay client, the sandbox and our webhook
endpoint served by a live server, the phone approving through the sandbox's page."""

from __future__ import annotations

import re

import pytest
import requests

from deposits.models import DepositRequest, PaymentNotification
from deposits.sandbox.services import sandbox_webhook_fire
from deposits.services.payments import deposit_check, payment_initiate


@pytest.mark.django_db(transaction=True)
def test_deposit_reaches_mint_pending_over_http(live_server, settings, make_deposit):
    settings.APP_URL = live_server.url
    settings.ZENOPAY_BASE_URL = f"{live_server.url}/sandbox/zenopay"
    deposit = make_deposit(amount=7_500)

    assert payment_initiate(deposit_id=deposit.pk) == "requested"  # real HTTP create

    phone = requests.Session()
    page = phone.get(f"{live_server.url}/sandbox/zenopay/phone/", timeout=10)
    assert page.status_code == 200 and str(deposit.pk) in page.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    approved = phone.post(
        f"{live_server.url}/sandbox/zenopay/phone/orders/",
        data={"csrfmiddlewaretoken": token, "order_id": str(deposit.pk), "action": "approve"},
        headers={"Referer": page.url},
        timeout=10,
    )
    assert approved.status_code in (200, 302)

    # What the sandbox's Celery task does after commit: POST the webhook to our endpoint.
    assert sandbox_webhook_fire(order_id=str(deposit.pk)) == 200
    assert PaymentNotification.objects.get(kind="webhook").deposit_id == deposit.pk

    assert deposit_check(deposit_id=deposit.pk, source="webhook") == "applied"  # real HTTP
    deposit.refresh_from_db()
    assert deposit.status == DepositRequest.Status.MINT_PENDING
    assert deposit.psp_reference
