"""Fetch one URL within the limits: redirects checked hop by hop, time-outs, a byte cap, retries that may help.

`_Run` is what the worker threads of one download() share: the config, the
per-thread guarded sessions, the rate limiter, robots.txt and the Ctrl-C flag.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

from .config import CHUNK, LOCAL_HOSTS, DownloadConfig, Skip, _is_transient, _short, _Stopped, offline
from .guard import RefusedAddress, _guarded_adapter

if TYPE_CHECKING:
    from ..phash import HashIndex
    from .polite import HostLimiter, RobotsCache


@dataclass
class _Run:
    """What the worker threads share during one download() call."""

    cfg: DownloadConfig
    folder: Path
    index: HashIndex
    limiter: HostLimiter
    robots: RobotsCache | None = None
    local: threading.local = field(default_factory=threading.local)
    stop: threading.Event = field(default_factory=threading.Event)  # set by Ctrl-C: every worker winds down
    _connections: weakref.WeakSet = field(default_factory=weakref.WeakSet)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def session(self):
        """One requests.Session per thread (sessions are not thread-safe), keeping connections alive.

        Every connection goes through the private-address guard. Proxy settings
        from the environment are ignored (trust_env=False): behind a proxy the
        guard would only see the proxy's address, not the server's.
        """
        import requests

        s = getattr(self.local, "session", None)
        if s is None:
            s = requests.Session()
            s.trust_env = False
            s.headers.update({"User-Agent": self.cfg.user_agent, "Accept": "image/*", "Accept-Encoding": "identity"})
            s.max_redirects = self.cfg.max_redirects
            adapter = _guarded_adapter(self.cfg.allow_private, self._track)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            self.local.session = s
        return s

    def _track(self, conn) -> None:
        with self._lock:
            self._connections.add(conn)

    def halt(self) -> None:
        """Ctrl-C: tell the workers to stop and cut every open connection, so none waits out a time-out."""
        self.stop.set()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            sock = getattr(conn, "sock", None)
            try:
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed


def _read_capped(r, limit: int, deadline: float, read_timeout: float, truncate: bool = False,
                 stop: threading.Event | None = None) -> bytes:
    """Read the body in small pieces, stopping at `limit` bytes (an error unless `truncate`), the deadline or `stop`."""
    import urllib3

    buf = bytearray()
    read1 = getattr(r.raw, "read1", None)  # returns what has arrived, so a trickle cannot block us for long
    stopped = stop.is_set if stop is not None else (lambda: False)
    try:
        while True:
            if stopped():
                raise _Stopped()
            if time.monotonic() > deadline:
                raise Skip("timeout", "body not complete before the total_timeout (server too slow)")
            chunk = read1(CHUNK, decode_content=True) if read1 else r.raw.read(8192, decode_content=True)
            if not chunk:
                if stopped():  # the connection was cut by halt(): this is not the whole body
                    raise _Stopped()
                return bytes(buf)
            buf += chunk
            if len(buf) > limit:
                if truncate:
                    return bytes(buf[:limit])
                raise Skip("too_large", f"body passed max_bytes={limit}; stopped reading")
    except (urllib3.exceptions.ReadTimeoutError, socket.timeout) as exc:
        if stopped():
            raise _Stopped() from exc
        raise Skip("timeout", f"no data for {read_timeout:g} s") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if stopped():
            raise _Stopped() from exc
        raise Skip("connection_error", f"connection dropped mid-body ({_short(exc, 120)})") from exc


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None  # an HTTP date: just use our own back-off


def _split(url: str, hop: int = 0):
    """urlsplit, with a malformed URL (`http://[::1`) turned into a named skip instead of a ValueError."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - parsed lazily: raises on a port that is not a number in range
        if "[" in parts.netloc and not re.fullmatch(r"([^@]*@)?\[[^\]]*\](:\d*)?", parts.netloc):
            raise ValueError(f"{parts.netloc!r} has text around its [IPv6] address")
        if ":" in host:
            ipaddress.IPv6Address(host.split("%")[0])  # only an IPv6 literal may hold a colon
        elif host and not re.fullmatch(r"[\w.-]+", host):
            raise ValueError(f"{host!r} is not a host name")
    except ValueError as exc:
        raise Skip("bad_redirect" if hop else "bad_url", f"malformed URL ({_short(exc, 80)}): {url[:120]}") from exc
    return parts


