"""``make dev-check``: start the local stack, check it end to end, stop it, start it again
and check that the chain, the contract and the database were reused.

Checks: /healthz answers; each demo user logs in through the real login form; sign-up
answers "check your e-mail", and the confirmation link printed by the console e-mail backend
creates the account and logs in (on a later run the same address gets the "someone tried to
sign up" notice instead); a Celery task round-trips through the server-less (file-system)
broker to the worker, which writes its heartbeat; a sandbox deposit is minted and the
worker's log lines of it (payment found, Mint confirmed) reach the output in order; beat is
running. Uses its own free ports, and the project's var/ directory (or NTZS_VAR_DIR) like
`make dev` does.
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, Request, build_opener

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.envfile import env_file_read  # noqa: E402

VAR = Path(os.environ.get("NTZS_VAR_DIR", REPO / "var"))
DEMO_LOGINS = [
    ("super@ntzs.local", "Serengeti-Lion-2026"),
    ("bank@ntzs.local", "Zanzibar-Dhow-2026"),
    ("compliance@ntzs.local", "Kilimanjaro-Peak-2026"),
    ("customer@ntzs.local", "Ngorongoro-Crater-2026"),
]

SIGNUP_EMAIL = "newcomer@ntzs.local"
SIGNUP_PASSWORD = "Mikumi-Zebra-2026"


class CheckFailed(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def say(message: str) -> None:
    print(f"[dev-check] {message}", flush=True)


def start_stack(web_port: int, anvil_port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "WEB_PORT": str(web_port),
        "ANVIL_PORT": str(anvil_port),
        "NTZS_VAR_DIR": str(VAR),
        "BEAT_CHECK_MINTER_S": "3",
    }
    log = open(VAR / "dev-check.log", "a")  # closed with the process
    return subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "dev.py")],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_stack(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    opener = build_opener()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CheckFailed("the local stack exited before it became healthy")
        try:
            with opener.open(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise CheckFailed(f"{base}/healthz did not answer within {timeout} s")


def check_login(base: str, email: str, password: str) -> None:
    jar = CookieJar()
    opener = build_opener(HTTPCookieProcessor(jar))
    with opener.open(f"{base}/login/", timeout=10) as response:
        page = response.read().decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if not match:
        raise CheckFailed("the login page has no CSRF token")
    body = urlencode(
        {"csrfmiddlewaretoken": match.group(1), "username": email, "password": password}
    ).encode()
    request = Request(  # noqa: S310 - loopback http only
        f"{base}/login/",
        data=body,
        headers={"Referer": f"{base}/login/"},
    )
    with opener.open(request, timeout=10) as response:
        landed = response.geturl()
        page = response.read().decode()
    if "/login/" in landed or "Log out" not in page:
        raise CheckFailed(f"{email} could not log in (landed on {landed})")
    say(f"logged in as {email}")


def _submit_form(opener, url: str, fields: dict) -> tuple[str, str]:
    """GET the page at ``url``, POST its form with ``fields``; (landed URL, page)."""
    with opener.open(url, timeout=10) as response:
        page = response.read().decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if not match:
        raise CheckFailed(f"{url} has no form with a CSRF token")
    body = urlencode({"csrfmiddlewaretoken": match.group(1), **fields}).encode()
    request = Request(url, data=body, headers={"Referer": url})  # noqa: S310 - loopback http only
    with opener.open(request, timeout=10) as response:
        return response.geturl(), response.read().decode()


def _sign_up_mail(log: Path, offset: int) -> str | None:
    """The sign-up e-mail the console backend printed into the stack's log after ``offset``."""
    with open(log, encoding="utf-8", errors="replace") as handle:
        handle.seek(offset)
        text = handle.read()
    if SIGNUP_EMAIL in text and ("/signup/confirm/" in text or "tried to sign up" in text):
        return text
    return None


