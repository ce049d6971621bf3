"""Figures on Backstage pages written the same way in every language: 1,250,000 (the site's
convention, deposits.forms.tsh; Django's own number formats differ per locale, and Kiswahili's
has no thousands separator), and ages ("2 days, 5 hours") in the page's language."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.clock import now

register = template.Library()


@register.filter(name="grouped")
def grouped(value) -> str:
    """An integer with thousands separators; anything else unchanged ("—" stays "—")."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return value


@register.filter(name="age")
def age(value) -> str:
    """How long ago ``value`` (a datetime) was, in its two largest units: "2 days, 5 hours",
    "7 minutes", "under a minute". Our own words rather than Django's ``timesince``, whose
    Kiswahili catalogue has no units (a Kiswahili page would read "7 minutes")."""
    if value is None or value == "":
        return "—"
    seconds = max(int((now() - value).total_seconds()), 0)
    if seconds < 60:
        return _("under a minute")
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    units = [
        (days, ngettext("%(n)d day", "%(n)d days", days)),
        (hours, ngettext("%(n)d hour", "%(n)d hours", hours)),
        (minutes, ngettext("%(n)d minute", "%(n)d minutes", minutes)),
    ]
    first = next(i for i, (n, _text) in enumerate(units) if n)
    shown = [text % {"n": n} for n, text in units[first : first + 2] if n]
    return ", ".join(shown)
