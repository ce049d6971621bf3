"""Shared shape of the deposit operator commands: ``--actor EMAIL``, a service call, and a
refusal as one sentence with a non-zero exit."""

from django.core.management.base import BaseCommand, CommandError

from core.exceptions import ServiceError
from core.management.actor import actor_from_email
from core.text import text_storable_as_is


class OperatorCommand(BaseCommand):
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
        try:
            message = self.run(actor, **options)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        if message:
            self.stdout.write(message)

    def run(self, actor, **options) -> str:  # pragma: no cover - each command defines it
        raise NotImplementedError
