"""factory-boy factories and the named personas of the test suite.

Personas: ``customer()`` (Amina, a person buying nTZS), ``bank_admin()`` (Baraka, at a bank),
``compliance_officer()`` (Neema, platform compliance), ``super_admin()`` (Salim). Each call
makes a new person; pass ``email=...`` to tell two of a kind apart.
"""

from __future__ import annotations

import hashlib

import factory
from django.contrib.auth.models import Group
from eth_account import Account
from eth_account.signers.local import LocalAccount

from accounts.models import KycCase, User, Wallet
from core.clock import now
from core.roles import BANK_ADMIN, PLATFORM_COMPLIANCE, SUPER_ADMIN

PASSWORD = "correct-horse-battery-staple"  # every factory user's password


def wallet_key(name: str) -> LocalAccount:
    """A deterministic key pair for ``name`` (test-only keys, derived from the name)."""
    return Account.from_key(hashlib.sha256(f"ntzs-test-wallet:{name}".encode()).digest())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@ntzs.test")
    full_name = factory.Faker("name")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for role in extracted or ():
            group, _ = Group.objects.get_or_create(name=role)
            self.groups.add(group)


class KycCaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KycCase

    user = factory.SubFactory(UserFactory)
    national_id = factory.Sequence(lambda n: f"{19900101_00000_00000 + n:020d}")
    full_name = factory.LazyAttribute(lambda case: case.user.full_name or "Amina Juma")
    status = KycCase.Status.PENDING

    class Params:
        approved = factory.Trait(
            status=KycCase.Status.APPROVED, reviewed_at=factory.LazyFunction(now)
        )
        rejected = factory.Trait(
            status=KycCase.Status.REJECTED,
            reviewed_at=factory.LazyFunction(now),
            review_reason="The name does not match the ID card.",
        )


class WalletFactory(factory.django.DjangoModelFactory):
    """A wallet; its key is ``wallet_key(key_name)`` (default: a fresh name per wallet)."""

    class Meta:
        model = Wallet
        exclude = ("key_name",)

    user = factory.SubFactory(UserFactory)
    chain = Wallet.Chain.BASE
    key_name = factory.Sequence(lambda n: f"wallet-{n}")
    address = factory.LazyAttribute(lambda w: wallet_key(w.key_name).address)

    class Params:
        verified = factory.Trait(
            verified_at=factory.LazyFunction(now),
            verification_method=Wallet.VerificationMethod.MESSAGE_SIGNATURE,
        )


def customer(**kwargs) -> User:
    kwargs.setdefault("email", "amina@ntzs.test")
    kwargs.setdefault("full_name", "Amina Juma")
    return UserFactory(**kwargs)


def bank_admin(**kwargs) -> User:
    kwargs.setdefault("email", "baraka@bank.ntzs.test")
    kwargs.setdefault("full_name", "Baraka Mushi")
    return UserFactory(roles=[BANK_ADMIN], is_staff=True, **kwargs)


def compliance_officer(**kwargs) -> User:
    kwargs.setdefault("email", "neema@ntzs.test")
    kwargs.setdefault("full_name", "Neema Kimaro")
    return UserFactory(roles=[PLATFORM_COMPLIANCE], is_staff=True, **kwargs)


def super_admin(**kwargs) -> User:
    kwargs.setdefault("email", "salim@ntzs.test")
    kwargs.setdefault("full_name", "Salim Said")
    return UserFactory(roles=[SUPER_ADMIN], is_staff=True, **kwargs)
