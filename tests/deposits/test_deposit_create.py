"""Creating a deposit: input validation, limits (at and just above each boundary, under
concurrency), idempotency, the 5-minute identical rule and the rate limit."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connection

from deposits.exceptions import IdempotencyConflict, InvalidDeposit, LimitRefused
from deposits.models import Bank, DepositRequest, DepositTransition, LimitEvent
from deposits.services.intake import DepositInput, deposit_create
from deposits.services.transitions import deposit_cancel
from tests.deposits.conftest import PHONE
from tests.factories import UserFactory, WalletFactory

ZENOPAY = DepositRequest.Provider.ZENOPAY
BANK = DepositRequest.Provider.BANK_TRANSFER


def _input(user, **overrides):
    values = {
        "amount_tzs": 5_000,
        "payment_provider": ZENOPAY,
        "wallet_id": user.test_wallet.pk,
        "buyer_phone": PHONE,
    }
    values.update(overrides)
    return DepositInput(**values)


@pytest.mark.django_db
def test_a_zenopay_deposit_starts_submitted_with_initiation_pending(
    amina, settlement_bank, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        deposit, created = deposit_create(
            user=amina, data=_input(amina, buyer_phone="0712 345-678")
        )
    assert created
    assert deposit.status == "submitted"
    assert deposit.initiation == "pending"
    assert deposit.buyer_phone == "+255712345678"
    assert deposit.bank == settlement_bank
    assert deposit.next_poll_at is not None
    assert len(callbacks) == 1  # initiate_payment is enqueued after commit, never inline
    assert DepositTransition.objects.get(deposit=deposit).to_status == "submitted"


@pytest.mark.django_db
def test_a_bank_transfer_gets_a_reference_and_no_initiation(amina, nmb_bank):
    deposit, _ = deposit_create(
        user=amina, data=_input(amina, payment_provider=BANK, bank_id=nmb_bank.pk, buyer_phone="")
    )
    assert deposit.initiation is None
    assert deposit.transfer_reference.startswith("NTZS")
    assert deposit.bank == nmb_bank


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("amount_tzs", "", "whole shillings"),
        ("amount_tzs", "-5000", "whole shillings"),
        ("amount_tzs", 0, "more than zero"),
        ("amount_tzs", -1, "more than zero"),
        ("amount_tzs", "12.5", "whole shillings"),
        ("amount_tzs", 12.5, "whole shillings"),
        ("amount_tzs", "abc", "whole shillings"),
        ("amount_tzs", True, "whole shillings"),
        ("amount_tzs", "9" * 25, "far too large"),
        ("buyer_phone", "", "mobile number"),
        ("buyer_phone", "+254712345678", "Only Tanzanian"),
        ("buyer_phone", "0222123456", "not a Tanzanian mobile"),
        ("buyer_phone", "12345", "Tanzanian mobile"),
        ("buyer_phone", "<script>alert(1)</script>", "Tanzanian mobile"),
        ("payment_provider", "paypal", "mobile money or bank transfer"),
        ("wallet_id", "not-a-uuid", "verified wallets"),
    ],
)
@pytest.mark.django_db
def test_bad_input_is_refused_with_a_sentence_and_writes_nothing(amina, field, value, message):
    with pytest.raises(InvalidDeposit, match=message):
        deposit_create(user=amina, data=_input(amina, **{field: value}))
    assert DepositRequest.objects.count() == 0
    assert LimitEvent.objects.count() == 0


@pytest.mark.parametrize(
    "phone", ["+255 612 345 678", "255741234567", "0641234567", "712345678", "0799-123-456"]
)
@pytest.mark.django_db
def test_every_current_mobile_prefix_is_accepted(amina, phone):
    deposit, _ = deposit_create(user=amina, data=_input(amina, buyer_phone=phone))
    assert deposit.buyer_phone.startswith("+2556") or deposit.buyer_phone.startswith("+2557")


@pytest.mark.django_db
def test_a_customer_without_approved_kyc_cannot_deposit(settlement_bank):
    person = UserFactory()
    person.test_wallet = WalletFactory(user=person, verified=True)
    with pytest.raises(InvalidDeposit, match="identity check"):
        deposit_create(user=person, data=_input(person))
    assert DepositRequest.objects.count() == 0


@pytest.mark.django_db
def test_an_unverified_or_foreign_wallet_is_refused(amina, baraka):
    unverified = WalletFactory(user=amina)
    for wallet in (unverified, baraka.test_wallet):
        with pytest.raises(InvalidDeposit, match="verified wallets"):
            deposit_create(user=amina, data=_input(amina, wallet_id=wallet.pk))
    assert DepositRequest.objects.count() == 0


@pytest.mark.parametrize(
    ("amount", "ok", "kind"),
    [
        (1_000, True, None),
        (999, False, "min_deposit"),
        (1_000_000, True, None),
        (1_000_001, False, "max_deposit"),
    ],
)
@pytest.mark.django_db
def test_per_deposit_bounds_allow_the_boundary_and_refuse_just_beyond(amina, amount, ok, kind):
    if ok:
        deposit_create(user=amina, data=_input(amina, amount_tzs=amount))
        assert LimitEvent.objects.count() == 0
    else:
        with pytest.raises(LimitRefused):
            deposit_create(user=amina, data=_input(amina, amount_tzs=amount))
        event = LimitEvent.objects.get()
        assert (event.kind, event.requested_tzs) == (kind, amount)
        assert DepositRequest.objects.count() == 0


@pytest.mark.django_db
def test_the_daily_limit_allows_exactly_the_limit_and_refuses_one_more(amina, settings):
    settings.USER_DAILY_LIMIT_TZS = 10_000
    deposit_create(user=amina, data=_input(amina, amount_tzs=6_000))
    deposit_create(user=amina, data=_input(amina, amount_tzs=4_000, buyer_phone="0754123456"))
    with pytest.raises(LimitRefused, match="daily limit"):
        deposit_create(user=amina, data=_input(amina, amount_tzs=1_000, buyer_phone="0765123456"))
    event = LimitEvent.objects.get()
    assert (event.kind, event.limit_tzs, event.used_tzs) == ("user_daily", 10_000, 10_000)


@pytest.mark.django_db
@pytest.mark.forced_status
@pytest.mark.parametrize("status", ["cancelled", "rejected", "refunded"])
def test_cancelled_rejected_and_refunded_deposits_do_not_count(amina, settings, status):
    settings.USER_DAILY_LIMIT_TZS = 10_000
    first = deposit_create(user=amina, data=_input(amina, amount_tzs=10_000))[0]
    DepositRequest.objects.filter(pk=first.pk).update(status=status)
    second = deposit_create(
        user=amina, data=_input(amina, amount_tzs=10_000, buyer_phone="0754123456")
    )[0]
    assert DepositRequest.objects.get(pk=second.pk).status == "submitted"
    assert not LimitEvent.objects.exists()


@pytest.mark.django_db
def test_a_deposit_still_open_counts_towards_the_limit(amina, settings):
    settings.USER_DAILY_LIMIT_TZS = 10_000
    deposit_create(user=amina, data=_input(amina, amount_tzs=10_000))
    with pytest.raises(LimitRefused, match="daily limit"):
        deposit_create(user=amina, data=_input(amina, amount_tzs=1_000, buyer_phone="0754123456"))


@pytest.mark.django_db
def test_the_30_day_limit_counts_a_rolling_window(amina, settings):
    settings.USER_MONTHLY_LIMIT_TZS = 3_000
    settings.USER_DAILY_LIMIT_TZS = 100_000
    deposit_create(user=amina, data=_input(amina, amount_tzs=3_000))
    with pytest.raises(LimitRefused, match="30-day limit"):
        deposit_create(user=amina, data=_input(amina, amount_tzs=1_000, buyer_phone="0754123456"))
    assert LimitEvent.objects.get().kind == "user_monthly"


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_creations_cannot_together_exceed_the_daily_limit(amina, settings):
    settings.USER_DAILY_LIMIT_TZS = 10_000
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 100
    settings.MAX_PAYING_PHONES_PER_30_DAYS = 100  # one phone per thread; not the point here
    results: list[str] = []
    barrier = threading.Barrier(20)

    def create(i: int) -> None:
        barrier.wait()
        try:
            deposit_create(
                user=amina,
                data=_input(amina, amount_tzs=1_000, buyer_phone=f"07{i:02d}123456"[:10]),
            )
            results.append("ok")
        except LimitRefused:
            results.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("ok") == 10
    assert results.count("refused") == 10
    assert sum(DepositRequest.objects.values_list("amount_tzs", flat=True)) == 10_000
    assert LimitEvent.objects.filter(kind="user_daily").count() == 10


@pytest.mark.django_db
def test_the_same_idempotency_key_returns_the_same_deposit(amina):
    first, created = deposit_create(user=amina, data=_input(amina, idempotency_key="abc-1"))
    again, created_again = deposit_create(user=amina, data=_input(amina, idempotency_key="abc-1"))
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert DepositRequest.objects.count() == 1


@pytest.mark.django_db
def test_the_same_idempotency_key_with_another_body_is_refused(amina):
    deposit_create(user=amina, data=_input(amina, idempotency_key="abc-2"))
    with pytest.raises(IdempotencyConflict, match="different deposit"):
        deposit_create(user=amina, data=_input(amina, amount_tzs=6_000, idempotency_key="abc-2"))
    assert DepositRequest.objects.count() == 1


@pytest.mark.django_db
def test_an_identical_deposit_within_five_minutes_returns_the_requested_one(amina):
    first, _ = deposit_create(user=amina, data=_input(amina))
    DepositRequest.objects.filter(pk=first.pk).update(initiation="requested")
    again, created = deposit_create(user=amina, data=_input(amina, buyer_phone="0712345678"))
    assert (again.pk, created) == (first.pk, False)
    different, created = deposit_create(user=amina, data=_input(amina, amount_tzs=5_001))
    assert created and different.pk != first.pk


@pytest.mark.django_db
def test_the_creation_rate_is_limited_per_user_on_the_shared_cache(amina, baraka, settings):
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 3
    for i in range(3):
        deposit_create(user=amina, data=_input(amina, amount_tzs=1_000 + i))
    with pytest.raises(LimitRefused, match="Too many deposits"):
        deposit_create(user=amina, data=_input(amina, amount_tzs=2_000))
    assert LimitEvent.objects.get().kind == "rate"
    deposit_create(user=baraka, data=_input(baraka))  # another customer is not affected


PAYING_PHONES = ["+255712000001", "+255713000002", "+255754000003", "+255765000004"]


@pytest.mark.django_db
def test_a_fourth_distinct_paying_number_in_30_days_is_refused_until_the_window_frees(
    amina, settings
):
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 100
    start = dt.datetime(2027, 1, 10, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        first, _ = deposit_create(user=amina, data=_input(amina, buyer_phone=PAYING_PHONES[0]))
        # Unpaid deposits count too: the prompt reached that phone either way.
        deposit_cancel(deposit_id=first.pk, reason="declined on the phone", source="poll")
    with time_machine.travel(start + dt.timedelta(days=1), tick=False):
        for i, phone in enumerate(PAYING_PHONES[1:3]):
            deposit_create(user=amina, data=_input(amina, buyer_phone=phone, amount_tzs=2_000 + i))
        with pytest.raises(LimitRefused, match="3 different phone numbers"):
            deposit_create(
                user=amina, data=_input(amina, buyer_phone=PAYING_PHONES[3], amount_tzs=3_000)
            )
        event = LimitEvent.objects.get()
        assert (
            event.kind,
            event.user,
            event.subject,
            event.requested_tzs,
            event.limit_tzs,
            event.used_tzs,
            event.deposit,
        ) == ("paying_phones", amina, PAYING_PHONES[3], 3_000, 3, 3, None)
        # A number already used in the window is fine, in any spelling.
        again, created = deposit_create(
            user=amina, data=_input(amina, buyer_phone="0754 000 003", amount_tzs=4_000)
        )
        assert created and again.buyer_phone == PAYING_PHONES[2]
        # A bank transfer sends no prompt: not a paying phone.
        deposit_create(
            user=amina,
            data=_input(
                amina,
                payment_provider=BANK,
                bank_id=Bank.objects.create(name="NMB").pk,
                buyer_phone=PAYING_PHONES[3],
                amount_tzs=4_500,
            ),
        )
    assert (
        DepositRequest.objects.filter(
            buyer_phone=PAYING_PHONES[3], payment_provider=ZENOPAY
        ).count()
        == 0
    )
    with time_machine.travel(start + dt.timedelta(days=30, minutes=1), tick=False):
        fourth, created = deposit_create(
            user=amina, data=_input(amina, buyer_phone=PAYING_PHONES[3], amount_tzs=5_500)
        )
    assert created and fourth.buyer_phone == PAYING_PHONES[3]
    assert LimitEvent.objects.count() == 1


@pytest.mark.django_db
def test_the_paying_phone_allowance_follows_the_setting(amina, settings):
    settings.MAX_PAYING_PHONES_PER_30_DAYS = 1
    deposit_create(user=amina, data=_input(amina, buyer_phone=PAYING_PHONES[0]))
    with pytest.raises(LimitRefused, match="1 different phone numbers"):
        deposit_create(user=amina, data=_input(amina, buyer_phone=PAYING_PHONES[1]))
    assert LimitEvent.objects.get().kind == "paying_phones"


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_creations_cannot_together_bring_in_a_fourth_paying_number(amina, settings):
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 100
    results: list[str] = []
    barrier = threading.Barrier(10)

    def create(i: int) -> None:
        barrier.wait()
        try:
            deposit_create(
                user=amina,
                data=_input(amina, amount_tzs=1_000 + i, buyer_phone=f"+2557120000{i:02d}"),
            )
            results.append("ok")
        except LimitRefused:
            results.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (results.count("ok"), results.count("refused")) == (3, 7)
    assert DepositRequest.objects.values("buyer_phone").distinct().count() == 3
    assert LimitEvent.objects.filter(kind="paying_phones").count() == 7
