"""Throwaway PostgreSQL and Redis servers for one test session.

Started on free loopback ports in a temporary directory and removed afterwards. A server
that is missing is installed from Debian packages when we are root (scripts/
install_services.sh); otherwise the session fails with a sentence. Nothing is skipped.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class ServiceStartError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(
    port: int, proc: subprocess.Popen, name: str, log: Path, timeout: float = 20.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceStartError(f"{name} exited at start-up:\n{log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceStartError(f"{name} did not listen on port {port} within {timeout} s.")


def _pg_bindir() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _ensure_installed() -> None:
    if _pg_bindir() is not None and shutil.which("redis-server"):
        return
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "install_services.sh")], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise ServiceStartError(
            "PostgreSQL or Redis is missing and could not be installed: "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )


@dataclass
class Services:
    workdir: Path
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)
    database_url: str = ""
    redis_url: str = ""

    def stop(self) -> None:
        for _name, proc in reversed(self.processes):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.processes.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _as_postgres_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _start_postgres(services: Services) -> None:
    bindir = _pg_bindir()
    data = services.workdir / "pg"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(services.workdir, "postgres")
        shutil.chown(data, "postgres")
    log = services.workdir / "postgres.log"
    init = subprocess.run(
        _as_postgres_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        capture_output=True,
        text=True,
    )
    if init.returncode != 0:
        raise ServiceStartError(f"initdb failed: {init.stderr.strip()}")
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            _as_postgres_user(
                [
                    str(bindir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(port),
                    "-k",
                    str(services.workdir),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    # A throwaway cluster: durability buys nothing here and costs seconds.
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=300",
                ]
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    services.processes.append(("postgres", proc))
    _wait_for_port(port, proc, "PostgreSQL", log)
    services.database_url = f"postgres://postgres@127.0.0.1:{port}/postgres"


def _start_redis(services: Services) -> None:
    port = free_port()
    log = services.workdir / "redis.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(services.workdir),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    services.processes.append(("redis", proc))
    _wait_for_port(port, proc, "Redis", log)
    services.redis_url = f"redis://127.0.0.1:{port}/0"


def services_start() -> Services:
    """Start both servers, export DATABASE_URL and REDIS_URL, and stop them at exit.

    An externally provided NTZS_TEST_DATABASE_URL / NTZS_TEST_REDIS_URL is used instead
    (e.g. a developer's own servers)."""
    _ensure_installed_if_needed()
    services = Services(workdir=Path(tempfile.mkdtemp(prefix="ntzs-test-services-")))
    atexit.register(services.stop)
    try:
        services.database_url = os.environ.get("NTZS_TEST_DATABASE_URL", "")
        services.redis_url = os.environ.get("NTZS_TEST_REDIS_URL", "")
        if not services.database_url:
            _start_postgres(services)
        if not services.redis_url:
            _start_redis(services)
    except Exception:
        services.stop()
        raise
    os.environ["DATABASE_URL"] = services.database_url
    os.environ["REDIS_URL"] = services.redis_url
    return services


def _ensure_installed_if_needed() -> None:
    if os.environ.get("NTZS_TEST_DATABASE_URL") and os.environ.get("NTZS_TEST_REDIS_URL"):
        return
    _ensure_installed()
