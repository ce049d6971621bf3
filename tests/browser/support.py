"""What the browser tests share: the layout check, screenshots, the worker stand-in that runs
what the pages enqueued, and ways to bring deposits into the states the pages show.

The layout check runs in the page (``LAYOUT_CHECK_JS``) and reports, in words, every:

- horizontal overflow: the document wider than the viewport, or a visible element reaching
  past its right edge (content inside a horizontally scrolling box excepted);
- value column narrower than ``MIN_VALUE_COLUMN_PX``: every visible ``<dd>``;
- amount or reference broken across lines: an ``.amount`` whose text is not on one line, or a
  word of a ``.ref`` (a reference a customer reads out or types: ours, ZenoPay's, the bank
  transfer's) or of a ``.status`` pill split over two lines, or an amount or reference cut
  off inside its own box (scrolled sideways). A word's lines are counted from the client rects
  of a DOM Range over its characters, so a break the browser made inside the word
  (``overflow-wrap``, ``word-break``, a UUID's hyphens) shows however the CSS caused it.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import redis
from celery import current_app
from django.conf import settings
from django.test import Client
from django.utils import translation
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
WIDTHS = {"phone": PHONE, "desktop": DESKTOP}
LANGUAGES = ("en", "sw")
MIN_VALUE_COLUMN_PX = 120
BROKER_QUEUES = ("default", "mint")

LAYOUT_CHECK_JS = """
(minValuePx) => {
  const problems = [];
  const root = document.documentElement;
  const viewport = root.clientWidth;
  const describe = (el) => {
    const text = (el.innerText || el.textContent || "").trim().replace(/\\s+/g, " ");
    const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
      (el.classList.length ? "." + Array.from(el.classList).join(".") : "");
    return name + (text ? ' "' + text.slice(0, 60) + '"' : "");
  };
  const visible = (el) => {
    const style = getComputedStyle(el);
    return style.visibility !== "hidden" && el.getClientRects().length > 0;
  };
  const scrolledSideways = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      const overflow = getComputedStyle(up).overflowX;
      if (overflow === "auto" || overflow === "scroll" || overflow === "hidden") return true;
    }
    return false;
  };
  if (root.scrollWidth > viewport) {
    problems.push("the page is " + root.scrollWidth + " px wide in a " + viewport +
                  " px viewport");
  }
  for (const el of document.body.querySelectorAll("*")) {
    if (!visible(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.width > 0 && box.right > viewport + 0.5 && !scrolledSideways(el)) {
      problems.push(describe(el) + " reaches " + Math.round(box.right) + " px, past the " +
                    viewport + " px viewport");
    }
  }
  for (const dd of document.body.querySelectorAll("dd")) {
    if (!visible(dd)) continue;
    const width = dd.getBoundingClientRect().width;
    if (width < minValuePx) {
      problems.push("value column " + describe(dd) + " is " + Math.round(width) +
                    " px wide (at least " + minValuePx + " px)");
    }
  }
  const lines = (range) => {
    const tops = new Set();
    for (const rect of range.getClientRects()) {
      if (rect.width > 0.5) tops.add(Math.round(rect.top));
    }
    return tops.size;
  };
  const textNodes = (el) => {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    const found = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) found.push(node);
    return found;
  };
  for (const el of document.body.querySelectorAll(".amount")) {
    if (!visible(el)) continue;
    const range = document.createRange();
    range.selectNodeContents(el);
    const count = lines(range);
    if (count > 1) problems.push("amount " + describe(el) + " is broken over " + count + " lines");
  }
  for (const el of document.body.querySelectorAll(".amount, .ref")) {
    if (visible(el) && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1) {
      problems.push(describe(el) + " is cut off: " + el.scrollWidth + " px of text in " +
                    el.clientWidth + " px");
    }
  }
  for (const el of document.body.querySelectorAll(".ref, .status")) {
    if (!visible(el)) continue;
    for (const node of textNodes(el)) {
      for (const match of node.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const count = lines(range);
        if (count > 1) {
          problems.push('"' + match[0] + '" in ' + describe(el) + " is broken over " + count +
                        " lines");
        }
      }
    }
  }
  return problems;
}
"""


def layout_problems(page) -> list[str]:
    return page.evaluate(LAYOUT_CHECK_JS, MIN_VALUE_COLUMN_PX)


def assert_layout(page, where: str) -> None:
    problems = layout_problems(page)
    assert not problems, f"{where} ({page.url}): " + "; ".join(problems)


def screenshot(page, name: str) -> Path:
    """A full-page PNG under var/screenshots/ (``name`` without the extension)."""
    path = SCREENSHOTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def same_line(page, first: str, second: str) -> bool:
    """Whether the boxes of two selectors share a line (their vertical middles overlap the
    other's box)."""
    a = page.locator(first).first.bounding_box()
    b = page.locator(second).first.bounding_box()
    assert a and b, f"{first} or {second} is not on the page"
    a_mid, b_mid = a["y"] + a["height"] / 2, b["y"] + b["height"] / 2
    return a["y"] <= b_mid <= a["y"] + a["height"] and b["y"] <= a_mid <= b["y"] + b["height"]


# --- The worker's stand-in -------------------------------------------------------------------


def _broker() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def run_queued_tasks() -> list[str]:
    """Run, in this thread, every task message waiting in the broker (oldest first, until the
    queues are empty, including what the tasks enqueue), as a worker would; returns their
    names. Countdowns are not waited for: the database says what is due."""
    client = _broker()
    ran = []
    while True:
        raw = None
        for queue in BROKER_QUEUES:
            raw = client.rpop(queue)  # kombu LPUSHes, workers BRPOP: the oldest is on the right
            if raw is not None:
                break
        if raw is None:
            return ran
        message = json.loads(raw)
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        name = message["headers"]["task"]
        current_app.tasks[name](*args, **kwargs)
        ran.append(name)


def run_tasks_until(done: Callable[[], bool], *, timeout_s: float = 30, beat: tuple = ()) -> None:
    """Run queued tasks (and the ``beat`` task names, as beat would) until ``done()``."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"not done after {timeout_s:g} s of running tasks"
        run_queued_tasks()
        for name in beat:
            current_app.tasks[name]()
        time.sleep(0.1)


def clear_broker() -> None:
    _broker().delete(*BROKER_QUEUES)


# --- Text and steps --------------------------------------------------------------------------


def squeezed(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


MINTED = '#deposit-status .deposit-status[data-stage="minted"]'

# Installed in the status page once it has loaded: proves that the page was not reloaded and
# records each step the page showed as the current one while it caught up (issue 11, point 5).
WATCH_STATUS_JS = """
() => {
  window.__sameDocument = true;
  window.__stepsShown = [];
  const box = document.getElementById("deposit-status");
  const note = () => {
    for (const item of box.querySelectorAll(".steps li.current")) {
      const step = Number(item.getAttribute("data-step") ||
        Array.from(item.parentElement.children).indexOf(item) + 1);
      if (!window.__stepsShown.includes(step)) window.__stepsShown.push(step);
    }
  };
  new MutationObserver(note).observe(box, {subtree: true, childList: true, attributes: true,
                                           attributeFilter: ["class"]});
  note();
}
"""


def t(lang: str, text: str) -> str:
    """``text`` as the site shows it in ``lang`` (the Kiswahili catalogue's translation)."""
    with translation.override(lang):
        return translation.gettext(text)


class Journey:
    """Numbered, photographed, layout-checked steps of one journey."""

    def __init__(self, tab, lang: str, name: str = "journey"):
        self.tab, self.page, self.lang, self.name, self.number = tab, tab.page, lang, name, 0

    def step(self, what: str) -> None:
        self.number += 1
        screenshot(self.page, f"{self.name}-{self.lang}-{self.number:02d}-{what}")
        assert_layout(self.page, f"{self.name} step {self.number} ({what}, {self.lang})")

    def heading(self) -> str:
        return squeezed(self.page.locator("h1").first.inner_text())

    def text(self) -> str:
        return squeezed(self.page.locator("body").inner_text())


def settle_minting(settings) -> None:
    settings.MINT_CONFIRMATIONS = 1
    settings.NTZS_MINT_WITH_REF = None


def approve_on_the_phone(open_tab, deposit_id, *, action: str = "Approve") -> None:
    """The customer's phone (another device: its own browser context) answers the prompt."""
    phone = open_tab(lang="en").page
    phone.goto("/sandbox/zenopay/phone/")
    order = phone.locator("li", has_text=str(deposit_id))
    order.get_by_role("button", name=action, exact=True).click()
    phone.wait_for_load_state()


def deposit_status(deposit) -> str:
    from deposits.models import DepositRequest

    return DepositRequest.objects.values_list("status", flat=True).get(pk=deposit.pk)


def initiated(deposit) -> bool:
    from deposits.models import DepositRequest

    return DepositRequest.objects.get(pk=deposit.pk).initiation == "requested"


# --- Deposits in the states the pages show ---------------------------------------------------

CUSTOMER_PHONE = "+255712345678"


def deposit_zenopay(*, user, wallet, amount: int, outcome: str = "", phone: str = CUSTOMER_PHONE):
    """A mobile money deposit taken as far as ``outcome`` says, over real HTTP to the live
    server's ZenoPay sandbox: "" (the push is on the phone), "approve" (paid, then whatever
    the worker does: minted, or the Safe lane for a large one) or "decline"."""
    from deposits.models import DepositRequest
    from deposits.sandbox.services import sandbox_order_approve, sandbox_order_decline
    from deposits.services.intake import DepositInput, deposit_create
    from deposits.services.payments import payments_poll

    deposit, _created = deposit_create(
        user=user,
        data=DepositInput(
            amount_tzs=amount, payment_provider="zenopay", wallet_id=wallet.pk, buyer_phone=phone
        ),
    )
    run_queued_tasks()  # the create call: the push reaches the phone
    if outcome == "approve":
        sandbox_order_approve(order_id=str(deposit.pk))
        run_queued_tasks()  # webhook, check, mint, confirm
    elif outcome == "decline":
        sandbox_order_decline(order_id=str(deposit.pk))
        payments_poll(deposit_id=deposit.pk)  # ZenoPay sends no webhook for a failure
    return DepositRequest.objects.get(pk=deposit.pk)


def deposit_bank(*, user, wallet, bank, amount: int):
    from deposits.services.intake import DepositInput, deposit_create

    deposit, _created = deposit_create(
        user=user,
        data=DepositInput(
            amount_tzs=amount,
            payment_provider="bank_transfer",
            wallet_id=wallet.pk,
            bank_id=bank.pk,
        ),
    )
    return deposit


def bank_create(**fields):
    from deposits.models import Bank

    return Bank.objects.create(**fields)


def staff_session_cookie(user, url: str) -> dict:
    """A staff session that has passed the second factor (what the code page leaves behind),
    as a cookie for the browser."""
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return {"name": settings.SESSION_COOKIE_NAME, "value": session.session_key, "url": url}
