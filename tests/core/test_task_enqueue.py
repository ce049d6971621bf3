"""Enqueuing a task by name (core.services.task_enqueue_on_commit): a name no app defines is a
programming error, loud in tests and an ERROR line elsewhere; a known name reaches the broker."""

from __future__ import annotations

import logging

import pytest

from core.exceptions import ServiceError
from core.services import task_enqueue_on_commit


@pytest.mark.django_db
def test_an_unknown_task_name_raises_in_tests(broker, django_capture_on_commit_callbacks):
    with pytest.raises(ServiceError, match="task deposits.tasks.no_such_task is not defined"):
        with django_capture_on_commit_callbacks(execute=True):
            task_enqueue_on_commit("deposits.tasks.no_such_task", "x")
    assert broker() == []


@pytest.mark.django_db
def test_an_unknown_task_name_is_logged_at_error_outside_tests(
    broker,
    django_capture_on_commit_callbacks,
    settings,
    caplog,
):
    settings.PROFILE = "production"
    with caplog.at_level(logging.DEBUG, logger="core.services"):
        with django_capture_on_commit_callbacks(execute=True):
            task_enqueue_on_commit("deposits.tasks.no_such_task", "x")
    [record] = [r for r in caplog.records if "no_such_task" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "its beat sweep will find the work" in record.getMessage()
    assert broker() == []


@pytest.mark.django_db
def test_a_known_task_name_reaches_the_broker_with_its_arguments(
    broker,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        task_enqueue_on_commit("deposits.tasks.check_deposit", "d1", "webhook")
    assert broker() == [("deposits.tasks.check_deposit", ["d1", "webhook"])]
