"""Politeness: at most one request per interval to each host, and robots.txt read once per host and obeyed."""

from __future__ import annotations

import threading
import time
import urllib.robotparser
from collections import defaultdict
from urllib.parse import urlsplit

from .config import DownloadConfig, Skip, _short, _Stopped
from .fetch import _read_capped
from .guard import RefusedAddress


class HostLimiter:
    """At most one request per `interval` seconds to each host, shared by all threads."""

    def __init__(self, interval: float):
        self.interval = interval
        self._next: dict[str, float] = {}
        self._own: dict[str, float] = {}
        self._lock = threading.Lock()

    def set_interval(self, host: str, seconds: float) -> None:
        with self._lock:
            self._own[host] = max(self.interval, seconds)

    def wait(self, host: str, stop: threading.Event | None = None) -> None:
        """Sleep until this host's next free slot; raise _Stopped at once if `stop` is set meanwhile."""
        with self._lock:  # reserve the next free slot, then sleep outside the lock
            now = time.monotonic()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + self._own.get(host, self.interval)
        if slot > now:
            if stop is None:
                time.sleep(slot - now)
            elif stop.wait(slot - now):
                raise _Stopped()


class RobotsCache:
    """robots.txt of each host, fetched once per run (RFC 9309: 4xx = allow all, 5xx = disallow all)."""

    def __init__(self, cfg: DownloadConfig, session_for, limiter: HostLimiter, stop: threading.Event | None = None):
        self.cfg, self.session_for, self.limiter, self.stop = cfg, session_for, limiter, stop
        self._entries: dict[str, object] = {}
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def check(self, url: str) -> None:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        with self._guard:
            lock = self._locks[key]
        with lock:  # one thread fetches, the others wait for its answer
            if key not in self._entries:
                entry = self._load(key, parts.hostname or "")
                if self.stop is not None and self.stop.is_set():
                    raise _Stopped()  # an answer cut short by Ctrl-C says nothing about the host
                self._entries[key] = entry
        entry = self._entries[key]
        if isinstance(entry, Skip):
            raise Skip(entry.status, entry.error)
        if not entry.can_fetch(self.cfg.user_agent, url):
            raise Skip("robots_disallowed", f"{key}/robots.txt disallows this path for our User-Agent")

    def _load(self, key: str, host: str):
        import requests

        cfg = self.cfg
        rp = urllib.robotparser.RobotFileParser(key + "/robots.txt")
        self.limiter.wait(host, self.stop)
        deadline = time.monotonic() + cfg.total_timeout
        try:  # requests follows up to max_redirects redirects here, as RFC 9309 allows
            with self.session_for().get(key + "/robots.txt", stream=True, headers={"Accept": "text/plain, */*"},
                                        timeout=(cfg.connect_timeout, cfg.read_timeout)) as r:
                status = r.status_code
                body = _read_capped(r, 512 * 1024, deadline, cfg.read_timeout, truncate=True, stop=self.stop) if status < 400 else b""
        except RefusedAddress as exc:
            return Skip("private_address", str(exc))  # about the host, not its robots.txt
        except requests.RequestException as exc:
            return Skip("robots_unreachable", f"robots.txt: {_short(exc, 160)}")
        except Skip as skip:
            return Skip("robots_unreachable", f"robots.txt: {skip.error}")
        if status >= 500:
            rp.disallow_all = True  # the host is in trouble: RFC 9309 says assume everything is disallowed
        elif status >= 400:
            rp.allow_all = True
        else:
            rp.parse(body.decode("utf-8", "replace").splitlines())  # RFC 9309: parse at least 500 KiB
            delay = rp.crawl_delay(self.cfg.user_agent)
            if delay:
                self.limiter.set_interval(host, min(float(delay), 60.0))
        return rp
