"""Which receiver URLs a subscription may name, and where a delivery may connect.

Rules (API.md "Webhooks"):

- the scheme is `https`, or `http` to a host named in `COMPLAINTCORE_WEBHOOK_ALLOW_HOSTS`;
- every address the host resolves to is global (`ipaddress`: not private, loopback, link-local,
  multicast, reserved, unspecified or shared), unless the address is allowed.

The allow list (comma-separated) holds host names, IP addresses and networks (CIDR). A host name
entry allows `http` to that name; it does not waive the address check, so a name an attacker
re-points at 169.254.169.254 is still refused. An address or network entry allows those
addresses (and `http` to a URL naming the address itself). A deployment whose receiver lives on
an internal network lists its name and its network: `hooks.bank.internal,10.8.0.0/16`.

**DNS rebinding.** The check runs at subscription and again before each delivery (a name that
was public when subscribed and points at 10.0.0.5 today is refused, and the attempt counts as a
failed one). Between that check and the connection the name could change again; so a plain
`http` delivery connects to the address just checked (`ResolvedTarget.pinned_url`, with the
original `Host` header), and an `https` one connects by name with the certificate verified
against the name: a server at a re-pointed address cannot present a certificate for it. (https
is not pinned because httpx's connection pool is keyed by the address, and a pinned connection
could be reused for another name on the same address without checking its certificate.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from complaintcore.infra.allow_list import IPNetwork, allow_list_item

__all__ = [
    "AllowList",
    "ResolvedTarget",
    "Resolver",
    "UrlNotAllowed",
    "check_url",
    "parse_url",
    "resolve_with_loop",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2000
RESOLVE_TIMEOUT_S = 5.0  # a name server that does not answer holds no slot and no request longer


class UrlNotAllowed(ValueError):
    """A URL the deployment does not send to; the message says why (no secret in it)."""


@dataclass(frozen=True)
class AllowList:
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, text: str | Iterable[str]) -> AllowList:
        """`ValueError` for an item that is neither a host name nor an address or network
        (`infra.allow_list`, which the setting is checked by)."""
        items = text.split(",") if isinstance(text, str) else list(text)
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in items:
            item = allow_list_item(raw)
            if isinstance(item, str):
                hosts.add(item)
            elif item is not None:
                networks.append(item)
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        """Whether `http` may be used to `host` (a listed name, or an address listed)."""
        if host in self.hosts:
            return True
        address = _literal_address(host)
        return address is not None and any(address in network for network in self.networks)

    def allows_address(self, address: IPAddress) -> bool:
        if _is_global(address):
            return True
        return any(address in network for network in self.networks)


@dataclass(frozen=True)
class ResolvedTarget:
    """Where to connect for a URL: the URL with its host replaced by the checked address, the
    original host (for `Host` and SNI)."""

    url: str
    pinned_url: str
    host: str
    host_header: str
    address: str
    scheme: str
    """`http` or `https`, lower case whatever the URL's spelling (RFC 3986: case-insensitive)."""


def parse_url(url: str) -> tuple[SplitResult, str, int]:
    """The URL's parts, lower-case host and port; `UrlNotAllowed` for a malformed one."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlNotAllowed(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlNotAllowed("the URL cannot be parsed") from None
    if parts.scheme not in ("http", "https"):
        raise UrlNotAllowed("the URL's scheme must be https (or http to an allowed host)")
    if port == 0:  # no port to send to; a client would send to the scheme's own (a review pass)
        raise UrlNotAllowed("the URL's port must be 1 to 65535")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlNotAllowed("the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowed("the URL must not carry credentials")
    if any(ch.isspace() or ord(ch) < 0x21 for ch in url):
        raise UrlNotAllowed("the URL holds spaces or control characters")
    try:
        httpx.URL(url)  # what the client will send to: a name it refuses is refused here
    except (httpx.InvalidURL, ValueError):
        raise UrlNotAllowed("the URL cannot be sent to") from None
    return parts, host, port or (443 if parts.scheme == "https" else 80)


async def check_url(url: str, allow: AllowList, resolve: Resolver) -> ResolvedTarget:
    """Check `url` against the rules and resolve it: the address to connect to, every address
    of the host having passed. `UrlNotAllowed` otherwise (or when the host does not resolve)."""
    parts, host, port = parse_url(url)
    if parts.scheme == "http" and not allow.allows_host(host):
        raise UrlNotAllowed("http is allowed only to a host the deployment allows; use https")
    literal = _literal_address(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                found = await resolve(host, port)
        except TimeoutError:
            raise UrlNotAllowed("the URL's host did not resolve in time") from None
        except (OSError, UnicodeError):
            raise UrlNotAllowed("the URL's host does not resolve") from None
        addresses = [ipaddress.ip_address(item.split("%", 1)[0]) for item in found]
        if not addresses:
            raise UrlNotAllowed("the URL's host does not resolve")
    for address in addresses:
        if not allow.allows_address(address):
            raise UrlNotAllowed(
                "the URL's host resolves to a private, loopback, link-local or otherwise "
                "non-global address the deployment does not allow"
            )
    chosen = addresses[0]
    shown = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    netloc = f"{shown}:{parts.port}" if parts.port is not None else shown
    host_header = parts.netloc.rsplit("@", 1)[-1]
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    return ResolvedTarget(url, pinned, host, host_header, str(chosen), parts.scheme)


async def resolve_with_loop(host: str, port: int) -> list[str]:
    """Every address of `host`, from the event loop's `getaddrinfo` (a thread, not blocking)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _is_global(address: IPAddress) -> bool:
    # An IPv6 address that carries an IPv4 one (mapped ::ffff:10.0.0.1, or 6to4 2002:0a00:1::)
    # is judged as that IPv4 address; site-local fec0::/10 is not global, whatever Python says.
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local:
            return False
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            address = embedded
    return address.is_global and not address.is_multicast and not address.is_reserved