def check_signup(base: str) -> None:
    """Sign-up answers "check your e-mail"; locally the e-mail is printed by the web process
    (console backend). A new address gets a link that creates the account and logs in; an
    address that already has one (a later run) gets the notice instead."""
    log = VAR / "dev-check.log"
    offset = log.stat().st_size
    opener = build_opener(HTTPCookieProcessor(CookieJar()))
    landed, _page = _submit_form(
        opener, f"{base}/signup/", {"email": SIGNUP_EMAIL, "full_name": "Dev Check Newcomer"}
    )
    if "/signup/sent/" not in landed:
        raise CheckFailed(f"sign-up did not answer 'check your e-mail' (landed on {landed})")
    text = _wait_for(
        "the sign-up e-mail in the console output", lambda: _sign_up_mail(log, offset), timeout=30
    )
    link = re.search(r"(/signup/confirm/[^/\s]+/)", text)
    if link is None:
        say(f"sign-up of {SIGNUP_EMAIL} (already registered): same answer, notice e-mailed")
        return
    landed, page = _submit_form(
        opener,
        base + link.group(1),
        {"password": SIGNUP_PASSWORD, "password_confirm": SIGNUP_PASSWORD},
    )
    if "Log out" not in page:
        raise CheckFailed(f"the confirmation link did not create and log in {SIGNUP_EMAIL}")
    say(f"signed up {SIGNUP_EMAIL}: confirmation link from the console, password chosen, logged in")


