"""The fault suite's own PostgreSQL and Redis (tests/support/faults.py), started once for the
package and never shared with the rest of the suite; each scenario gets a fresh database copy,
a flushed Redis, a fresh NTZS deployment inside an EVM snapshot (``chain``) and its own
processes."""

from __future__ import annotations

import shutil

import pytest

from tests.support.faults import REPO, FaultStack, fault_servers_start, fault_stack_start


@pytest.fixture(scope="package")
def fault_servers():
    servers = fault_servers_start()
    yield servers
    servers.stop()


@pytest.fixture
def fault_stack(fault_servers, anvil_node, chain, request):
    """Stand-in and gunicorn up; the scenario starts worker and beat. ``fault_env`` (a
    parametrize or an indirect value) adds environment for every process."""
    env = getattr(request, "param", None) or {}
    # Logs under var/faults/<test>/ (kept after the run, replaced by the next one): the
    # processes' output is what explains a failed round.
    logs = REPO / "var" / "faults" / request.node.name.split("[")[0]
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    stack: FaultStack = fault_stack_start(fault_servers, anvil_node, logs, env=env)
    yield stack
    stack.close()
