"""ZenoPay in tests, over HTTP but in-process.

- ``DjangoInProcessAdapter`` is a ``requests`` transport that serves a request through this
  process's Django (the real URLconf, middleware and views, CSRF enforced) instead of a
  socket. Mounted on the ZenoPay client's session it reaches the sandbox at
  ``ZENOPAY_BASE_URL``; mounted on the sandbox's webhook session it reaches our own webhook at
  ``APP_URL``. Nothing in the code under test knows.
- ``zenopay_sandbox`` (fixture) mounts it on both sessions and yields a ``SandboxPhone`` to
  play the customer's phone and turn the knobs.
- ``zenopay_fake`` (fixture) is a scripted ZenoPay for what the sandbox does not model
  (a non-JSON 200, a connection error, a redirect...): queue answers or exceptions.

Register with ``pytest_plugins = ["tests.support.zenopay_sandbox"]``. Set any
``settings.ZENOPAY_BASE_URL``/``APP_URL`` override before requesting these fixtures: they
mount on the values current at set-up.
"""

from __future__ import annotations

import io
import json as jsonlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import unquote_to_bytes, urlsplit

import pytest
import requests
from django.conf import settings
from django.http.request import HttpHeaders
from django.test.client import ClientHandler, FakePayload
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

IN_PROCESS_HEADER = "X-Sandbox-In-Process"  # deposits.sandbox.views explains both headers
SIMULATE_HEADER = "X-Sandbox-Simulate"


def _response(
    request: requests.PreparedRequest, status: int, body: bytes, headers: dict, reason: str = ""
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict(headers)
    response.raw = io.BytesIO(body)
    response._content = body
    response._content_consumed = True
    response.encoding = get_encoding_from_headers(response.headers)
    response.reason = reason
    response.url = request.url
    response.request = request
    return response


class DjangoInProcessAdapter(BaseAdapter):
    """Serves ``requests`` calls through Django's WSGI handler, in this process.

    Method, path, query string, headers (Host, Cookie, Content-Type included) and body go in as
    a WSGI environ; status, headers and body come back. View errors become 500 answers, as on
    a real server. Database work happens on the test's connection (inside its transaction)."""

    def __init__(self) -> None:
        super().__init__()
        # CSRF is enforced like on a real server; ClientHandler (unlike a bare WSGIHandler)
        # keeps Django from closing the test's database connection at the request's end.
        self._handler = ClientHandler(enforce_csrf_checks=True)
        self.calls: list[requests.PreparedRequest] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream=False,
        timeout=None,
        verify=True,
        cert=None,
        proxies=None,
    ) -> requests.Response:
        self.calls.append(request)
        url = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        secure = url.scheme == "https"
        port = str(url.port or (443 if secure else 80))
        headers = {key: value for key, value in request.headers.items()}
        headers[IN_PROCESS_HEADER] = "1"
        headers.setdefault("Host", url.netloc)
        environ = {
            "REQUEST_METHOD": request.method.upper(),
            "SCRIPT_NAME": "",
            # WSGI carries the decoded path as latin-1 text (PEP 3333), as Django expects.
            "PATH_INFO": unquote_to_bytes(url.path or "/").decode("iso-8859-1"),
            "QUERY_STRING": url.query,
            "SERVER_NAME": url.hostname or "testserver",
            "SERVER_PORT": port,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": url.scheme or "http",
            "wsgi.input": FakePayload(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.multiprocess": True,
            "wsgi.multithread": False,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(body)),
            **HttpHeaders.to_wsgi_names(headers),
        }
        django_response = self._handler(environ)
        if django_response.streaming:
            content = b"".join(django_response.streaming_content)
            django_response.close()
        else:
            content = django_response.content
        if django_response.get(SIMULATE_HEADER) == "timeout":
            raise requests.ReadTimeout(
                f"in-process read timed out (read timeout={timeout})", request=request
            )
        response_headers = dict(django_response.items())
        if django_response.cookies:
            response_headers["Set-Cookie"] = ", ".join(
                morsel.OutputString() for morsel in django_response.cookies.values()
            )
        return _response(
            request,
            django_response.status_code,
            content,
            response_headers,
            django_response.reason_phrase,
        )

    def close(self) -> None:
        pass


