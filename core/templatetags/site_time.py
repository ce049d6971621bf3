"""The site's one way of showing a time to people (issue 11): East Africa Time, the same
pattern in every language, the month in the page's language: "2 Dec 2026, 08:48 EAT" in
English, "2 Des 2026, 08:48 EAT" in Kiswahili. Django's DATETIME_FORMAT differs per language
(Kiswahili gets "Dis. 2, 2026, 5:48 a.m"), and its Kiswahili month abbreviations are of uneven
length ("Machi", "Juni"), so the months are our own, in our catalogue.

Templates: ``{% load site_time %}{{ deposit.created_at|site_time }}`` (or ``|site_time:"seconds"``
on receipts, ``|site_time:"time"`` for the stages of one deposit, seconds apart).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django import template
from django.conf import settings
from django.utils.translation import pgettext

register = template.Library()


def _month(number: int) -> str:
    return {
        1: pgettext("month abbreviation", "Jan"),
        2: pgettext("month abbreviation", "Feb"),
        3: pgettext("month abbreviation", "Mar"),
        4: pgettext("month abbreviation", "Apr"),
        5: pgettext("month abbreviation", "May"),
        6: pgettext("month abbreviation", "Jun"),
        7: pgettext("month abbreviation", "Jul"),
        8: pgettext("month abbreviation", "Aug"),
        9: pgettext("month abbreviation", "Sep"),
        10: pgettext("month abbreviation", "Oct"),
        11: pgettext("month abbreviation", "Nov"),
        12: pgettext("month abbreviation", "Dec"),
    }[number]


def site_time_format(value: dt.datetime | None, detail: str = "") -> str:
    """``value`` (aware, as stored) in the people's time zone (settings.TIME_ZONE, EAT):
    detail "" → "2 Dec 2026, 08:48 EAT", "seconds" → "2 Dec 2026, 08:48:05 EAT",
    "time" → "08:48:05 EAT"."""
    if not isinstance(value, dt.datetime):
        return ""
    local = value.astimezone(ZoneInfo(settings.TIME_ZONE))
    zone = local.tzname()
    if detail == "time":
        return f"{local:%H:%M:%S} {zone}"
    clock = f"{local:%H:%M:%S}" if detail == "seconds" else f"{local:%H:%M}"
    return f"{local.day} {_month(local.month)} {local.year}, {clock} {zone}"


@register.filter(name="site_time")
def site_time(value, detail: str = "") -> str:
    return site_time_format(value, detail)
