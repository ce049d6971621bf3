"""Has this payment reference already been handled? (DESIGN §5.1, invariant 7.)

One PSP reference credits one deposit, and a payment that became an ``OrphanPayment`` —
moved to a new deposit, attached, dismissed or refunded — is handled once. The automatic path
(``payments``), manual confirmation (``operator``) and bank approvals (``bank``) all ask here,
so the rule is written once; this module depends on the models only, so the arrows run one
way.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from deposits.models import DepositRequest, OrphanPayment

Provider = DepositRequest.Provider


def reference_orphan(*, provider: str, reference: str) -> OrphanPayment | None:
    """The orphan payment recorded under this reference, whatever its status."""
    if not reference:
        return None
    return OrphanPayment.objects.filter(provider=provider, psp_reference=reference).first()


def reference_confirmed_deposit(
    *, provider: str, reference: str, bank_id=None, exclude_deposit_id=None
) -> DepositRequest | None:
    """Another deposit this reference already confirmed (per provider; per bank for bank
    transfers, as the database constraints say)."""
    if not reference:
        return None
    deposits = DepositRequest.objects.filter(payment_provider=provider, psp_reference=reference)
    if provider == Provider.BANK_TRANSFER:
        deposits = deposits.filter(bank_id=bank_id)
    if exclude_deposit_id is not None:
        deposits = deposits.exclude(pk=exclude_deposit_id)
    return deposits.first()


def orphan_refusal_reason(orphan: OrphanPayment) -> str:
    """Why an orphaned payment cannot credit a deposit, in words for an operator."""
    if orphan.status == OrphanPayment.Status.MATCHED:
        return _("it was already attached to deposit %(id)s") % {"id": orphan.matched_deposit_id}
    if orphan.status == OrphanPayment.Status.DISMISSED:
        return _("it was dismissed or refunded (%(reason)s)") % {"reason": orphan.reason}
    return _("it is an unmatched orphan payment: attach it with orphan_attach (two people) instead")
