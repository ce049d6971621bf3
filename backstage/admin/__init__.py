"""Backstage: the one admin site (``site``), one module per area. Django's admin autodiscovery
imports this package, which registers every screen on ``site``."""

from backstage.admin import accounts, core, deposits, minting  # noqa: F401 (registrations)
from backstage.admin.site import site

__all__ = ["site"]
