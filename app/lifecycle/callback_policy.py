"""Where a job's callback may go: http(s) to a public address only (no server-side request forgery).

A `callback_url` naming a loopback, private, link-local (cloud metadata: 169.254.169.254), carrier-grade
NAT, multicast, reserved or unspecified address, or a name that resolves to one, is refused: with a 422
at submission, and again at delivery, where the name is resolved when the request is made and the
request goes to the very address that was checked (a name that changed its answer in between, DNS
rebinding, is refused then). An operator's own internal receivers are allowed by
EDUQ_CALLBACK_ALLOWLIST: host names, and networks in CIDR form (10.20.0.0/16, 127.0.0.1/32).
"""
from __future__ import annotations

import ipaddress
import socket
from typing import Callable
from urllib.parse import urlsplit

from app.settings import settings

Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address the name resolves to now (IPv4 and IPv6)."""
    return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def _allowlist(entries) -> tuple[set[str], list]:
    names, nets = set(), []
    for e in entries:
        e = e.strip().lower()
        if not e:
            continue
        try:
            nets.append(ipaddress.ip_network(e, strict=False))
        except ValueError:
            names.add(e.rstrip("."))
    return names, nets


def _public(ip) -> bool:
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check(url: str, allowlist=None, resolver: Resolver | None = None) -> tuple[str, int, list[str]]:
    """(host, port, the addresses that may be called) for a callback URL, or ValueError naming why not."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise ValueError("has no host")
    if parts.username or parts.password:
        raise ValueError("must not carry a user name or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError("has an invalid port") from None
    names, nets = _allowlist(settings().callback_allowlist if allowlist is None else allowlist)
    try:
        literal = ipaddress.ip_address(host)
        addresses = [str(literal)]
    except ValueError:
        try:
            addresses = (resolver or resolve)(host, port)
        except (OSError, UnicodeError):
            raise ValueError(f"names a host that cannot be resolved ({host})") from None
    if not addresses:
        raise ValueError(f"names a host that cannot be resolved ({host})")
    if host in names:
        return host, port, addresses
    for a in addresses:
        ip = ipaddress.ip_address(a)
        if any(ip in n for n in nets):
            continue
        if not _public(ip):
            raise ValueError(f"points at a non-public address ({a}): callbacks go to public addresses only "
                             "(an operator can allow internal receivers with EDUQ_CALLBACK_ALLOWLIST)")
    return host, port, addresses


def refusal(url: str, allowlist=None, resolver: Resolver | None = None) -> str | None:
    """None when the callback may be sent, else why not (one sentence)."""
    try:
        check(url, allowlist, resolver)
    except ValueError as e:
        return f"callback_url {e}"
    return None
