"""Facts about the HTTP request that more than one app needs (login throttling, the webhook).

``client_address`` is the one place that decides which address a request came from, so the
login throttle and the webhook allowlist can never disagree about who is calling."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _parse_address(value: str) -> str | None:
    """The normalised IP address in ``value`` (an XFF entry or REMOTE_ADDR), or None.

    Some proxies append a port ("203.0.113.7:51234", "[2001:db8::1]:443"); it is dropped so
    one client does not become many."""
    value = value.strip()
    if not value or len(value) > 64:
        return None
    candidates = [value]
    if value.startswith("[") and "]" in value:
        candidates.append(value[1 : value.index("]")])
    elif value.count(":") == 1:
        candidates.append(value.split(":", 1)[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def client_address(request: HttpRequest) -> str:
    """The address of the client that made ``request``.

    With ``settings.TRUSTED_PROXY_HOPS`` = N (> 0), N proxies we run sit in front of Django and
    each appends the address it received the call from to ``X-Forwarded-For``; the client is
    therefore the N-th entry from the right. Entries further left were written by the client
    and prove nothing, so a forged longer chain cannot choose the address. A header that is
    too short or does not hold an address at that position falls back to REMOTE_ADDR (the
    nearest proxy): wrong for throttling by client, but never attacker-chosen."""
    remote = _parse_address(request.META.get("REMOTE_ADDR", "") or "") or "unknown"
    hops = int(getattr(settings, "TRUSTED_PROXY_HOPS", 0) or 0)
    if hops <= 0:
        return remote
    header = request.META.get("HTTP_X_FORWARDED_FOR", "") or ""
    if not isinstance(header, str) or len(header) > 4096:
        return remote
    entries = [entry for entry in header.split(",") if entry.strip()]
    if len(entries) < hops:
        return remote
    return _parse_address(entries[-hops]) or remote


def client_throttle_key(address: str) -> str:
    """The unit a throttle counts: an IPv4 address, or an IPv6 address's /64 network. One
    IPv6 host usually holds a whole /64, so counting single addresses would let it rotate
    through 2**64 "clients" and escape every per-client limit."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))
