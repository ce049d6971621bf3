import re

import pytest
from django.contrib.auth import get_user
from django.core import mail
from django.urls import reverse

from accounts.models import User
from tests.factories import customer

pytestmark = pytest.mark.django_db


def test_password_reset_sends_an_email_with_a_working_link(client):
    customer(email="amina@ntzs.test")

    response = client.post(reverse("accounts:password_reset"), {"email": "amina@ntzs.test"})

    assert response.status_code == 302
    assert response.url == reverse("accounts:password_reset_done")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["amina@ntzs.test"]
    link = re.search(r"https?://testserver(/\S+)", mail.outbox[0].body).group(1)

    response = client.get(link, follow=True)
    assert response.context["validlink"]
    response = client.post(
        response.redirect_chain[-1][0],
        {"new_password1": "a-brand-new-passphrase", "new_password2": "a-brand-new-passphrase"},
    )
    assert response.status_code == 302
    assert response.url == reverse("accounts:password_reset_complete")
    assert User.objects.get(email="amina@ntzs.test").check_password("a-brand-new-passphrase")


def test_password_reset_for_an_unknown_email_sends_nothing_and_says_the_same(client):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@ntzs.test"})

    assert response.status_code == 302
    assert response.url == reverse("accounts:password_reset_done")
    assert mail.outbox == []
    assert not get_user(client).is_authenticated
