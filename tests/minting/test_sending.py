"""What a node's answer to a send means (DESIGN §7.4), as a typed outcome: accepted,
benign, no funds, or refused — and a refusal as underpriced, incurable or other."""

from __future__ import annotations

import pytest

from minting.services.sending import Refusal, SendOutcome, Sent, send_outcome_of


@pytest.mark.parametrize(
    ("message", "sent", "refusal"),
    [
        ("already known", Sent.BENIGN, None),
        ("nonce too low: next nonce 5, tx nonce 4", Sent.BENIGN, None),
        ("insufficient funds for gas * price + value", Sent.NO_FUNDS, None),
        ("replacement transaction underpriced", Sent.REFUSED, Refusal.UNDERPRICED),
        ("max fee per gas less than block base fee", Sent.REFUSED, Refusal.UNDERPRICED),
        ("intrinsic gas too low", Sent.REFUSED, Refusal.INCURABLE),
        ("txpool is full", Sent.BACK_OFF, None),
        ("sender is over rate limit", Sent.BACK_OFF, None),
        ("nonce too high", Sent.BACK_OFF, None),
        ("execution reverted", Sent.REFUSED, Refusal.OTHER),
    ],
)
def test_a_node_answer_is_one_typed_outcome(message, sent, refusal):
    outcome = send_outcome_of(message)
    assert (outcome.sent, outcome.refusal) == (sent, refusal)
    assert outcome.accepted is (sent is Sent.BENIGN)


def test_a_refusal_keeps_the_nodes_words_whole():
    message = "error: intrinsic gas too low: have 1, want 21000"
    outcome = send_outcome_of(message)
    assert outcome.message == message  # nothing sliced off
    assert SendOutcome(Sent.SENT).accepted and SendOutcome(Sent.SENT).refusal is None
