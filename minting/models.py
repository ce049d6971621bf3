from django.db import models

from core.clock import now


class TokenDeployment(models.Model):
    """A deployment of the NTZS contract by ``deploy_ntzs``.

    The deploy block's hash is what proves a backup RPC serves the same chain (DESIGN §7.6):
    the same chain id does not.
    """

    chain_id = models.BigIntegerField()
    contract_address = models.CharField(max_length=42)  # EIP-55
    deploy_block = models.BigIntegerField()
    deploy_block_hash = models.CharField(max_length=66)  # 0x + 32 bytes hex
    tx_hash = models.CharField(max_length=66)
    deployer_address = models.CharField(max_length=42)
    deployed_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-deployed_at"]
        constraints = [
            models.UniqueConstraint(fields=["chain_id", "contract_address"],
                                    name="token_deployment_unique_address"),
        ]

    def __str__(self) -> str:
        return f"NTZS {self.contract_address} on {self.chain_id} @ {self.deploy_block}"