def manage(*args: str, env: dict) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise CheckFailed(f"manage.py {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def check_worker_round_trip(env: dict) -> None:
    out = manage("ping_worker", "--timeout", "90", env=env)
    say(out.strip())


def check_beat_drives_check_minter(since: str, timeout: float = 90) -> None:
    """Beat schedules minting.tasks.check_minter (every few seconds here), the worker runs it
    against the local chain and records its heartbeat; a healthy minter opens no alert."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(VAR / "db.sqlite3") as db:
            row = db.execute(
                "SELECT last_finished FROM core_taskheartbeat WHERE task_name = ? "
                "AND last_finished > ?",
                ("minting.tasks.check_minter", since),
            ).fetchone()
            alerts = db.execute(
                "SELECT kind, detail FROM core_alert WHERE resolved_at IS NULL"
            ).fetchall()
        if row:
            if alerts:
                raise CheckFailed(f"check_minter found problems: {alerts}")
            say("beat scheduled check_minter, the worker ran it: minter healthy, no alert")
            return
        time.sleep(0.5)
    raise CheckFailed("beat did not get minting.tasks.check_minter run by the worker")


def _deposit_row(deposit_id: str):
    with sqlite3.connect(VAR / "db.sqlite3") as db:
        return db.execute(
            "SELECT status, initiation FROM deposits_depositrequest WHERE id = ?",
            (deposit_id.replace("-", ""),),
        ).fetchone()


def _wait_for(what: str, predicate, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise CheckFailed(f"timed out waiting for {what}")


def _approve_on_phone(base: str, deposit_id: str) -> None:
    jar = CookieJar()
    opener = build_opener(HTTPCookieProcessor(jar))
    with opener.open(f"{base}/sandbox/zenopay/phone/", timeout=10) as response:
        page = response.read().decode()
    if deposit_id not in page:
        raise CheckFailed("the sandbox phone does not show the USSD push")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    body = urlencode(
        {"csrfmiddlewaretoken": token, "order_id": deposit_id, "action": "approve"}
    ).encode()
    request = Request(  # noqa: S310 - loopback http only
        f"{base}/sandbox/zenopay/phone/orders/",
        data=body,
        headers={"Referer": f"{base}/sandbox/zenopay/phone/"},
    )
    with opener.open(request, timeout=10):
        pass


def _log_lines_in_order(log: Path, offset: int, patterns: list[str]) -> bool:
    """Each pattern matches a line of the stack's output after ``offset``, in this order."""
    with open(log, encoding="utf-8", errors="replace") as handle:
        handle.seek(offset)
        lines = handle.read().splitlines()
    position = 0
    for pattern in patterns:
        while position < len(lines) and not re.search(pattern, lines[position]):
            position += 1
        if position == len(lines):
            return False
        position += 1
    return True


def check_deposit_log_lines(log: Path, offset: int, deposit_id: str) -> None:
    """The worker's DESIGN §13 lines of this deposit's life reach the stack's output, in
    order: the payment found (the webhook's check, or the poller's), then the mint confirmed.
    Operators find mints and failures by these lines (issue 9: a pool process used to go
    silent after the payment check)."""
    patterns = [
        rf"(polled|checked) ZenoPay.*, found completed payment deposit={deposit_id}",
        rf"Mint confirmed deposit={deposit_id}",
    ]
    _wait_for(
        f"the worker's log lines for deposit {deposit_id} ({' then '.join(patterns)})",
        lambda: _log_lines_in_order(log, offset, patterns),
        timeout=20,
    )
    say(f"the stack's output has the payment-found and Mint confirmed lines of {deposit_id}")


def check_sandbox_deposit(base: str, env: dict, amount: int) -> None:
    """A ZenoPay deposit through the whole local stack: the worker asks the sandbox for the
    USSD push, the phone page approves it, the sandbox's webhook (a Celery task) reaches our
    endpoint, the check task confirms the payment, and the mint worker signs, sends and
    confirms the mint on the local chain: the deposit reaches minted, and the worker's log
    lines say so."""
    log = VAR / "dev-check.log"
    offset = log.stat().st_size
    out = manage("demo_deposit", "--amount", str(amount), env=env)
    deposit_id = re.search(r"deposit ([0-9a-f-]{36})", out).group(1)
    _wait_for(
        "the worker to request the payment",
        lambda: (_deposit_row(deposit_id) or (None, None))[1] == "requested",
    )
    _approve_on_phone(base, deposit_id)
    _wait_for(
        "the payment to be confirmed and minted",
        lambda: (_deposit_row(deposit_id) or ("",))[0] == "minted",
    )
    say(
        f"sandbox deposit {deposit_id}: approved on the phone, webhook, check, mint "
        "batch, receipt: minted"
    )
    check_deposit_log_lines(log, offset, deposit_id)


def check_safe_lane_deposit(base: str, env: dict, amount: int) -> None:
    """A large deposit goes to the Safe lane: approved on the phone, it waits in
    mint_requires_safe; the local Safe executes the exported call and the operator records
    the hash: minted."""
    out = manage("demo_deposit", "--amount", str(amount), env=env)
    deposit_id = re.search(r"deposit ([0-9a-f-]{36})", out).group(1)
    _wait_for(
        "the worker to request the payment",
        lambda: (_deposit_row(deposit_id) or (None, None))[1] == "requested",
    )
    _approve_on_phone(base, deposit_id)
    _wait_for(
        "the Safe lane", lambda: (_deposit_row(deposit_id) or ("",))[0] == "mint_requires_safe"
    )
    executed = manage("demo_safe_execute", deposit_id, "--actor", "compliance@ntzs.local", env=env)
    tx_hash = re.search(r"executed through the Safe: (0x[0-9a-f]{64})", executed).group(1)
    manage("safe_mint_record", deposit_id, tx_hash, "--actor", "super@ntzs.local", env=env)
    if (_deposit_row(deposit_id) or ("",))[0] != "minted":
        raise CheckFailed("the recorded Safe mint did not mark the deposit minted")
    say(f"Safe-lane deposit {deposit_id}: exported, executed by the local Safe, recorded: minted")


def snapshot() -> dict:
    local_env = env_file_read(VAR / "local.env")
    with sqlite3.connect(VAR / "db.sqlite3") as db:
        users = sorted(row[0] for row in db.execute("SELECT id FROM accounts_user"))
        # A lost chain redeployed by the same key could land at the same address again:
        # the deployment rows tell a reuse from a redeploy.
        deployments = db.execute("SELECT count(*) FROM minting_tokendeployment").fetchone()[0]
    return {
        "token": local_env.get("NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA"),
        "safe": local_env.get("SAFE_ADDRESS"),
        "users": users,
        "token_deployments": deployments,
    }


def run_once(label: str) -> dict:
    web_port, anvil_port = free_port(), free_port()
    base = f"http://127.0.0.1:{web_port}"
    say(f"{label}: starting the local stack on {base}")
    since = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    proc = start_stack(web_port, anvil_port)
    try:
        wait_healthy(base, proc)
        say("/healthz answers")
        for email, password in DEMO_LOGINS:
            check_login(base, email, password)
        check_signup(base)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "NTZS_VAR_DIR": str(VAR),
            **env_file_read(VAR / "local.env"),
        }
        check_worker_round_trip(env)
        check_sandbox_deposit(base, env, amount=5_000 if label == "first run" else 5_100)
        check_safe_lane_deposit(base, env, amount=9_000 if label == "first run" else 9_100)
        check_beat_drives_check_minter(since)
        return snapshot()
    finally:
        stop_stack(proc)
        say(f"{label}: stopped")


def main() -> int:
    VAR.mkdir(exist_ok=True)
    try:
        first = run_once("first run")
        second = run_once("second run")
    except CheckFailed as exc:
        say(f"FAILED: {exc} (log: {VAR / 'dev-check.log'})")
        return 1
    if first != second:
        say(f"FAILED: the second run did not reuse the first one's state: {first} != {second}")
        return 1
    say(f"the second run reused the contract {first['token']}, the Safe and the database")
    say("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
