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
