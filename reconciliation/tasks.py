"""Thin Celery adapters over reconciliation services. ``index_chain`` is safe to run twice at
once: each stream's cursor moves by compare-and-set with the rows it covers, and the rows are
unique (the second run writes nothing and stops)."""

from celery import shared_task

from reconciliation.services.alerts import alerts_evaluate
from reconciliation.services.matching import index_chain_run
from reconciliation.services.snapshots import supply_snapshot_take


@shared_task(name="reconciliation.tasks.index_chain", periodic=True)
def index_chain() -> dict:
    return index_chain_run()


@shared_task(name="reconciliation.tasks.snapshot_supply", periodic=True)
def snapshot_supply() -> dict:
    snapshot = supply_snapshot_take()
    return {
        "block": snapshot.block_number,
        "discrepancy_units": None
        if snapshot.discrepancy_units is None
        else str(snapshot.discrepancy_units),
    }


@shared_task(name="reconciliation.tasks.alerts_check", periodic=True)
def alerts_check() -> dict:
    return alerts_evaluate()
