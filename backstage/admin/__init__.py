"""Backstage: the one admin site (``site``), one module per area. Django's admin autodiscovery
imports this package, which registers every screen on ``site``."""

from backstage.admin import (  # noqa: F401 (registrations)
    accounts,
    banks,
    core,
    deposits,
    minting,
    reconciliation,
)
from backstage.admin.site import site

__all__ = ["site"]
