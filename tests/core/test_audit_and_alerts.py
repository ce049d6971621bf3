import logging

import pytest

from accounts.models import User
from core.models import AdminAction, Alert, AppendOnlyError
from core.services import admin_action_record, alert_raise, alert_resolve


@pytest.mark.django_db
def test_admin_actions_are_append_only():
    actor = User.objects.create_user(email="officer@ntzs.test", password="x")
    action = admin_action_record(
        actor=actor, action="kyc.approve", target_type="kyc", target_id="abc"
    )
    action.reason = "rewritten history"
    with pytest.raises(AppendOnlyError):
        action.save()
    with pytest.raises(AppendOnlyError):
        action.delete()
    assert AdminAction.objects.get(pk=action.pk).reason == ""


@pytest.mark.django_db
def test_an_alert_fires_once_per_change_not_once_per_run(caplog):
    caplog.set_level(logging.ERROR)
    _, opened = alert_raise(kind="minter gas low", detail="0 wei")
    _, again = alert_raise(kind="minter gas low", detail="still 0 wei")
    assert (opened, again) == (True, False)
    assert Alert.objects.filter(kind="minter gas low", resolved_at__isnull=True).count() == 1
    assert Alert.objects.get(kind="minter gas low").detail == "still 0 wei"
    assert len([r for r in caplog.records if "Alert opened" in r.getMessage()]) == 1

    assert alert_resolve(kind="minter gas low") is True
    assert alert_resolve(kind="minter gas low") is False
    _, reopened = alert_raise(kind="minter gas low")
    assert reopened is True
    assert Alert.objects.filter(kind="minter gas low").count() == 2
