"""Writes of the minting app, one module per topic:

- ``deploy``: deploy_ntzs and check_minter;
- ``ledger``: the signer's nonce ledger, the daily issuance ledger and the cap;
- ``pipeline``: preflight, candidates, one-transaction batches, sending (DESIGN §7.0–7.2);
- ``confirm``: receipts, idempotency resolution, failure proof, recovery (§7.3–7.5, 7.8);
- ``operator``: retry, cap override, the sending switch.
"""

from minting.services.deploy import (  # noqa: F401 - the public names of the first modules
    ALERT_KINDS,
    DeployPlan,
    DeployRefused,
    MinterCheck,
    minter_check,
    minter_read,
    ntzs_deploy,
)
