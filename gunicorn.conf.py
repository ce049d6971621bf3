"""Gunicorn settings of the web process (Procfile ``web``; the same for systemd: see
docs/runbook.md). Each value can be set from the environment for one host without a code
change; the defaults suit a small instance behind one TLS-terminating proxy."""

import multiprocessing
import os

# The proxy in front forwards here; PORT is what most platforms hand a web process.
bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Django views block on the database and on ZenoPay: processes, not threads, and the classic
# (2 x cores) + 1, overridable with WEB_CONCURRENCY.
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
worker_class = "sync"
# A request may wait on ZenoPay (the four-eyes page asks for its fresh answer) for up to
# ZENOPAY_TIMEOUT (60 s by default): the worker timeout stays above it, so a slow gateway
# answers with its refusal instead of a killed worker. Graceful stop waits for requests in
# flight.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "75"))
graceful_timeout = 30
keepalive = 5
# A worker is replaced after this many requests (with jitter), so a slow leak never grows.
max_requests = 1000
max_requests_jitter = 100
# The client address and scheme come from the proxy's X-Forwarded-* headers, which Django reads
# itself (TRUSTED_PROXY_HOPS, SECURE_PROXY_SSL_HEADER); gunicorn trusts them from the proxy's
# address only.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Access log on stdout, one line per request, with the request id django-guid returns; no
# query string (it can carry an order id and a token) and no client address beyond the proxy.
accesslog = "-"
errorlog = "-"
access_log_format = (
    '%(t)s access method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s '
    "duration_ms=%(M)s request_id=%({x-request-id}o)s"
)
# gunicorn's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl), which two
# web processes on one host would share; nothing here uses it.
control_socket_disable = True
