"""Which addresses we may connect to, and how to show a URL without its secrets.

URLs come from strangers' HTML, and the service runs next to a cloud metadata server
that hands out credentials. Everything here is pure (no I/O) except the default
resolver, so the rules can be tested without touching the network.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from podpod_scraping.core.fetching.errors import FetchError
from podpod_scraping.core.outcomes import Outcome

Resolver = Callable[[str, int], list[str]]
"""Maps (host, port) to the IP addresses the host resolves to."""

# Names of cloud metadata servers: refused by name before any look-up, whatever the
# allow-list says ("metadata" is the short name GCE's resolver also answers).
METADATA_NAMES = frozenset(
    {"metadata.google.internal", "metadata", "metadata.goog", "instance-data"}
)
# Addresses of metadata servers (GCP/AWS/Azure share 169.254.169.254; AWS also fd00:ec2::254).
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_METADATA_REASON = "link-local (cloud metadata)"

_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def _classify_v4(address: ipaddress.IPv4Address) -> str | None:
    if address in METADATA_ADDRESSES:
        return _METADATA_REASON
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address in _SHARED_ADDRESS_SPACE:
        return "shared address space"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not globally routable"
    return None


def _classify_v6(address: ipaddress.IPv6Address) -> str | None:
    if address in METADATA_ADDRESSES:
        return _METADATA_REASON
    # Forms that carry an IPv4 address inside: judge the IPv4 address they lead to.
    if address.ipv4_mapped is not None:
        reason = _classify_v4(address.ipv4_mapped)
        return f"{reason} (IPv4-mapped)" if reason else None
    if address.sixtofour is not None:
        reason = _classify_v4(address.sixtofour)
        if reason:
            return f"{reason} (embedded in 6to4)"
    if address.teredo is not None:
        for embedded in address.teredo:
            reason = _classify_v4(embedded)
            if reason:
                return f"{reason} (embedded in Teredo)"
    if address in _NAT64_WELL_KNOWN:
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        reason = _classify_v4(embedded)
        return f"{reason} (embedded in NAT64)" if reason else None
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_site_local:
        return "site-local"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not globally routable"
    return None


def check_address(ip: str) -> str | None:
    """Return None if ``ip`` is a public address we may connect to, else why not.

    Pure: no look-ups, no connections. Anything that is not a plain IP literal is
    refused ("not an IP address"); canonicalise numeric forms first with
    :func:`canonical_host`.
    """
    address = _parse_ip(ip)
    if address is None:
        return "not an IP address"
    if isinstance(address, ipaddress.IPv4Address):
        return _classify_v4(address)
    return _classify_v6(address)


def is_metadata(host_or_ip: str) -> bool:
    """True for the cloud metadata server, by name or address: never fetched."""
    address = _parse_ip(host_or_ip)
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return address.ipv4_mapped in METADATA_ADDRESSES
        return address in METADATA_ADDRESSES
    return host_or_ip.lower().rstrip(".") in METADATA_NAMES


def canonical_host(host: str) -> str:
    """Lower-case a host and turn every numeric IP form into its one canonical text.

    ``2130706433``, ``0x7f000001``, ``0177.0.0.1`` and ``127.1`` all become
    ``127.0.0.1`` (``socket.inet_aton`` semantics, which is what resolvers apply), so
    they are checked as the address they really are and never sent to DNS.
    IPv6 literals lose their brackets and get their compressed form.
    """
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.rstrip(".")
    address = _parse_ip(text)
    if address is not None:
        zone = text.split("%", 1)[1] if "%" in text else None
        return f"{address.compressed}%{zone}" if zone else address.compressed
    if _NUMERIC_HOST.fullmatch(text):
        try:
            return str(ipaddress.IPv4Address(socket.inet_aton(text)))
        except OSError:
            pass
    return text


def host_port_key(host: str, port: int) -> str:
    """The ``host:port`` text used by the allow-list and per-host limits."""
    host = canonical_host(host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_host_port(entry: str) -> str:
    """Canonicalise an allow-list entry like ``127.0.0.1:8765`` or ``[::1]:80``."""
    parts = urlsplit("//" + entry.strip())
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad host:port entry {entry!r}") from exc
    if not parts.hostname or port is None:
        raise ValueError(f"allow-list entries are exact host:port pairs, got {entry!r}")
    return host_port_key(parts.hostname, port)


def default_resolver(host: str, port: int) -> list[str]:
    """Resolve with the system resolver; every address it gives is checked."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class AddressGuard:
    """Decides, for one (host, port), which IP addresses a connection may use.

    The private-range refusal is lifted only for exact ``host:port`` entries of the
    allow-list, matched on the URL's own host (after canonicalisation), never on what
    a name resolves to: a stranger's name that resolves to an allowed address stays
    refused. The metadata server is refused even if listed.
    """

    def __init__(self, resolver: Resolver, allowed_private_hosts: Iterable[str] = ()) -> None:
        self._resolver = resolver
        self._allowed = frozenset(parse_host_port(entry) for entry in allowed_private_hosts)

    def precheck(self, host: str, port: int) -> str:
        """Refuse what can be refused without I/O; return the canonical host."""
        canonical = canonical_host(host)
        if not canonical:
            raise FetchError(Outcome.UNSAFE_URL, "URL has no host")
        if is_metadata(canonical):
            raise FetchError(Outcome.UNSAFE_URL, f"refused {canonical}: {_METADATA_REASON} address")
        if _parse_ip(canonical) is not None:
            self._check_ip(canonical, canonical, port)
        return canonical

    def resolve(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` once and return only addresses that passed every check.

        Refuses the whole host if any of its addresses is unsafe, so a name that
        mixes public and private answers cannot be used to reach the private one.
        """
        canonical = self.precheck(host, port)
        if _parse_ip(canonical) is not None:
            return [canonical]
        try:
            addresses = self._resolver(canonical, port)
        except (OSError, UnicodeError) as exc:
            raise FetchError(
                Outcome.NETWORK_ERROR, f"could not resolve {canonical}: {exc}"
            ) from exc
        if not addresses:
            raise FetchError(Outcome.NETWORK_ERROR, f"{canonical} resolves to no address")
        for address in addresses:
            self._check_ip(canonical, address, port)
        return list(addresses)

    def _check_ip(self, host: str, address: str, port: int) -> None:
        reason = check_address(address)
        if reason is None:
            return
        if not is_metadata(address) and host_port_key(host, port) in self._allowed:
            return
        shown = address if host == canonical_host(address) else f"{host} ({address})"
        raise FetchError(Outcome.UNSAFE_URL, f"refused {shown}: {reason} address")


_SECRET_PARAM_PARTS = (
    "sig",
    "token",
    "key",
    "secret",
    "pass",
    "auth",
    "cred",
    "session",
    "x-goog-",
    "x-amz-",
)


def _is_secret_param(name: str) -> bool:
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_PARAM_PARTS)


def redact_url(url: str) -> str:
    """Show a URL with its userinfo and secret-looking query values replaced.

    Used for every URL that goes into a log line or an error reason, so signed URLs
    (X-Goog-Signature, X-Amz-Signature, token=...) and ``user:password@`` never leak.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "REDACTED@" + netloc.rsplit("@", 1)[1]
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = "&".join(
                f"{quote(name, safe='-_.~')}="
                + ("REDACTED" if _is_secret_param(name) else quote(value, safe="-_.~/:"))
                for name, value in pairs
            )
            if not pairs:
                query = "REDACTED"
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return "<unparseable URL>"
