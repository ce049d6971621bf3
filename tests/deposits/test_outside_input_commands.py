"""Command arguments are outside input too (DESIGN §14 invariant 13): a value no column can
store is refused with one sentence, never a traceback, and nothing is written."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from deposits.models import DepositTransition


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("reason", "paid twice\x00"),
        ("reason", "kosa \udcff"),  # what Python makes of a byte that is not UTF-8 in argv
        ("actor", "compliance@ntzs.test\udcff"),
    ],
)
def test_an_unstorable_command_argument_is_refused_in_one_sentence(
    make_deposit, compliance, option, value
):
    deposit = make_deposit()
    options = {"reason": "customer asked", "actor": compliance.email, option: value}
    with pytest.raises(CommandError, match="NUL character or bytes that are not UTF-8"):
        call_command("deposit_cancel", str(deposit.pk), **options)
    deposit.refresh_from_db()
    assert deposit.status == "submitted"
    assert DepositTransition.objects.filter(deposit=deposit).count() == 1
