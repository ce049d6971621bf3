"""Browser tests: the customer pages in headless Chromium (Playwright), served by pytest-django's
``live_server`` on a transactional database.

Chromium is Debian's ``chromium`` package, launched by ``executable_path`` (Playwright cannot
download its own browsers here). scripts/install_services.sh installs it: ``.ci/run`` runs the
script first, and when ``make test`` finds no chromium the browser fixture runs it too, which
installs it as root; otherwise every browser test fails with a sentence naming the install
command. Nothing is skipped.

Threads and the ORM: Playwright's sync API runs an asyncio event loop in the test thread for as
long as the driver is up, and Django then refuses ORM calls from that thread
(``SynchronousOnlyOperation``), although nothing async touches the database: the loop only
talks to the browser. We keep the browser in-process and allow those calls only here:

- the driver and the browser are **package**-scoped: one Chromium for all browser tests, stopped
  when the last of them ends, so no test outside tests/browser/ ever runs beside the loop (the
  fixture checks that the loop is gone);
- the same fixture sets ``DJANGO_ALLOW_ASYNC_UNSAFE`` (with a ``MonkeyPatch``) just before it
  starts the driver and removes it just after it stops it: the ORM check is relaxed exactly
  while the loop exists, which includes the database set-up and flush that pytest-django runs
  around each browser test, and never at import or for the rest of the session.

The test thread and the live server's thread each use their own database connection, as with
any ``live_server`` test. Each test gets fresh browser contexts (cookies, storage), one per
``open_tab`` call.

Every test here is marked ``browser`` (``make test-fast`` leaves them out); those that use the
chain fixtures are also marked ``chain`` by tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

from tests.browser.support import PHONE, clear_broker
from tests.support.roles import staff_roles_restore

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
INSTALL_HINT = (
    "install Debian's chromium package (`apt-get install chromium`, or run "
    "`bash scripts/install_services.sh` as root)"
)


def pytest_collection_modifyitems(config, items):
    """``browser`` on every test in this directory (the hook sees the whole session's items)."""
    for item in items:
        if Path(str(item.path)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.browser)


def _chromium() -> str | None:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    return found if found and os.access(found, os.X_OK) else None


def chromium_executable() -> str:
    """Debian's chromium (``CHROMIUM`` in the environment overrides). When it is missing,
    scripts/install_services.sh installs it if we are root (as the test settings do for
    PostgreSQL and Redis); otherwise, or if that fails, the browser tests fail loudly."""
    if _chromium() is None:
        result = subprocess.run(
            ["bash", str(REPO / "scripts" / "install_services.sh")],
            capture_output=True,
            text=True,
        )
        if _chromium() is None:
            said = (result.stderr or result.stdout).strip()
            pytest.fail(
                f"Chromium is missing, so the browser tests cannot run: {INSTALL_HINT}."
                + (f" ({said})" if said else ""),
                pytrace=False,
            )
    return _chromium()


def _event_loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture(scope="package")
def browser():
    """One headless Chromium for every browser test (see the module docstring)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    args = ["--disable-dev-shm-usage"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to sandbox itself as root
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        driver = sync_playwright().start()
        try:
            chromium = driver.chromium.launch(executable_path=executable, args=args)
            try:
                yield chromium
            finally:
                chromium.close()
        finally:
            driver.stop()
        assert not _event_loop_running(), "Playwright's event loop outlived the browser tests"


@pytest.fixture
def site(live_server, settings, transactional_db, broker):
    """The live server as the whole world: ZenoPay is its own sandbox, its webhooks come back
    to it; limits out of the way of tests that make several deposits. Returns its URL."""
    settings.APP_URL = live_server.url
    settings.ZENOPAY_BASE_URL = f"{live_server.url}/sandbox/zenopay"
    settings.DEPOSIT_CREATE_MAX_PER_10_MIN = 1_000
    settings.MAX_PAYING_PHONES_PER_30_DAYS = 1_000
    clear_broker()
    staff_roles_restore()  # an earlier live-server test's flush removed the migrations' rows
    return live_server.url


@dataclass
class Tab:
    """A page in a fresh browser context, with what went wrong while it was open: answers of
    400 and above (a missing favicon included), console errors (a CSP refusal included) and
    uncaught script errors."""

    page: object
    failed_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def goto(self, url: str):
        response = self.page.goto(url)
        status = response.status if response is not None else None
        assert response is not None and response.ok, f"{url} answered {status}"
        return response


def session_cookie(user, url: str) -> dict:
    """A logged-in session for ``user``, as a cookie for the browser."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": url,
    }


@pytest.fixture
def open_tab(browser, site):
    """``open_tab(lang="en", size=PHONE, user=None)``: a page in its own context, speaking
    ``lang`` (the language cookie the footer's picker sets), logged in as ``user`` if given."""
    contexts = []

    def _open(*, lang: str = "en", size: dict = PHONE, user=None) -> Tab:
        context = browser.new_context(viewport=size, base_url=site, locale="en-GB")
        context.set_default_timeout(10_000)
        contexts.append(context)
        cookies = [{"name": settings.LANGUAGE_COOKIE_NAME, "value": lang, "url": site}]
        if user is not None:
            cookies.append(session_cookie(user, site))
        context.add_cookies(cookies)
        page = context.new_page()
        tab = Tab(page=page)
        page.on(
            "response",
            lambda response: (
                response.status >= 400
                and tab.failed_requests.append(
                    f"{response.status} {response.request.method} {response.url}"
                )
            ),
        )
        page.on(
            "console",
            lambda message: message.type == "error" and tab.console_errors.append(message.text),
        )
        page.on("pageerror", lambda error: tab.console_errors.append(str(error)))
        return tab

    yield _open
    for context in contexts:
        context.close()
