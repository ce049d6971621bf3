import datetime as dt

import time_machine

from core.clock import now, today_utc


def test_today_is_the_utc_day_not_the_local_one():
    # 23:30 UTC is already the next day in Dar es Salaam (UTC+3); the issuance day is UTC.
    with time_machine.travel(dt.datetime(2026, 3, 31, 23, 30, tzinfo=dt.UTC), tick=False):
        assert today_utc() == dt.date(2026, 3, 31)
        assert now().tzinfo is not None
