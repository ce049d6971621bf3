"""Forms of the sandbox phone page."""

from __future__ import annotations

from django import forms


class OrderActionForm(forms.Form):
    APPROVE = "approve"
    DECLINE = "decline"
    APPROVE_DROP_WEBHOOK = "approve_drop_webhook"
    APPROVE_OTHER_AMOUNT = "approve_other_amount"

    order_id = forms.CharField(max_length=128)
    action = forms.ChoiceField(
        choices=[
            (APPROVE, "Approve"),
            (DECLINE, "Decline"),
            (APPROVE_DROP_WEBHOOK, "Approve, drop the webhook"),
            (APPROVE_OTHER_AMOUNT, "Approve another amount"),
        ]
    )
    amount_tzs = forms.IntegerField(min_value=1, required=False, label="Amount (TZS)")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("action") == self.APPROVE_OTHER_AMOUNT and not cleaned.get("amount_tzs"):
            self.add_error("amount_tzs", "Enter the amount the customer pays instead.")
        return cleaned


class KnobsForm(forms.Form):
    empty_data_polls = forms.IntegerField(
        min_value=0, label="Empty data for the next N status answers"
    )
    not_found_polls = forms.IntegerField(
        min_value=0, label="\u201cOrder not found\u201d for the next N status answers"
    )
    server_error_polls = forms.IntegerField(
        min_value=0, label="HTTP 500 for the next N status answers"
    )
    create_times_out = forms.BooleanField(
        required=False, label="Creates record the order, then time out"
    )
    reuse_transid = forms.CharField(
        max_length=64, required=False, label="Next approval reuses this transid"
    )
    webhook_with_api_key = forms.BooleanField(
        required=False, label="Send the x-api-key header with webhooks"
    )
    webhook_on_failure = forms.BooleanField(
        required=False, label="Send webhooks for declined (FAILED) orders too"
    )
    webhook_with_payment_fields = forms.BooleanField(
        required=False, label="Put transid, channel and amount in webhooks"
    )
