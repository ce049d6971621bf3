"""The local stack (``make dev``): anvil, NTZS and a Safe, SQLite, demo users, and web +
Celery worker + beat against the ZenoPay sandbox and the file-system broker.

A second run reuses what exists: the chain state (anvil --state under var/), the contract
and Safe addresses (var/local.env) and the database (var/db.sqlite3). Ctrl-C stops
everything this script started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.envfile import env_file_read, env_file_update  # noqa: E402
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS  # noqa: E402

VAR = Path(os.environ.get("NTZS_VAR_DIR", REPO / "var"))
LOCAL_ENV = VAR / "local.env"
PYTHON = sys.executable
ANVIL = os.environ.get("ANVIL_BIN", str(REPO / "node_modules" / ".bin" / "anvil"))
WEB_PORT = int(os.environ.get("WEB_PORT", "8000"))
ANVIL_PORT = int(os.environ.get("ANVIL_PORT", "8545"))
RPC_URL = f"http://127.0.0.1:{ANVIL_PORT}"

# Roles of the anvil dev accounts in the local stack (public keys of a public mnemonic).
DEPLOYER, MINTER, SAFE_OWNER, OPERATOR = 0, 1, 2, 3

children: list[subprocess.Popen] = []


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def rpc(method: str, params: list | None = None):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    request = urllib.request.Request(RPC_URL, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - loopback only
        return json.load(response).get("result")


def start(name: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
    say(f"starting {name}")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env)
    children.append(proc)
    return proc


def stop_all(*_args) -> None:
    for proc in reversed(children):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in reversed(children):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    say("stopped")
    sys.exit(0)


def manage(*args: str, env: dict | None = None, capture: bool = False) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=REPO,
        env=env or stack_env(),
        capture_output=capture,
        text=True,
    )
    if result.returncode != 0:
        if capture:
            sys.stderr.write(result.stdout + result.stderr)
        say(f"manage.py {' '.join(args)} failed; stopping")
        stop_all()
    return result.stdout if capture else ""


def stack_env() -> dict:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    env.update(env_file_read(LOCAL_ENV))
    env["NTZS_VAR_DIR"] = str(VAR)
    # Output sent to a file or a pipe is block-buffered otherwise: print()ed lines (the
    # console e-mails, Celery's banner) would reach it late or, on a kill, never.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_anvil() -> None:
    try:
        rpc("eth_chainId")
        say(f"something already answers on {RPC_URL}; stop it or set ANVIL_PORT")
        sys.exit(1)
    except OSError:
        pass
    state = VAR / "anvil-state.json"
    # --state loads the chain at start and dumps it at exit; --state-interval also dumps it
    # every few seconds so a killed stack loses at most that much.
    start(
        "anvil",
        [
            ANVIL,
            "--port",
            str(ANVIL_PORT),
            "--chain-id",
            "31337",
            "--state",
            str(state),
            "--state-interval",
            "5",
            "--silent",
        ],
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if rpc("eth_chainId"):
                return
        except OSError:
            time.sleep(0.1)
    say("anvil did not start")
    stop_all()


def has_code(address: str) -> bool:
    return bool(address) and rpc("eth_getCode", [address, "latest"]) not in (None, "0x")


def write_static_env() -> None:
    env_file_update(
        LOCAL_ENV,
        {
            "CHAIN_ID": "31337",
            "BASE_SEPOLIA_RPC_URL": RPC_URL,
            "APP_URL": f"http://127.0.0.1:{WEB_PORT}",
            "DEPLOYER_PRIVATE_KEY": DEV_PRIVATE_KEYS[DEPLOYER],
            "MINTER_PRIVATE_KEY": DEV_PRIVATE_KEYS[MINTER],
            "OPERATOR_PRIVATE_KEY": DEV_PRIVATE_KEYS[OPERATOR],
            "SAFE_OWNER_PRIVATE_KEY": DEV_PRIVATE_KEYS[SAFE_OWNER],
        },
    )


def ensure_safe() -> str:
    current = env_file_read(LOCAL_ENV).get("SAFE_ADDRESS", "")
    if has_code(current):
        say(f"reusing Safe {current}")
        return current
    from minting.safe_local import safe_deploy_local

    deployed = safe_deploy_local(RPC_URL, DEV_PRIVATE_KEYS[DEPLOYER], DEV_ADDRESSES[SAFE_OWNER])
    env_file_update(LOCAL_ENV, {"SAFE_ADDRESS": deployed["safe_address"]})
    say(f"deployed Safe {deployed['version']} at {deployed['safe_address']}")
    return deployed["safe_address"]


def ensure_token() -> str:
    current = env_file_read(LOCAL_ENV).get("NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA", "")
    if has_code(current):
        say(f"reusing NTZS {current}")
        return current
    manage("deploy_ntzs", "--write-env", str(LOCAL_ENV))
    return env_file_read(LOCAL_ENV)["NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA"]


def wait_for_web() -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{WEB_PORT}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    say("the web process did not answer /healthz within 60 s")


def main() -> None:
    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)
    VAR.mkdir(exist_ok=True)
    start_anvil()
    write_static_env()
    manage("migrate", "--no-input", "-v", "0")
    manage("createcachetable")
    safe = ensure_safe()
    token = ensure_token()
    demo = manage("demo_users", capture=True)
    env = stack_env()
    start("web", [PYTHON, "manage.py", "runserver", f"127.0.0.1:{WEB_PORT}", "--noreload"], env)
    start(
        "worker",
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "default,mint",
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
        ],
        env,
    )
    start(
        "beat",
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(VAR / "celerybeat-schedule"),
        ],
        env,
    )
    wait_for_web()
    print(
        "\n"
        f"  nTZS back office:   http://127.0.0.1:{WEB_PORT}/\n"
        f"  Backstage (admin):  http://127.0.0.1:{WEB_PORT}/backstage/\n"
        f"  local chain (RPC):  {RPC_URL}  (chain id 31337)\n"
        f"  NTZS token:         {token}\n"
        f"  Safe (1-of-1):      {safe}\n"
        f"  Safe owner key:     {DEV_PRIVATE_KEYS[SAFE_OWNER]}  (anvil dev key, public)\n"
        f"{demo}"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )
    while True:
        for proc in children:
            if proc.poll() is not None:
                say(f"a process exited ({' '.join(map(str, proc.args[:3]))}); stopping")
                stop_all()
        time.sleep(1)


if __name__ == "__main__":
    main()
