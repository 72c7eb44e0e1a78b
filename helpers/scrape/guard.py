"""The private-address guard (SSRF): a search result must not make us fetch from the machine's own network.

Every connection the downloader opens resolves the host once, checks every
address, and connects to a checked address, so DNS rebinding has no gap.
"""

from __future__ import annotations

import ipaddress
import socket


class RefusedAddress(Exception):
    """A connection to an address the caller did not allow (not a requests error, so it reaches us as is)."""


def address_refusal(ip: str) -> str | None:
    """Why we will not connect to `ip` (private, loopback, ...), or None for an ordinary public address.

    IPv6 forms that carry an IPv4 address (mapped ::ffff:a.b.c.d, 6to4, Teredo,
    NAT64) are judged by the IPv4 address inside them.
    """
    try:
        addr = ipaddress.ip_address(ip.split("%")[0])
    except ValueError:
        return f"{ip!r} is not an IP address"
    if addr.version == 6:
        inner = addr.ipv4_mapped or addr.sixtofour or (addr.teredo[1] if addr.teredo else None)
        if inner is None and addr in ipaddress.ip_network("64:ff9b::/96"):
            inner = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if inner is not None:
            why = address_refusal(str(inner))
            return f"{addr} carries {inner}: {why}" if why else None
    for kind in ("loopback", "private", "link_local", "multicast", "unspecified", "reserved"):
        if getattr(addr, f"is_{kind}"):
            return f"{addr} is a {kind.replace('_', '-')} address"
    if not addr.is_global:
        return f"{addr} is not a public address"
    return None


def _guarded_connect(conn, allow_private: bool):
    """Resolve the host once, check every address, then connect to a checked address (never by name again).

    Checking the resolved address and then letting the library resolve the name
    again would leave a gap for DNS rebinding (the second answer can differ);
    so the socket is opened to the IP we checked, and TLS still verifies the
    host name. Any refused address refuses the host: an attacker controls the
    order of the answers.
    """
    import urllib3
    from urllib3.util.connection import create_connection

    try:
        infos = socket.getaddrinfo(conn._dns_host, conn.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if hasattr(urllib3.exceptions, "NameResolutionError"):  # urllib3 2.x
            raise urllib3.exceptions.NameResolutionError(conn.host, conn, exc) from exc
        raise urllib3.exceptions.NewConnectionError(conn, f"Failed to resolve {conn.host}: {exc}") from exc
    ips = list(dict.fromkeys(info[4][0] for info in infos))
    refusals = [why for why in map(address_refusal, ips) if why]
    if refusals and not allow_private:
        raise RefusedAddress(f"{conn.host} -> {refusals[0]} (allow_private=True permits it: only for a server you trust)")
    last: OSError | None = None
    for ip in ips:
        try:
            sock = create_connection((ip, conn.port), conn.timeout, source_address=conn.source_address,
                                     socket_options=conn.socket_options)
        except socket.timeout as exc:
            raise urllib3.exceptions.ConnectTimeoutError(conn, f"Connection to {conn.host} timed out") from exc
        except OSError as exc:
            last = exc
            continue
        conn.peer_address = ip if not address_refusal(ip) else f"{ip} (private, allowed by allow_private)"
        return sock
    raise urllib3.exceptions.NewConnectionError(conn, f"Failed to establish a new connection: {last}")


def _guarded_adapter(allow_private: bool, on_connect):
    """A requests adapter whose every connection goes through `_guarded_connect`; `on_connect(conn)` sees each one."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def _new_conn(self):
        sock = _guarded_connect(self, allow_private)
        on_connect(self)
        return sock

    http_conn = type("GuardedHTTPConnection", (HTTPConnection,), {"_new_conn": _new_conn})
    https_conn = type("GuardedHTTPSConnection", (HTTPSConnection,), {"_new_conn": _new_conn})
    pools = {"http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
             "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})}

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

    return GuardedAdapter()
