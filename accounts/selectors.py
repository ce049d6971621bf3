"""Reads of the accounts app. Other apps ask these, never the models directly, whether a
person may deposit (KYC approved) and where nTZS may go (verified wallets)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import KycCase, User, Wallet, WalletChallenge
from core.clock import now
from core.exceptions import NotFound

# A challenge shown again must leave the person time to sign it.
WALLET_CHALLENGE_MIN_REMAINING = dt.timedelta(minutes=2)


def user_get_by_email(*, email: str) -> User:
    """The active user with this email (any case); NotFound otherwise."""
    user = User.objects.filter(email=(email or "").strip().lower(), is_active=True).first()
    if user is None:
        raise NotFound(_("There is no active user with the email %(email)s.") % {"email": email})
    return user


def user_kyc_approved(user: User) -> bool:
    """A person may deposit once any of their KYC cases has been approved."""
    return KycCase.objects.filter(user=user, status=KycCase.Status.APPROVED).exists()


def user_kyc_latest(user: User) -> KycCase | None:
    return KycCase.objects.filter(user=user).order_by("-submitted_at").first()


def user_wallets(user: User) -> QuerySet[Wallet]:
    """The person's wallets: verified ones and registrations that may still be verified
    (closed and lapsed registrations are gone from their view)."""
    return Wallet.objects.live(now()).filter(user=user).order_by("-created_at")


def user_verified_wallets(user: User) -> QuerySet[Wallet]:
    """The wallets nTZS may be minted to for this person."""
    return Wallet.objects.verified().filter(user=user).order_by("-created_at")


def user_wallet_get(*, user: User, wallet_id: uuid.UUID | str) -> Wallet:
    """One of the person's own wallets, verified or still open; another person's wallet, or a
    registration that was closed or lapsed, is NotFound like a missing one."""
    try:
        pk = wallet_id if isinstance(wallet_id, uuid.UUID) else uuid.UUID(str(wallet_id))
    except ValueError:
        raise NotFound(_("There is no such wallet in your account.")) from None
    wallet = Wallet.objects.live(now()).filter(pk=pk, user=user).first()
    if wallet is None:
        raise NotFound(_("There is no such wallet in your account."))
    return wallet


def wallet_challenge_open(*, wallet: Wallet) -> WalletChallenge | None:
    """The newest unused challenge of ``wallet`` with time left to sign it, if any, so that
    reloading the page shows the same message instead of issuing a new one."""
    return (
        WalletChallenge.objects.filter(
            wallet=wallet,
            used_at__isnull=True,
            expires_at__gt=now() + WALLET_CHALLENGE_MIN_REMAINING,
        )
        .order_by("-created_at")
        .first()
    )


@dataclass(frozen=True)
class OnboardingState:
    kyc_status: str  # "none" or a KycCase.Status value (of the latest case)
    kyc_latest: KycCase | None
    kyc_approved: bool
    wallets: list[Wallet]
    verified_wallets: list[Wallet]

    @property
    def kyc_can_submit(self) -> bool:
        return not self.kyc_approved and self.kyc_status != KycCase.Status.PENDING

    @property
    def has_wallet(self) -> bool:
        return bool(self.wallets)

    @property
    def has_verified_wallet(self) -> bool:
        return bool(self.verified_wallets)

    @property
    def unverified_wallets(self) -> list[Wallet]:
        return [w for w in self.wallets if not w.is_verified]

    @property
    def ready_to_deposit(self) -> bool:
        return self.kyc_approved and self.has_verified_wallet


def user_onboarding_state(user: User) -> OnboardingState:
    """What a customer has done and what is missing before they can deposit."""
    latest = user_kyc_latest(user)
    approved = user_kyc_approved(user)
    wallets = list(user_wallets(user))
    if approved:
        status = KycCase.Status.APPROVED
    elif latest is None:
        status = "none"
    else:
        status = latest.status
    return OnboardingState(
        kyc_status=status,
        kyc_latest=latest,
        kyc_approved=approved,
        wallets=wallets,
        verified_wallets=[w for w in wallets if w.is_verified],
    )
