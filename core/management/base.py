"""The shared shape of operator commands: ``--actor EMAIL``, a service call, and a refusal as
one sentence with a non-zero exit.

Four eyes on the command line is only as strong as shell access to the servers
(docs/runbook.md says so).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.exceptions import ServiceError
from core.text import text_storable_as_is

# The errors a command answers with their one-sentence message instead of a traceback.
# Higher apps add theirs at start-up (minting registers its chain errors in its AppConfig):
# core cannot import them (DESIGN §3).
_REFUSALS: list[type[Exception]] = [ServiceError]


def command_refusal_register(*error_types: type[Exception]) -> None:
    for error_type in error_types:
        if error_type not in _REFUSALS:
            _REFUSALS.append(error_type)


def command_refusals() -> tuple[type[Exception], ...]:
    return tuple(_REFUSALS)


def actor_from_email(email: str):
    user = get_user_model().objects.filter(email=email.strip().lower(), is_active=True).first()
    if user is None:
        raise CommandError(f"There is no active user with the email {email!r}.")
    return user


class RefusingCommand(BaseCommand):
    """A command whose service refusals and chain errors become its one-sentence refusal
    (``CommandError``: the message on stderr, exit status 1), never a traceback."""

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except command_refusals() as exc:
            raise CommandError(str(exc)) from None


class OperatorCommand(RefusingCommand):
    """``--actor EMAIL`` (the person acting, for the audit trail) and ``run()``, whose
    returned text is printed."""

    def add_arguments(self, parser):
        parser.add_argument("--actor", required=True, help="the operator's email")

    def handle(self, *args, **options):
        for name, value in options.items():
            # A shell hands over bytes that are not UTF-8 as lone surrogates: no column
            # can store them, and an identifier must never be silently changed.
            if isinstance(value, str) and not text_storable_as_is(value):
                raise CommandError(
                    f"The {name.replace('_', ' ')} given holds a NUL "
                    f"character or bytes that are not UTF-8; type it again."
                )
        actor = actor_from_email(options.pop("actor"))
        message = self.run(actor, **options)
        if message:
            self.stdout.write(message)

    def run(self, actor, **options) -> str:  # pragma: no cover - each command defines it
        raise NotImplementedError