class ScriptedAdapter(BaseAdapter):
    """A scripted server: each request takes the next queued answer or exception.

    ``reply(status, json=..., body=..., headers=...)`` and ``fail(exception)`` queue; ``calls``
    records every request. A request with nothing queued fails the test."""

    def __init__(self) -> None:
        super().__init__()
        self._script: deque = deque()
        self.calls: list[requests.PreparedRequest] = []

    def reply(
        self,
        status: int = 200,
        *,
        json=None,
        body: bytes | str | None = None,
        headers: dict | None = None,
        times: int = 1,
    ) -> ScriptedAdapter:
        headers = dict(headers or {})
        if json is not None:
            content = jsonlib.dumps(json).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            content = body.encode() if isinstance(body, str) else (body or b"")
            headers.setdefault("Content-Type", "text/html; charset=utf-8")
        for _ in range(times):
            self._script.append(("reply", status, content, headers))
        return self

    def fail(self, exception: type[Exception] | Exception, *, times: int = 1) -> ScriptedAdapter:
        for _ in range(times):
            self._script.append(("fail", exception))
        return self

    @property
    def last(self) -> requests.PreparedRequest:
        return self.calls[-1]

    def send(
        self,
        request: requests.PreparedRequest,
        stream=False,
        timeout=None,
        verify=True,
        cert=None,
        proxies=None,
    ) -> requests.Response:
        self.calls.append(request)
        if not self._script:
            raise AssertionError(f"nothing scripted for {request.method} {request.url}")
        step = self._script.popleft()
        if step[0] == "fail":
            exception = step[1]
            if isinstance(exception, type):
                exception = (
                    exception(f"scripted {exception.__name__}", request=request)
                    if issubclass(exception, requests.RequestException)
                    else exception(f"scripted {exception.__name__}")
                )
            raise exception
        _kind, status, content, headers = step
        return _response(request, status, content, headers)

    def close(self) -> None:
        pass


@contextmanager
def mounted(session: requests.Session, prefix: str, adapter: BaseAdapter) -> Iterator[None]:
    """Mount ``adapter`` for ``prefix`` and put the session's adapters back afterwards."""
    before = session.adapters.copy()
    session.mount(prefix, adapter)
    try:
        yield
    finally:
        session.adapters.clear()
        session.adapters.update(before)


class SandboxPhone:
    """Plays the customer's phone and the worker that fires the sandbox's webhooks.

    ``approve``/``decline`` decide a pending push through the sandbox's services and, like the
    worker would after commit, deliver the webhook right away (unless dropped), so a test sees
    our webhook endpoint receive it."""

    def __init__(self, adapter: DjangoInProcessAdapter) -> None:
        self.adapter = adapter

    def approve(self, order_id, amount=None, drop_webhook=False):
        from deposits.sandbox.services import sandbox_order_approve

        order = sandbox_order_approve(
            order_id=str(order_id), amount_tzs=amount, drop_webhook=drop_webhook
        )
        if not drop_webhook:
            self.fire_webhook(order_id)
        return order

    def decline(self, order_id):
        from deposits.sandbox.services import sandbox_order_decline

        order = sandbox_order_decline(order_id=str(order_id))
        self.fire_webhook(order_id)
        return order

    def fire_webhook(self, order_id) -> int | None:
        """(Re)send the order's webhook now; returns the HTTP status our endpoint answered."""
        from deposits.sandbox.services import sandbox_webhook_fire

        return sandbox_webhook_fire(order_id=str(order_id))

    def knobs(self, **values):
        from deposits.sandbox.services import sandbox_knobs_set

        return sandbox_knobs_set(**values)

    def orders(self):
        from deposits.sandbox.selectors import sandbox_orders_all

        return sandbox_orders_all()

    def order(self, order_id):
        from deposits.sandbox.selectors import sandbox_order_get

        return sandbox_order_get(order_id=str(order_id))


@pytest.fixture
def zenopay_sandbox() -> Iterator[SandboxPhone]:
    """The ZenoPay client talks to the sandbox and the sandbox's webhooks reach our app, both
    in-process. Needs the database (``db`` or ``transactional_db``) in the test."""
    from deposits.sandbox.services import sandbox_http_session
    from deposits.zenopay import zenopay_session

    adapter = DjangoInProcessAdapter()
    with (
        mounted(zenopay_session(), settings.ZENOPAY_BASE_URL, adapter),
        mounted(sandbox_http_session(), settings.APP_URL, adapter),
    ):
        yield SandboxPhone(adapter)


@pytest.fixture
def zenopay_fake() -> Iterator[ScriptedAdapter]:
    """A scripted ZenoPay at ``ZENOPAY_BASE_URL`` (wins over ``zenopay_sandbox`` when both are
    requested, if requested after it)."""
    from deposits.zenopay import zenopay_session

    adapter = ScriptedAdapter()
    with mounted(zenopay_session(), settings.ZENOPAY_BASE_URL, adapter):
        yield adapter
