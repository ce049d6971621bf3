import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import KycCase
from accounts.services import InvalidInput, kyc_submit
from core.exceptions import ConflictError
from tests.factories import KycCaseFactory, customer

pytestmark = pytest.mark.django_db

NIDA = "19900101-11111-00001-23"  # 20 digits as printed, with dashes


def test_kyc_submission_stores_a_pending_case_with_the_digits_only():
    case = kyc_submit(user=customer(), national_id=NIDA, full_name="  Amina   Juma ")

    assert case.status == KycCase.Status.PENDING
    assert case.national_id == "19900101111110000123"
    assert case.full_name == "Amina Juma"


def test_kyc_nida_number_with_spaces_is_accepted():
    case = kyc_submit(user=customer(), national_id="1990 0101 1111 1000 0123", full_name="Amina")

    assert case.national_id == "19900101111110000123"


@pytest.mark.parametrize(
    "national_id",
    [
        "1990010111111000012",  # 19 digits
        "199001011111100001234",  # 21 digits
        "1990010111111000012A",
        "١٩٩٠٠١٠١١١١١١٠٠٠٠١٢٣",  # Arabic-Indic digits are not NIDA digits
        "19900101.11111.00001.23",
    ],
)
def test_kyc_with_a_bad_nida_number_is_refused(national_id):
    with pytest.raises(InvalidInput, match="exactly 20 digits") as exc:
        kyc_submit(user=customer(), national_id=national_id, full_name="Amina Juma")

    assert exc.value.field == "national_id"
    assert not KycCase.objects.exists()


@pytest.mark.parametrize(
    ("national_id", "full_name", "field"),
    [("", "Amina Juma", "national_id"), (NIDA, "", "full_name"), (NIDA, "   ", "full_name")],
)
def test_kyc_with_an_empty_field_is_refused(national_id, full_name, field):
    with pytest.raises(InvalidInput) as exc:
        kyc_submit(user=customer(), national_id=national_id, full_name=full_name)

    assert exc.value.field == field


@pytest.mark.parametrize(
    "full_name",
    ["Amina\nJuma", "Amina\x00Juma", "Amina\u202eamuJ", "A" * 201, "A", "12345 !!"],
)
def test_kyc_with_an_unreasonable_name_is_refused(full_name):
    with pytest.raises(InvalidInput) as exc:
        kyc_submit(user=customer(), national_id=NIDA, full_name=full_name)

    assert exc.value.field == "full_name"


def test_a_second_kyc_submission_waits_for_the_first_review():
    amina = customer()
    KycCaseFactory(user=amina)

    with pytest.raises(ConflictError, match="still being reviewed"):
        kyc_submit(user=amina, national_id=NIDA, full_name="Amina Juma")


def test_kyc_can_be_submitted_again_after_a_rejection():
    amina = customer()
    KycCaseFactory(user=amina, rejected=True)

    case = kyc_submit(user=amina, national_id=NIDA, full_name="Amina Juma")

    assert case.status == KycCase.Status.PENDING


def test_kyc_is_not_submitted_again_once_approved():
    amina = customer()
    KycCaseFactory(user=amina, approved=True)

    with pytest.raises(ConflictError, match="already verified"):
        kyc_submit(user=amina, national_id=NIDA, full_name="Amina Juma")


@pytest.mark.parametrize("status", ["pending", "approved"])
def test_a_second_account_with_the_same_nida_number_in_another_format_is_refused(status):
    KycCaseFactory(
        user=customer(email="juma@ntzs.test"), national_id="19900101111110000123", status=status
    )

    with pytest.raises(ConflictError, match="already used by another account"):
        kyc_submit(user=customer(), national_id="1990 0101 1111 1000 0123", full_name="Amina")

    assert KycCase.objects.count() == 1


def test_a_nida_number_of_a_rejected_case_may_back_another_account():
    KycCaseFactory(
        user=customer(email="juma@ntzs.test"), national_id="19900101111110000123", rejected=True
    )

    case = kyc_submit(user=customer(), national_id=NIDA, full_name="Amina Juma")

    assert case.status == KycCase.Status.PENDING


def test_the_person_rejected_may_submit_the_same_number_again():
    amina = customer()
    KycCaseFactory(user=amina, national_id="19900101111110000123", rejected=True)

    case = kyc_submit(user=amina, national_id=NIDA, full_name="Amina Juma")

    assert case.national_id == "19900101111110000123"


