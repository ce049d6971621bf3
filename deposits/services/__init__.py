"""Writes of the deposits app, one module per topic:

- ``transitions``: the state machine (DESIGN §5), one compare-and-set function per edge;
- ``intake``: creating a deposit (limits, idempotency, rate limit);
- ``payments``: ZenoPay initiation, order-status checks, webhook hints, polling, expiry;
- ``bank``: bank-transfer approvals;
- ``operator``: holds, cancels, orphans, refunds, manual confirmation (four eyes).
"""
