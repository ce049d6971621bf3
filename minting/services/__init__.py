"""Writes of the minting app, one module per topic, importing one way only
(docs/architecture.md, "minting"):

- ``runner`` (tasks, commands) and ``lanes`` (lane changes, refunds) at the top;
- ``pipeline`` (steps 0–2: preflight, candidates, cap marking, one-transaction batches),
  ``confirm`` (steps 3, 4, 8 in named steps), ``safe`` (the Safe lane), ``operator``
  (retry, cap override, the sending switch, status);
- ``recording`` (a landed mint recorded, the failure proof, the idempotency resolution) and
  ``deploy`` (deploy_ntzs, check_minter);
- ``sending`` (bytes to the node, typed outcomes, fees), ``ledger`` (nonce and issuance
  ledgers), ``deposit_refs`` (which method a new mint uses; how a signed one is read back).
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
