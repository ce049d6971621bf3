"""``make prod-check``: the production profile, end to end, with real processes.

Starts throwaway PostgreSQL and Redis and an anvil node with the test tooling (tests/support),
deploys a 1-of-1 Safe and the NTZS token (``deploy_ntzs``), migrates and collects static
files, all under ``DJANGO_SETTINGS_MODULE=config.settings.production`` (DEBUG off, every
required variable set to the local services). Then runs the Procfile's three commands as
separate processes — gunicorn with gunicorn.conf.py, a Celery worker on ``default`` and
``mint``, beat — and a ZenoPay stand-in (scripts/zenopay_standin.py) at ``ZENOPAY_BASE_URL``.

The chain is anvil with ``CHAIN_ID`` 31337 and 1-second blocks: the production profile
accepts any chain id (it refuses only the ZenoPay sandbox there, and Base's public endpoints
on mainnet), so nothing is pretended; ``MINT_CONFIRMATIONS`` is then 1.

The check talks to gunicorn as the TLS-terminating proxy in front would: ``Host`` is
APP_URL's host, ``X-Forwarded-Proto: https`` and ``X-Forwarded-For`` the client's address
(``TRUSTED_PROXY_HOPS=1``); cookies are kept by hand, since they are ``Secure`` and the last
hop is plain HTTP. The stand-in delivers ZenoPay's webhook the same way.

Steps (each printed): the production answers (HTTPS redirect, secure cookies, HSTS, no debug
page, static files from the manifest); a customer signs up through the pages (the e-mail is
read from gunicorn's output: console e-mail backend), submits KYC, a staff member approves it
with ``kyc_review``, the customer registers and verifies a wallet by signature and gets an API
token (``drf_create_token``); a deposit through the API, approved at the stand-in, webhook,
minted on chain (balanceOf); a second batch during which the worker is stopped (SIGTERM) and
killed (SIGKILL) and restarted; then one DepositMinted and one mint Transfer per deposit and
totalSupply equal to the books. Exits 1 with a sentence on the first failure; every process
it started is stopped. Logs: var/prod-check/.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from http.cookies import SimpleCookie
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core.money import tzs_to_units, units_to_tzs  # noqa: E402
from tests.support.anvil import DEV_ADDRESSES, DEV_PRIVATE_KEYS, AnvilNode  # noqa: E402
from tests.support.services import free_port, services_start  # noqa: E402

HOST = "ntzs.prod-check.example"
APP_URL = f"https://{HOST}"
LOG_DIR = Path(os.environ.get("PROD_CHECK_LOG_DIR", REPO / "var" / "prod-check"))
VENV_BIN = Path(sys.executable).parent
DEPLOYER, MINTER, SAFE_OWNER = 0, 1, 2
STAFF = ("ops-a@prod-check.example", "ops-b@prod-check.example")
CUSTOMER_EMAIL = "amina@prod-check.example"
CUSTOMER_PASSWORD = "Tanganyika-Lake-2026"
CUSTOMER_PHONE = "0754123456"
BATCH_AMOUNTS = (2_100, 2_200, 2_300, 2_400, 2_500, 2_600)


class CheckFailed(Exception):
    pass


_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"[prod-check {time.monotonic() - _STARTED:5.0f} s] {message}", flush=True)


def wait_for(what: str, predicate, timeout: float = 90, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise CheckFailed(f"timed out after {timeout:g} s waiting for {what}")


def procfile() -> dict[str, list[str]]:
    """The Procfile's commands, as argv lists (the production processes, verbatim)."""
    commands = {}
    for line in (REPO / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            commands[name.strip()] = shlex.split(command)
    missing = {"web", "worker", "beat"} - commands.keys()
    if missing:
        raise CheckFailed(f"the Procfile has no {', '.join(sorted(missing))} process")
    return commands


class Proxy:
    """An HTTP client that reaches gunicorn the way the TLS proxy in front does. Cookies are
    kept by hand: they are Secure, and a cookie jar would not send them over the plain hop.
    Redirects are not followed: each step checks where it is sent."""

    def __init__(self, base: str, *, client_ip: str, token: str = ""):
        self.base = base
        self.client_ip = client_ip
        self.token = token
        self.cookies: dict[str, str] = {}
        self.set_cookie_headers: list[str] = []
        self.http = requests.Session()

    def headers(self, extra: dict | None = None, *, https: bool = True) -> dict:
        headers = {"Host": HOST, "X-Forwarded-For": self.client_ip}
        if https:
            headers["X-Forwarded-Proto"] = "https"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        return {**headers, **(extra or {})}

    def request(
        self,
        method: str,
        path: str,
        *,
        https: bool = True,
        headers: dict | None = None,
        **kwargs,
    ) -> requests.Response:
        extra = dict(headers or {})
        if method == "POST" and not self.token:
            extra.setdefault("Origin", APP_URL)
            extra.setdefault("Referer", APP_URL + path)
        response = self.http.request(
            method,
            self.base + path,
            headers=self.headers(extra, https=https),
            allow_redirects=False,
            timeout=60,
            **kwargs,
        )
        for header in response.raw.headers.getlist("Set-Cookie"):
            self.set_cookie_headers.append(header)
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    @staticmethod
    def local(location: str) -> str:
        return location[len(APP_URL) :] if location.startswith(APP_URL) else location

    def form(self, path: str, fields: dict) -> requests.Response:
        """GET the page, POST its form with ``fields`` (and its CSRF token); not followed."""
        page = self.request("GET", path)
        if page.status_code != 200:
            raise CheckFailed(f"GET {path} answered {page.status_code}")
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if not match:
            raise CheckFailed(f"{path} has no form with a CSRF token")
        return self.request("POST", path, data={"csrfmiddlewaretoken": match.group(1), **fields})


class ProdStack:
    """PostgreSQL, Redis, anvil, the token, the stand-in, and the Procfile's processes."""

    def __init__(self, *, extra_env: dict | None = None, log_dir: Path = LOG_DIR):
        self.extra_env = extra_env or {}
        self.log_dir = log_dir
        self.workdir = Path(tempfile.mkdtemp(prefix="ntzs-prod-check-"))
        self.procs: dict[str, subprocess.Popen] = {}
        self.services = None
        self.anvil = None
        self.env: dict[str, str] = {}

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        shutil.rmtree(self.log_dir, ignore_errors=True)
        self.log_dir.mkdir(parents=True)
        started = time.monotonic()
        self.services = services_start()
        self.anvil = AnvilNode(block_time=1)
        say(
            f"PostgreSQL, Redis and anvil (chain id 31337, 1-second blocks) up in "
            f"{time.monotonic() - started:.0f} s"
        )
        self.web_port, self.standin_port = free_port(), free_port()
        self.api_key = secrets.token_urlsafe(24)
        self.env = self._production_env()
        self.manage("migrate", "--no-input", "-v", "0")
        say("migrated (production profile)")
        from minting.safe_local import safe_deploy_local

        safe = safe_deploy_local(
            self.anvil.url, DEV_PRIVATE_KEYS[DEPLOYER], DEV_ADDRESSES[SAFE_OWNER]
        )
        self.env["SAFE_ADDRESS"] = safe["safe_address"]
        env_file = self.workdir / "token.env"
        out = self.manage(
            "deploy_ntzs",
            "--write-env",
            str(env_file),
            env={**self.env, "DEPLOYER_PRIVATE_KEY": DEV_PRIVATE_KEYS[DEPLOYER]},
        )
        for line in env_file.read_text().splitlines():
            name, _, value = line.partition("=")
            if name.strip() in ("NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA", "NTZS_DEPLOY_BLOCK"):
                self.env[name.strip()] = value.strip().strip('"')
        self.token_address = self.env["NTZS_CONTRACT_ADDRESS_BASE_SEPOLIA"]
        self.deploy_block = int(self.env["NTZS_DEPLOY_BLOCK"])
        say(f"Safe {safe['safe_address']} deployed; deploy_ntzs: {out.splitlines()[0]}")
        self.manage("collectstatic", "--no-input", "-v", "0")
        say("static files collected (whitenoise manifest storage)")
        self.start_standin()
        for name in ("web", "worker", "beat"):
            self.start_process(name)
        self.wait_web()
        say(f"stack ready in {time.monotonic() - started:.0f} s")

    def _production_env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "NTZS_", "ZENOPAY_", "MINT", "DEPLOYER_"))
        }
        env.update(
            {
                "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",
                "DJANGO_SETTINGS_MODULE": "config.settings.production",
                "SECRET_KEY": secrets.token_urlsafe(50),
                "DATABASE_URL": self.services.database_url,
                "REDIS_URL": self.services.redis_url,
                "CHAIN_ID": "31337",
                "BASE_SEPOLIA_RPC_URL": self.anvil.url,
                "MINTER_PRIVATE_KEY": DEV_PRIVATE_KEYS[MINTER],
                "NTZS_MINT_WITH_REF": "true",
                "ZENOPAY_API_KEY": self.api_key,
                "ZENOPAY_BASE_URL": f"http://127.0.0.1:{self.standin_port}/api",
                "ZENOPAY_WEBHOOK_REQUIRE_KEY": "true",
                "APP_URL": APP_URL,
                "ALLOWED_HOSTS": HOST,
                "TRUSTED_PROXY_HOPS": "1",
                "GUNICORN_BIND": f"127.0.0.1:{self.web_port}",
                "LOG_FORMAT": "json",
                # A killed worker's claimed mint jobs are swept after this lease (default
                # 120 s); shorter so the restart scenario fits CI's time.
                "MINT_CLAIM_LEASE_S": "30",
                "NTZS_VAR_DIR": str(self.workdir / "var"),
            }
        )
        env.update(self.extra_env)
        return env

    def stop(self) -> None:
        for proc in self.procs.values():  # all at once: each drains in parallel
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name in list(self.procs)[::-1]:
            self.stop_process(name)
        if self.anvil is not None:
            self.anvil.stop()
        if self.services is not None:
            self.services.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- processes ---------------------------------------------------------------------------

    def manage(self, *args: str, env: dict | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise CheckFailed(
                f"manage.py {' '.join(args)} failed: {(result.stderr or result.stdout).strip()}"
            )
        return result.stdout

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.log_path(name), "a")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            argv,
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: the pool children are signalled with it
        )
        log.close()

    def start_process(self, name: str) -> None:
        argv = procfile()[name]
        self._spawn(name, argv)
        say(f"started {name}: {' '.join(argv)} (pid {self.procs[name].pid})")

    def start_standin(self) -> None:
        self._spawn(
            "zenopay-standin",
            [
                sys.executable,
                str(REPO / "scripts" / "zenopay_standin.py"),
                "--port",
                str(self.standin_port),
                "--api-key",
                self.api_key,
                "--app-url",
                APP_URL,
                "--deliver-to",
                f"http://127.0.0.1:{self.web_port}",
            ],
        )
        wait_for(
            "the ZenoPay stand-in", lambda: self._answers(f"{self.standin_url}/standin/health")
        )
        say(f"ZenoPay stand-in at {self.env['ZENOPAY_BASE_URL']}")

    @property
    def standin_url(self) -> str:
        return f"http://127.0.0.1:{self.standin_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def signal(self, name: str, sig: int) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)

    def stop_process(self, name: str, timeout: float = 30) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            # SIGTERM to the main process only, as a process manager stops it: Celery's warm
            # shutdown lets the pool finish its tasks; gunicorn's master drains its workers.
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        try:  # children left in the group (a killed worker's pool) go too
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return proc.returncode

    def kill_process(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise CheckFailed(
                    f"the {name} process exited with code {proc.returncode}; last lines:\n"
                    + self.tail(name)
                )

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_path(name)
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def wait_web(self) -> None:
        proxy = Proxy(self.web_url, client_ip="10.0.0.1")

        def healthy():
            self.alive()
            try:
                return proxy.request("GET", "/healthz").status_code == 200
            except requests.RequestException:
                return False

        wait_for("gunicorn to answer /healthz", healthy, timeout=120)

    def log_text(self, name: str) -> str:
        return self.log_path(name).read_text(errors="replace")

    # --- reads -------------------------------------------------------------------------------

    def shell(self, code: str) -> str:
        """Run Python in the production profile (a read or a staff step with no command)."""
        return self.manage("shell", "--no-imports", "-c", code).strip()

    def sql(self, query: str, params=()) -> list[tuple]:
        """A read straight from the database (what an operator's dbshell shows)."""
        import psycopg

        with psycopg.connect(self.env["DATABASE_URL"]) as connection:
            return connection.execute(query, params).fetchall()

    def statuses(self, ids: list[str]) -> dict[str, str]:
        rows = self.sql(
            "SELECT id::text, status FROM deposits_depositrequest WHERE id = ANY(%s)",
            ([uuid.UUID(i) for i in ids],),
        )
        return dict(rows)

    def standin_orders(self) -> dict[str, dict]:
        answer = requests.get(f"{self.standin_url}/standin/orders", timeout=30)
        return {order["order_id"]: order for order in answer.json()}

    def standin_approve(self, order_id: str, *, webhook: bool = True) -> dict:
        answer = requests.post(
            f"{self.standin_url}/standin/approve",
            json={"order_id": order_id, "webhook": webhook},
            timeout=60,
        )
        if answer.status_code != 200:
            raise CheckFailed(f"the stand-in refused to approve {order_id}: {answer.text}")
        return answer.json()

    def web3(self):
        from web3 import Web3

        from minting.contract_artifact import load_ntzs_artifact

        w3 = Web3(Web3.HTTPProvider(self.anvil.url))
        token = w3.eth.contract(address=self.token_address, abi=load_ntzs_artifact()["abi"])
        return w3, token

    def chain_mints(self) -> tuple[list, list, int]:
        """(DepositMinted logs, mint Transfer logs, totalSupply) of the token."""
        w3, token = self.web3()
        head = w3.eth.block_number
        minted = token.events.DepositMinted().get_logs(from_block=self.deploy_block, to_block=head)
        transfers = token.events.Transfer().get_logs(
            from_block=self.deploy_block,
            to_block=head,
            argument_filters={"from": "0x0000000000000000000000000000000000000000"},
        )
        return list(minted), list(transfers), token.functions.totalSupply().call()


# --- The check's steps ----------------------------------------------------------------------


def check_production_answers(stack: ProdStack) -> None:
    proxy = Proxy(stack.web_url, client_ip="203.0.113.5")
    plain = proxy.request("GET", "/login/", https=False)
    if plain.status_code != 301 or not plain.headers.get("Location", "").startswith("https://"):
        raise CheckFailed(
            f"plain HTTP was not redirected to HTTPS (got {plain.status_code} "
            f"{plain.headers.get('Location')})"
        )
    page = proxy.request("GET", "/login/")
    if page.status_code != 200:
        raise CheckFailed(f"GET /login/ through the proxy answered {page.status_code}")
    if "max-age=31536000" not in page.headers.get("Strict-Transport-Security", ""):
        raise CheckFailed("the login page has no Strict-Transport-Security header")
    cookies = [h for h in proxy.set_cookie_headers if h.startswith("csrftoken=")]
    if not cookies or "secure" not in cookies[0].lower():
        raise CheckFailed(f"the CSRF cookie is not Secure: {cookies}")
    missing = proxy.request("GET", "/no-such-page/")
    if missing.status_code != 404 or "URLconf" in missing.text or "Traceback" in missing.text:
        raise CheckFailed("a missing page did not answer a plain 404 (is DEBUG on?)")
    say("HTTP → HTTPS redirect, HSTS, Secure cookies, a plain 404 (DEBUG off)")
    manifest = json.loads((REPO / "staticfiles" / "staticfiles.json").read_text())["paths"]
    links = re.findall(r'/static/([^"\']+\.css)', page.text)
    if not links:
        raise CheckFailed("the login page links no stylesheet from /static/")
    if links[0] not in manifest.values():
        raise CheckFailed(f"the page links {links[0]}, not a hashed name from the manifest")
    static = proxy.request("GET", f"/static/{links[0]}")
    if static.status_code != 200 or "immutable" not in static.headers.get("Cache-Control", ""):
        raise CheckFailed(
            f"/static/{links[0]} answered {static.status_code} "
            f"({static.headers.get('Cache-Control')}), not a cached static file"
        )
    say(f"static files served by gunicorn (whitenoise): /static/{links[0]} 200, immutable")


def customer_sign_up(stack: ProdStack) -> Proxy:
    """Sign-up through the pages; the confirmation e-mail is in gunicorn's output."""
    browser = Proxy(stack.web_url, client_ip="41.59.10.20")
    log_offset = len(stack.log_text("web"))
    sent = browser.form("/signup/", {"email": CUSTOMER_EMAIL, "full_name": "Amina Mushi"})
    if sent.status_code != 302 or "/signup/sent/" not in sent.headers.get("Location", ""):
        raise CheckFailed(f"sign-up did not answer 'check your e-mail' ({sent.status_code})")
    link = wait_for(
        "the sign-up e-mail in gunicorn's output",
        lambda: re.search(r"/signup/confirm/([^/\s]+)/", stack.log_text("web")[log_offset:]),
        timeout=30,
    )
    path = f"/signup/confirm/{link.group(1)}/"
    done = browser.form(
        path, {"password": CUSTOMER_PASSWORD, "password_confirm": CUSTOMER_PASSWORD}
    )
    if done.status_code != 302 or "sessionid" not in browser.cookies:
        raise CheckFailed(f"the confirmation link did not log in ({done.status_code})")
    say(f"customer {CUSTOMER_EMAIL} signed up: e-mail link from gunicorn's output, logged in")
    return browser


def staff_and_bank(stack: ProdStack) -> None:
    out = stack.manage("staff_bootstrap", "--email", STAFF[0], "--email", STAFF[1])
    made = [line for line in out.splitlines() if "is now a super admin" in line]
    if len(made) != 2:
        raise CheckFailed(f"staff_bootstrap did not make two super admins: {out[-500:]}")
    say(f"staff: manage.py staff_bootstrap → {made[0]}")
    # Banks are kept in Backstage (super admins; no command): the same service, as ops-a.
    stack.shell(
        "from accounts.selectors import user_get_by_email\n"
        "from deposits.services.banks import BankDetails, bank_create\n"
        f"bank_create(actor=user_get_by_email(email={STAFF[0]!r}), details=BankDetails("
        "name='CRDB Bank', account_name='nTZS Ltd', account_number='0150000000001', "
        "is_zenopay_settlement=True))"
    )
    say("staff: the settlement bank created (Backstage's bank_create service, as a super admin)")


def customer_kyc(stack: ProdStack, browser: Proxy) -> None:
    sent = browser.form(
        "/kyc/", {"national_id": "19900101-12345-00001-23", "full_name": "Amina Mushi"}
    )
    if sent.status_code != 302:
        raise CheckFailed(f"the KYC form was not accepted ({sent.status_code})")
    # Staff find the case in Backstage's KYC queue; here, the same read.
    case_id = stack.shell(
        "from accounts.models import KycCase\n"
        f"print(KycCase.objects.get(user__email={CUSTOMER_EMAIL!r}, status='pending').pk)"
    )
    out = stack.manage("kyc_review", case_id, "--approve", "--actor", STAFF[0])
    say(f"KYC submitted on the page; manage.py kyc_review → {out.strip()}")


def customer_wallet(browser: Proxy) -> tuple[str, str]:
    from eth_account import Account
    from eth_account.messages import encode_defunct

    account = Account.create()
    made = browser.form("/wallets/", {"address": account.address})
    location = browser.local(made.headers.get("Location", ""))
    match = re.fullmatch(r"/wallets/([0-9a-f-]{36})/verify/", location)
    if made.status_code != 302 or not match:
        raise CheckFailed(f"registering the wallet did not lead to its verification ({location})")
    page = browser.request("GET", location)
    message = json.loads(
        re.search(
            r'<script id="wallet-message" type="application/json">(.*?)</script>', page.text, re.S
        ).group(1)
    )
    challenge = re.search(r'name="challenge" value="([^"]+)"', page.text).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    signature = account.sign_message(encode_defunct(text=message)).signature
    done = browser.request(
        "POST",
        location,
        data={
            "csrfmiddlewaretoken": token,
            "challenge": challenge,
            "signature": "0x" + bytes(signature).hex(),
        },
    )
    if done.status_code != 302 or browser.local(done.headers["Location"]) != "/":
        raise CheckFailed(f"the wallet's signature was not accepted ({done.status_code})")
    say(f"wallet {account.address} registered and verified by its signature")
    return match.group(1), account.address


def api_token(stack: ProdStack, email: str) -> str:
    out = stack.manage("drf_create_token", email)
    return re.search(r"Generated token (\w+)", out).group(1)


def deposit_create(api: Proxy, *, wallet_id: str, amount: int, key: str) -> str:
    answer = api.request(
        "POST",
        "/api/v1/deposits",
        json={
            "amount_tzs": amount,
            "payment_provider": "zenopay",
            "wallet_id": wallet_id,
            "buyer_phone": CUSTOMER_PHONE,
        },
        headers={"Idempotency-Key": key},
    )
    if answer.status_code != 201:
        raise CheckFailed(f"POST /api/v1/deposits answered {answer.status_code}: {answer.text}")
    return answer.json()["id"]


def deposits_by_id(api: Proxy) -> dict[str, dict]:
    answer = api.request("GET", "/api/v1/deposits?limit=100")
    if answer.status_code != 200:
        raise CheckFailed(f"GET /api/v1/deposits answered {answer.status_code}: {answer.text}")
    return {d["id"]: d for d in answer.json()["results"]}


def wait_minted(stack: ProdStack, api: Proxy, ids: list[str], timeout: float) -> dict:
    def all_minted():
        stack.alive()
        rows = deposits_by_id(api)
        bad = [rows[i]["status"] for i in ids if rows[i]["status"] in ("mint_failed", "cancelled")]
        if bad:
            raise CheckFailed(f"a deposit ended {bad[0]} instead of minted")
        return rows if all(rows[i]["status"] == "minted" for i in ids) else None

    # Every 2 s: the API's read throttle is 120 a minute per customer.
    return wait_for(f"{len(ids)} deposit(s) to be minted", all_minted, timeout=timeout, interval=2)


def first_deposit(stack: ProdStack, api: Proxy, wallet_id: str, wallet: str) -> str:
    deposit_id = deposit_create(api, wallet_id=wallet_id, amount=5_000, key="first")
    say(f"deposit {deposit_id} of TSh 5,000 created through POST /api/v1/deposits (201)")
    wait_for(
        "the worker to ask ZenoPay for the payment", lambda: deposit_id in stack.standin_orders()
    )
    say("the worker asked the ZenoPay stand-in for the USSD push (create accepted)")
    offset = len(stack.log_text("web"))
    answer = stack.standin_approve(deposit_id)
    if answer["webhook_status"] != 200:
        raise CheckFailed(f"the webhook was answered {answer['webhook_status']}, not 200")
    wait_for(
        "the web process's 'ZenoPay webhook hint' line of the deposit",
        lambda: re.search(
            rf"ZenoPay webhook hint deposit={deposit_id} status=COMPLETED authenticated=True",
            stack.log_text("web")[offset:],
        ),
        timeout=10,
    )
    wait_for(
        "gunicorn's access log line of the webhook (200)",
        lambda: re.search(
            r'path="/api/webhooks/zenopay" status=200', stack.log_text("web")[offset:]
        ),
        timeout=10,
    )
    say("approved at the stand-in; its webhook (x-api-key, through the proxy) was answered 200")
    rows = wait_minted(stack, api, [deposit_id], timeout=120)
    _w3, token = stack.web3()
    balance = token.functions.balanceOf(wallet).call()
    if balance != tzs_to_units(5_000):
        raise CheckFailed(f"balanceOf({wallet}) is {balance}, not 5,000 nTZS")
    say(f"minted: tx {rows[deposit_id]['mint_tx_hash']}, balanceOf = 5,000 nTZS on chain")
    return deposit_id


def second_batch(stack: ProdStack, api: Proxy, wallet_id: str) -> list[str]:
    ids = [
        deposit_create(api, wallet_id=wallet_id, amount=amount, key=f"batch-{index}")
        for index, amount in enumerate(BATCH_AMOUNTS)
    ]
    say(f"second batch: {len(ids)} deposits created through the API")
    wait_for(
        "the worker to ask ZenoPay for every payment of the batch",
        lambda: set(ids) <= stack.standin_orders().keys(),
    )
    half = len(ids) // 2
    for deposit_id in ids[:half]:
        stack.standin_approve(deposit_id)
    say(f"{half} approved at the stand-in; stopping the worker with SIGTERM in their mints")
    stack.stop_process("worker")
    stack.start_process("worker")
    for deposit_id in ids[half:]:
        stack.standin_approve(deposit_id)
    say(f"{len(ids) - half} more approved; waiting for a mint in flight to SIGKILL the worker")

    def sent_not_confirmed():
        return "mint_processing" in stack.statuses(ids).values()

    try:
        wait_for("a mint sent and not yet confirmed", sent_not_confirmed, timeout=60, interval=0.1)
    except CheckFailed:
        pass  # killed anyway; the statuses below say where the batch was
    stack.kill_process("worker")
    counts: dict[str, int] = {}
    for status in stack.statuses(ids).values():
        counts[status] = counts.get(status, 0) + 1
    where = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    say(f"worker SIGKILLed (its whole process group) with the batch at: {where}")
    time.sleep(2)
    stack.start_process("worker")
    wait_minted(stack, api, ids, timeout=240)
    say("the whole batch is minted after the restarts")
    return ids


def check_exactly_once_rows(stack: ProdStack, minted_tzs: dict[str, int], ids: list[str]) -> str:
    """One DepositMinted log and one mint Transfer per deposit of ``ids``, none else, and
    totalSupply equal to the books (``minted_tzs``: every minted deposit's shillings)."""
    from minting.contract_artifact import deposit_ref

    minted, transfers, supply = stack.chain_mints()
    refs: dict[bytes, int] = {}
    for log in minted:
        ref = bytes(log["args"]["depositRef"])
        refs[ref] = refs.get(ref, 0) + 1
    for deposit_id in ids:
        count = refs.get(deposit_ref(uuid.UUID(deposit_id)), 0)
        if count != 1:
            raise CheckFailed(
                f"deposit {deposit_id} has {count} DepositMinted logs on chain, not 1"
            )
    if len(minted) != len(ids) or len(transfers) != len(ids):
        raise CheckFailed(
            f"{len(minted)} DepositMinted and {len(transfers)} mint Transfer logs on chain for "
            f"{len(ids)} deposits"
        )
    books = tzs_to_units(sum(minted_tzs.values()))
    if supply != books:
        raise CheckFailed(f"totalSupply {supply} is not the books' {books} (minted deposits)")
    return (
        f"exactly once: {len(ids)} deposits, {len(minted)} DepositMinted and {len(transfers)} "
        f"mint Transfer logs, totalSupply {units_to_tzs(supply):,} nTZS = the books"
    )


def check_exactly_once(stack: ProdStack, api: Proxy, ids: list[str]) -> None:
    rows = deposits_by_id(api)
    books = {i: row["amount_tzs"] for i, row in rows.items() if row["status"] == "minted"}
    say(check_exactly_once_rows(stack, books, ids))
    worker_log = stack.log_text("worker")
    for line in ("Mint worker started", "Shutting down"):
        if line not in worker_log:
            raise CheckFailed(f"the worker's log has no '{line}' line")
    confirmed = {i for i in ids if f"Mint confirmed deposit={i}" in worker_log}
    if confirmed != set(ids):
        raise CheckFailed(f"no 'Mint confirmed' log line for {sorted(set(ids) - confirmed)}")
    say("the worker logged 'Mint worker started', 'Shutting down' and 'Mint confirmed' for each")


def run() -> None:
    stack = ProdStack()
    try:
        stack.start()
        check_production_answers(stack)
        staff_and_bank(stack)
        browser = customer_sign_up(stack)
        customer_kyc(stack, browser)
        wallet_id, wallet = customer_wallet(browser)
        api = Proxy(stack.web_url, client_ip="41.59.10.20", token=api_token(stack, CUSTOMER_EMAIL))
        say("API token from manage.py drf_create_token; the API answers with it")
        first = first_deposit(stack, api, wallet_id, wallet)
        batch = second_batch(stack, api, wallet_id)
        check_exactly_once(stack, api, [first, *batch])
        stack.alive()
    except CheckFailed:
        for name in ("web", "worker", "beat", "zenopay-standin"):
            if stack.log_path(name).exists():
                print(f"--- last lines of {name} ---\n{stack.tail(name, 15)}", flush=True)
        raise
    finally:
        stack.stop()
        say("every process it started is stopped")


def main() -> int:
    started = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # finally: stops the stack
    try:
        run()
    except CheckFailed as exc:
        say(f"FAILED: {exc} (logs: {LOG_DIR})")
        return 1
    except Exception as exc:  # a service that would not start, a chain error: one sentence
        traceback.print_exc()
        say(f"FAILED: {type(exc).__name__}: {exc} (logs: {LOG_DIR})")
        return 1
    say(f"OK in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
