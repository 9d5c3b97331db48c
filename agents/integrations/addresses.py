"""The address guard of outgoing HTTP (webhooks): a URL may be called only if it is
http(s) and every address its host resolves to is public, unless private addresses
are allowed (`WEBHOOK_ALLOW_PRIVATE`). Otherwise a webhook is a way to make the server
call its own admin ports, the cloud metadata service (169.254.169.254) or the internal
network (server-side request forgery, OWASP's SSRF prevention cheat sheet).

`resolve` returns the addresses it checked, so the caller connects to one of them and
not to whatever a second lookup would return (DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from db.models import http_url

#: Seconds a lookup of a webhook's host may take.
RESOLVE_TIMEOUT = 5.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefusedError(ValueError):
    """The URL may not be called: not http(s), its host does not resolve, or (without
    `allow_private`) one of its addresses is not public. The message says which."""


@dataclass(frozen=True)
class Target:
    """A checked URL: its `url`, `host` (for the Host header and TLS), `port`, and the
    `addresses` it resolved to, every one allowed."""

    url: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


#: IPv6 ranges that carry an IPv4 address in their last 32 bits, which decides: NAT64
#: (RFC 6052's well-known and local-use prefixes), IPv4-translated (RFC 2765) and the
#: deprecated IPv4-compatible form. A gateway or stack may turn them into the IPv4 one.
_EMBEDDING_IPV4 = tuple(
    ipaddress.IPv6Network(net)
    for net in ("64:ff9b::/96", "64:ff9b:1::/48", "::ffff:0:0:0/96", "::/96")
)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address `address` stands for (mapped, 6to4, Teredo's client, NAT64,
    translated, compatible), or None."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if any(address in net for net in _EMBEDDING_IPV4) and address not in (
        ipaddress.IPv6Address("::"),
        ipaddress.IPv6Address("::1"),
    ):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether `address` is a public (globally routable) one: not loopback, private,
    link-local (cloud metadata), shared (100.64/10), multicast or reserved. An IPv6
    address that stands for an IPv4 one (`::ffff:10.0.0.1`, 6to4 `2002:a9fe:a9fe::`,
    Teredo, NAT64 `64:ff9b::a9fe:a9fe`) is judged as that IPv4 address too."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None and not is_public(inner):
            return False
        if address.ipv4_mapped is not None:
            return True  # judged as the IPv4 address alone (is_global says no for ::ffff:/96)
    return address.is_global and not address.is_multicast


async def resolve(url: str, *, allow_private: bool) -> Target:
    """Check `url` and resolve its host (at most `RESOLVE_TIMEOUT` seconds); the
    `Target`. Raises `AddressRefusedError` as the class says."""
    try:
        text = http_url(url)
    except ValueError as exc:
        raise AddressRefusedError(str(exc)) from None
    parts = urlsplit(text)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise AddressRefusedError("the URL's port is not a number from 0 to 65535") from None
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: tuple[IPAddress, ...] = (literal,)
    else:
        addresses = await _lookup(host, port)
    if not allow_private:
        refused = [str(a) for a in addresses if not is_public(a)]
        if refused:
            raise AddressRefusedError(
                f"{host} resolves to {', '.join(refused)}, which is not a public address "
                "(WEBHOOK_ALLOW_PRIVATE=true allows it)"
            )
    return Target(text, host, port, addresses)


async def _lookup(host: str, port: int) -> tuple[IPAddress, ...]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise AddressRefusedError(f"{host} does not resolve: {exc}") from None
    found = dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos)
    if not found:
        raise AddressRefusedError(f"{host} does not resolve")
    return tuple(found)


__all__ = ["RESOLVE_TIMEOUT", "AddressRefusedError", "Target", "is_public", "resolve"]
