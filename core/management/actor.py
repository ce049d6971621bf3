"""``--actor EMAIL`` for operator commands. Four eyes on the command line is only as strong
as shell access to the servers (docs/operations.md says so)."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def actor_from_email(email: str):
    user = get_user_model().objects.filter(email__iexact=email.strip(), is_active=True).first()
    if user is None:
        raise CommandError(f"There is no active user with the email {email!r}.")
    return user