def _fetch_once(url: str, run: _Run) -> tuple[bytes, str]:
    """One attempt: follow redirects by hand (each hop checked), then read the body within the limits.

    Returns the body and the address it came from (as the manifest shows it).
    The total_timeout budget starts when a request is sent, after the polite
    wait for the host's rate limit, which is ours and not the server's delay.
    """
    import requests

    cfg = run.cfg
    seen = set()
    for hop in range(cfg.max_redirects + 1):
        if run.stop.is_set():
            raise _Stopped()
        parts = _split(url, hop)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            what = "redirected to a non-http(s) URL" if hop else "not an http(s) URL"
            raise Skip("bad_redirect" if hop else "bad_url", f"{what}: {url[:120]}")
        if url in seen:
            raise Skip("bad_redirect", f"redirect loop back to {url[:120]}")
        seen.add(url)
        if offline() and parts.hostname not in LOCAL_HOSTS:
            raise Skip("offline", "POLYJUICE_OFFLINE=1: only 127.0.0.1 is fetched")
        try:
            if cfg.respect_robots:
                run.robots.check(url)
        except Skip as skip:
            if hop and skip.status == "private_address":
                raise Skip(skip.status, f"redirected to {skip.error}") from skip
            raise
        run.limiter.wait(parts.hostname, run.stop)
        deadline = time.monotonic() + cfg.total_timeout
        try:
            r = run.session().get(url, stream=True, allow_redirects=False, timeout=(cfg.connect_timeout, cfg.read_timeout))
        except RefusedAddress as exc:
            where = "redirected to " if hop else ""
            raise Skip("private_address", f"{where}{exc}") from exc
        except requests.RequestException as exc:
            if run.stop.is_set():
                raise _Stopped() from exc
            if isinstance(exc, requests.Timeout):
                raise Skip("timeout", _short(exc, 160)) from exc
            if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema)):
                raise Skip("bad_url", _short(exc, 160)) from exc
            raise Skip("connection_error", _short(exc, 160)) from exc
        with r:
            if r.is_redirect:
                url = urljoin(url, r.headers["location"])
                continue
            if r.status_code != 200:
                raise Skip(f"http_{r.status_code}", r.reason or "", _retry_after(r.headers.get("retry-after")))
            ctype = r.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype and not ctype.startswith("image/") and ctype not in ("application/octet-stream", "binary/octet-stream"):
                raise Skip("not_image", f"Content-Type {ctype}")
            length = r.headers.get("content-length", "")
            if length.isdigit() and int(length) > cfg.max_bytes:
                raise Skip("too_large", f"Content-Length {length} > max_bytes={cfg.max_bytes}")
            address = getattr(getattr(r.raw, "connection", None), "peer_address", "")
            return _read_capped(r, cfg.max_bytes, deadline, cfg.read_timeout, stop=run.stop), address
    raise Skip("bad_redirect", f"more than {cfg.max_redirects} redirects")


def _fetch(url: str, run: _Run) -> tuple[bytes, str]:
    """_fetch_once with retries and exponential back-off, only for errors that may go away."""
    cfg = run.cfg
    for attempt in range(cfg.retries + 1):
        try:
            return _fetch_once(url, run)
        except Skip as skip:
            if attempt == cfg.retries or not _is_transient(skip.status) or skip.status == "robots_unreachable":
                raise
            wait_s = cfg.backoff * 2**attempt
            if skip.retry_after is not None:
                wait_s = max(wait_s, skip.retry_after)
            if run.stop.wait(min(wait_s, cfg.max_backoff)):
                raise _Stopped() from skip
    raise RuntimeError(f"_fetch made no attempt (retries={cfg.retries}); DownloadConfig should have refused that")


def _read_local(url: str, cfg: DownloadConfig) -> tuple[bytes, str]:
    path = Path(url2pathname(_split(url).path))
    if not path.is_file():
        raise Skip("missing_file", str(path))
    if path.stat().st_size > cfg.max_bytes:
        raise Skip("too_large", f"{path.stat().st_size} bytes > max_bytes={cfg.max_bytes}")
    return path.read_bytes(), ""
