import datetime as dt
import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, PermissionsMixin, UserManager
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.clock import now


class EmailUserManager(UserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person: customer or staff (staff roles are the groups in core.roles)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True, verbose_name=_("email address"))
    full_name = models.CharField(max_length=200, blank=True, verbose_name=_("full name"))
    # E.164, e.g. +255712345678
    phone = models.CharField(max_length=16, blank=True, verbose_name=_("phone"))
    is_staff = models.BooleanField(default=False, verbose_name=_("staff status"))
    is_active = models.BooleanField(default=True, verbose_name=_("active"))
    date_joined = models.DateTimeField(default=now, verbose_name=_("date joined"))

    objects = EmailUserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.email


class KycCase(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="kyc_cases",
        verbose_name=_("user"),
    )
    # NIDA number, 20 digits
    national_id = models.CharField(max_length=20, verbose_name=_("national ID (NIDA)"))
    full_name = models.CharField(max_length=200, verbose_name=_("full name"))
    status = models.CharField(
        max_length=16, choices=Status, default=Status.PENDING, verbose_name=_("status")
    )
    submitted_at = models.DateTimeField(default=now, verbose_name=_("submitted at"))
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="kyc_reviews",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("reviewed at"))
    review_reason = models.TextField(blank=True, verbose_name=_("review reason"))

    class Meta:
        verbose_name = _("KYC case")
        verbose_name_plural = _("KYC cases")
        ordering = ["-submitted_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "approved", "rejected"]),
                name="kyc_status_valid",
            ),
            # One open case per person: a second submission waits for the first review.
            models.UniqueConstraint(
                fields=["user"], condition=Q(status="pending"), name="kyc_one_pending_per_user"
            ),
            # One national ID backs one account (DESIGN §4): among pending and approved cases
            # a NIDA number (stored as its 20 digits) appears once. A person has at most one
            # such case (one pending; none submitted once approved), so resubmitting after a
            # rejection with the same number stays possible.
            models.UniqueConstraint(
                fields=["national_id"],
                condition=Q(status__in=["pending", "approved"]),
                name="kyc_national_id_one_account",
            ),
        ]

    def __str__(self) -> str:
        return f"KYC {self.full_name} ({self.status})"


# An unverified registration blocks nobody and lapses after this long (DESIGN §4): treated
# as closed when read, not counted against the per-user allowance.
WALLET_UNVERIFIED_TTL = dt.timedelta(hours=24)
MAX_OPEN_UNVERIFIED_WALLETS = 3


class WalletQuerySet(models.QuerySet):
    def verified(self):
        return self.filter(verified_at__isnull=False)

    def open_unverified(self, at: dt.datetime):
        """Registrations that may still be verified: not verified, not closed, not expired."""
        return self.filter(
            verified_at__isnull=True,
            closed_at__isnull=True,
            created_at__gt=at - WALLET_UNVERIFIED_TTL,
        )

    def live(self, at: dt.datetime):
        """What a person holds: verified wallets and open registrations."""
        return self.filter(
            Q(verified_at__isnull=False)
            | Q(closed_at__isnull=True, created_at__gt=at - WALLET_UNVERIFIED_TTL)
        )


class Wallet(models.Model):
    class Chain(models.TextChoices):
        BASE = "base"

    class VerificationMethod(models.TextChoices):
        MESSAGE_SIGNATURE = "message_signature"
        MANUAL = "manual"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="wallets",
        verbose_name=_("user"),
    )
    chain = models.CharField(
        max_length=16, choices=Chain, default=Chain.BASE, verbose_name=_("chain")
    )
    address = models.CharField(max_length=42, verbose_name=_("address"))  # EIP-55 checksummed
    created_at = models.DateTimeField(default=now, verbose_name=_("created at"))
    verified_at = models.DateTimeField(null=True, blank=True, verbose_name=_("verified at"))
    verification_method = models.CharField(
        max_length=32, choices=VerificationMethod, blank=True, verbose_name=_("verification method")
    )
    # Set once on an unverified registration that can no longer be verified: another account
    # verified the address first, or the person registered it again after it expired.
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("closed at"))
    closed_reason = models.CharField(max_length=100, blank=True, verbose_name=_("reason closed"))

    objects = WalletQuerySet.as_manager()

    class Meta:
        verbose_name = _("wallet")
        verbose_name_plural = _("wallets")
        ordering = ["-created_at"]
        constraints = [
            # An address belongs to the account that proved it first; unverified
            # registrations of it block nobody (wallet squatting).
            models.UniqueConstraint(
                fields=["chain", "address"],
                condition=Q(verified_at__isnull=False),
                name="wallet_verified_unique_per_chain",
            ),
            # A person has one registration of an address that is not closed.
            models.UniqueConstraint(
                fields=["user", "chain", "address"],
                condition=Q(closed_at__isnull=True),
                name="wallet_one_live_registration_per_user",
            ),
            models.CheckConstraint(
                condition=Q(closed_at__isnull=True) | Q(verified_at__isnull=True),
                name="wallet_closed_only_unverified",
            ),
        ]
        indexes = [
            # Every registration of one address: closing the losers when one is verified.
            models.Index(fields=["chain", "address"], name="wallet_chain_address_idx"),
        ]

    def __str__(self) -> str:
        return self.address

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None

    def is_expired(self, at: dt.datetime) -> bool:
        return (
            self.verified_at is None
            and self.closed_at is None
            and self.created_at <= at - WALLET_UNVERIFIED_TTL
        )

    def is_open(self, at: dt.datetime) -> bool:
        return self.verified_at is None and self.closed_at is None and not self.is_expired(at)


class WalletChallenge(models.Model):
    """A one-time ownership challenge: the message binds user, address, CHAIN_ID, nonce and
    expiry; ``used_at`` is set once by compare-and-set, so a message works only once."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    wallet = models.ForeignKey(
        Wallet, on_delete=models.CASCADE, related_name="challenges", verbose_name=_("wallet")
    )
    nonce = models.CharField(max_length=64, unique=True, verbose_name=_("nonce"))
    message = models.TextField(verbose_name=_("message"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))
    used_at = models.DateTimeField(null=True, blank=True, verbose_name=_("used at"))
    created_at = models.DateTimeField(default=now, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("wallet challenge")
        verbose_name_plural = _("wallet challenges")

    def __str__(self) -> str:
        return f"challenge {self.nonce[:8]} for {self.wallet_id}"
