"""Signal receivers of the accounts app (connected in ``AccountsConfig.ready``)."""

from __future__ import annotations

from django.contrib.auth.hashers import check_password
from django.db.models.signals import post_save, pre_save

from accounts.models import User
from accounts.services.passwords import user_password_changed


def _password_before_save(sender, instance, raw=False, update_fields=None, **kwargs):
    """Remember whether this save changes the password (compared with the stored hash)."""
    instance._ntzs_password_changed = False
    if raw or instance._state.adding or instance.pk is None:
        return
    if update_fields is not None and "password" not in update_fields:
        return
    stored = (
        sender._default_manager.filter(pk=instance.pk).values_list("password", flat=True).first()
    )
    if stored is None or stored == instance.password:
        return
    # Django re-hashes a password on login when its hasher settings changed: the same
    # password under a new hash is not a change (``_password`` holds the raw password that
    # set_password was given, until the save).
    raw_password = getattr(instance, "_password", None)
    if raw_password is not None and check_password(raw_password, stored):
        return
    instance._ntzs_password_changed = True


def _password_after_save(sender, instance, created=False, raw=False, **kwargs):
    if created or raw or not getattr(instance, "_ntzs_password_changed", False):
        return
    instance._ntzs_password_changed = False
    user_password_changed(user=instance)


def connect() -> None:
    pre_save.connect(_password_before_save, sender=User, dispatch_uid="ntzs_password_before")
    post_save.connect(_password_after_save, sender=User, dispatch_uid="ntzs_password_after")