def test_the_database_refuses_one_nida_number_on_two_open_cases():
    from django.db import IntegrityError, transaction

    KycCaseFactory(user=customer(email="juma@ntzs.test"), national_id="19900101111110000123")
    with pytest.raises(IntegrityError), transaction.atomic():
        KycCaseFactory(user=customer(), national_id="19900101111110000123", approved=True)


def test_kyc_page_shows_a_nida_number_of_another_account_as_an_error(client):
    KycCaseFactory(user=customer(email="juma@ntzs.test"), national_id="19900101111110000123")
    client.force_login(customer())

    response = client.post(
        reverse("accounts:kyc_submit"), {"national_id": NIDA, "full_name": "Amina Juma"}
    )

    assert response.status_code == 200
    assert "already used by another account" in response.content.decode()
    assert KycCase.objects.count() == 1


def test_kyc_page_submits_and_goes_home(client):
    amina = customer()
    client.force_login(amina)

    response = client.post(
        reverse("accounts:kyc_submit"), {"national_id": NIDA, "full_name": "Amina Juma"}
    )

    assert response.status_code == 302
    assert response.url == reverse("accounts:home")
    assert amina.kyc_cases.get().status == KycCase.Status.PENDING


def test_kyc_page_shows_a_bad_nida_number_as_a_form_error(client):
    client.force_login(customer())

    response = client.post(
        reverse("accounts:kyc_submit"), {"national_id": "12345", "full_name": "Amina Juma"}
    )

    assert response.status_code == 200
    assert "exactly 20 digits" in response.context["form"].errors["national_id"][0]
    assert not KycCase.objects.exists()


def test_kyc_page_shows_empty_fields_as_form_errors(client):
    client.force_login(customer())

    response = client.post(reverse("accounts:kyc_submit"), {"national_id": "", "full_name": ""})

    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"national_id", "full_name"}
    assert not KycCase.objects.exists()


def test_kyc_page_renders_a_script_like_name_escaped(client):
    client.force_login(customer())
    name = '<script>alert("x")</script> Juma'

    client.post(reverse("accounts:kyc_submit"), {"national_id": NIDA, "full_name": name})
    response = client.get(reverse("accounts:kyc_submit"))

    body = response.content.decode()
    assert KycCase.objects.get().full_name == name
    assert '<script>alert("x")</script>' not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Juma" in body


def test_kyc_page_shows_the_rejection_reason_and_offers_to_submit_again(client):
    amina = customer()
    KycCaseFactory(user=amina, rejected=True, review_reason="Photo unreadable.")
    client.force_login(amina)

    response = client.get(reverse("accounts:kyc_submit"))

    assert "Photo unreadable." in response.content.decode()
    assert response.context["state"].kyc_can_submit


def test_kyc_form_without_csrf_token_is_forbidden():
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer())

    response = client.post(
        reverse("accounts:kyc_submit"), {"national_id": NIDA, "full_name": "Amina Juma"}
    )

    assert response.status_code == 403
    assert not KycCase.objects.exists()


def test_the_migration_lists_duplicate_nida_numbers_instead_of_failing_silently():
    from importlib import import_module

    from django.apps import apps

    migration = import_module("accounts.migrations.0003_hardening_identity")
    # Spelled differently (older rows, short enough for the column with their dashes), so
    # the constraint alone would let both stand.
    first = KycCaseFactory(user=customer(email="juma@ntzs.test"), national_id="1990-0101-1111-1000")
    second = KycCaseFactory(user=customer(), national_id="1990010111111000", approved=True)

    with pytest.raises(RuntimeError, match="share a number") as exc:
        migration.refuse_duplicate_national_ids(apps, None)

    assert str(first.pk) in str(exc.value) and str(second.pk) in str(exc.value)
    first.refresh_from_db()
    assert first.national_id == "1990-0101-1111-1000"  # refused before any write


def test_the_migration_stores_nida_numbers_as_digits_only():
    from importlib import import_module

    from django.apps import apps

    migration = import_module("accounts.migrations.0003_hardening_identity")
    case = KycCaseFactory(user=customer(), national_id="1990 0101 1111 1000")

    migration.refuse_duplicate_national_ids(apps, None)

    case.refresh_from_db()
    assert case.national_id == "1990010111111000"
