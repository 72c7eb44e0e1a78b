"""Build an image data set from the web, politely and safely: search back ends, one downloader, a manifest.

Every source (DuckDuckGo, Bing, Google, Instagram, a URL list, a local folder)
only produces `Candidate(url, source, query)`. Everything that touches the
network or the disk happens in `download()`, so every source gets the same
protection:

- politeness: robots.txt (cached per host), a per-host rate limit, an honest
  User-Agent, retries with back-off only for errors that may go away;
- safety: http(s) only (also after redirects, which are limited), no private,
  loopback, link-local or reserved addresses (checked on the address we really
  connect to, on every hop, unless `allow_private=True`), time-outs for
  connect, silence and the whole body, a byte cap enforced while reading,
  file names made from the content's SHA-256 (the server cannot choose them);
- quality: content type and magic bytes checked, every image really decoded,
  EXIF orientation applied, grey/CMYK/alpha turned into RGB, a minimum size,
  exact and near duplicates (pHash) removed across the whole domain folder;
- bookkeeping: one `manifest.csv` row per URL, appended as soon as it is
  known, so an interrupted run loses nothing and a re-run skips what it knows.
  Ctrl-C stops the run within a few seconds: connections in flight are cut,
  and a URL that did not finish gets no row, so the next run fetches it.

`local_image_server(folder)` serves a folder on 127.0.0.1 so the notebook
(and its tests) can run the real downloader without the web; they pass
`allow_private=True` for it, and the manifest's `address` column says so.
"""

from __future__ import annotations

import csv
import hashlib
import http.server
import io
import ipaddress
import os
import queue
import re
import socket
import threading
import time
import urllib.robotparser
import weakref
from collections import Counter, defaultdict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit
from urllib.request import url2pathname

import numpy as np

from .phash import HashIndex, from_hex, phash, to_hex
from .storage import remove

USER_AGENT = "polyjuice-course-scraper/0.1 (+https://github.com/polyjuice-course/polyjuice; course data set builder)"
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ["url", "source", "query", "path", "sha256", "phash", "width", "height", "status", "error", "address"]
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
CHUNK = 64 * 1024
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")

# Every row of the manifest ends in one of these (plus http_<code> for other HTTP answers).
STATUSES = {
    "ok": "kept: decoded, big enough, new",
    "duplicate": "same bytes as an image already seen (SHA-256)",
    "near_duplicate": "looks like a kept image (pHash within the threshold)",
    "too_small": "shorter side below min_side",
    "blank": "almost a single colour: a placeholder or an empty frame",
    "too_large": "more bytes than max_bytes (Content-Length or while reading) or more pixels than max_pixels",
    "not_image": "Content-Type or first bytes are not an image format we read",
    "corrupt": "claims to be an image but does not decode (e.g. truncated)",
    "timeout": "no answer in time, or the body trickled in too slowly",
    "connection_error": "could not connect, or the connection dropped",
    "http_404": "the server says the file is gone (any http_<code> is an HTTP answer other than 200)",
    "robots_disallowed": "robots.txt asks crawlers like us not to fetch this path",
    "robots_unreachable": "robots.txt could not be read, so we did not fetch from that host",
    "bad_redirect": "a redirect loop, too many redirects, or a redirect to a non-http(s) URL",
    "bad_url": "not an http(s) URL (or a malformed one)",
    "private_address": "the host is (or resolves to) a private, loopback, link-local or reserved address: "
                       "refused unless allow_private=True",
    "offline": "a web URL while POLYJUICE_OFFLINE=1 (only 127.0.0.1 is fetched)",
    "missing_file": "a local file from a folder source that is gone",
    "error": "an unexpected error (a bug): named here instead of stopping the run",
}
# Worth another try, now (with back-off) and in a later run (retry_transient=True).
TRANSIENT = {"timeout", "connection_error", "http_429", "robots_unreachable"}


def _is_transient(status: str) -> bool:
    return status in TRANSIENT or status.startswith("http_5")


# ---------------------------------------------------------------- sources

class SearchError(RuntimeError):
    """A search back end could not deliver; the message says why and what to try instead."""


@dataclass(frozen=True)
class Candidate:
    """One image URL to try, with where it came from (kept in the manifest)."""

    url: str
    source: str
    query: str = ""


def offline() -> bool:
    """True when $POLYJUICE_OFFLINE=1 (the tests and offline runs): no web searches then."""
    return os.environ.get("POLYJUICE_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def _refuse_if_offline(name: str) -> None:
    if offline():
        raise SearchError(
            f"{name} search refused: POLYJUICE_OFFLINE=1 is set. Unset it to search the web, "
            "or give the downloader a URL list (from_url_list) or a folder of images (from_folder)."
        )


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def web_reachable(host: str = "duckduckgo.com", port: int = 443, timeout: float = 3.0) -> tuple[bool, str]:
    """(True, "") when a TCP connection to `host` works; otherwise (False, why) - one quick check, no request."""
    if offline():
        return False, "POLYJUICE_OFFLINE=1 is set"
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return False, f"cannot reach {host} ({_short(exc, 120)})"
    return True, ""


def _check_search_args(query, max_results) -> None:
    """A bad query or count is one clear error before any request (not an empty or odd answer later)."""
    if not isinstance(query, str) or not query.strip():
        raise ValueError(f"query must be a non-empty string such as 'selfie', not {query!r}")
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise ValueError(f"max_results must be a whole number >= 1, not {max_results!r}")


def search_duckduckgo(query: str, max_results: int = 100, safesearch: str = "moderate", timeout: int = 10) -> list[Candidate]:
    """Image URLs from DuckDuckGo through the `ddgs` package."""
    _check_search_args(query, max_results)
    _refuse_if_offline("DuckDuckGo")
    from ddgs import DDGS

    try:
        results = DDGS(timeout=timeout).images(query, max_results=max_results, safesearch=safesearch, backend="duckduckgo")
    except Exception as exc:  # ddgs raises its own DDGSException family, and network errors through it
        if "no results" in str(exc).lower():
            raise SearchError(f"DuckDuckGo found no images for {query!r}; try a broader query.") from exc
        raise SearchError(
            f"DuckDuckGo image search for {query!r} failed ({_short(exc)}). Is the web reachable? "
            "DuckDuckGo also rate-limits busy clients: wait a minute or try another back end."
        ) from exc
    return [Candidate(r["image"], "duckduckgo", query) for r in results if r.get("image")]


def _icrawler_session():
    """A requests session set up exactly as icrawler's crawlers set theirs up (its maintained headers)."""
    from types import SimpleNamespace

    from icrawler import Crawler
    from icrawler.utils import ProxyPool

    holder = SimpleNamespace(proxy_pool=ProxyPool())
    Crawler.set_session(holder)
    return holder.session


def _icrawler_urls(feeder_cls, parser_cls, feed_kwargs: dict, max_results: int, name: str, timeout: float = 10.0) -> list[str]:
    """Use an icrawler feeder (result-page URLs) and parser (image URLs in a page), without its downloader.

    icrawler's own downloader would write files under names it picks, with no
    decode, de-duplication or manifest; we want only the URLs, so we drive the
    two components by hand, one page at a time, and stop at `max_results`.
    """
    import requests
    from icrawler.utils import Signal

    signal = Signal()
    signal.set(feeder_exited=False, parser_exited=False, reach_max_num=False)
    session = _icrawler_session()
    feeder, parser = feeder_cls(1, signal, session), parser_cls(1, signal, session)
    pages: queue.Queue = queue.Queue()  # unbounded: icrawler's own queue blocks when nobody drains it
    feeder.out_queue = pages
    feeder.feed(**feed_kwargs)
    urls: list[str] = []
    while not pages.empty() and len(urls) < max_results:
        page = pages.get_nowait()
        base = "{0.scheme}://{0.netloc}".format(urlsplit(page))
        try:
            response = session.get(page, timeout=timeout, headers={"Referer": base})
        except requests.RequestException as exc:
            if urls:
                break
            raise SearchError(f"{name} could not be reached ({_short(exc)}). Is the web reachable?") from exc
        if response.status_code != 200:
            if urls:
                break
            raise SearchError(f"{name} answered HTTP {response.status_code} for {page}; it may be blocking automated searches.")
        found = [t["file_url"] for t in (parser.parse(response) or []) if isinstance(t, dict) and t.get("file_url")]
        if not found:
            break
        urls += [u for u in found if u not in urls]
    if not urls:
        import icrawler

        raise SearchError(
            f"{name} returned a page but no image URLs in it: the site has probably changed its page and "
            f"icrawler {icrawler.__version__}'s parser no longer matches it (or it served a consent/robot check). "
            "Try another back end, or `pip install -U icrawler`."
        )
    return urls[:max_results]


def search_bing(query: str, max_results: int = 100) -> list[Candidate]:
    """Image URLs from Bing, through icrawler's Bing feeder and parser."""
    _check_search_args(query, max_results)
    _refuse_if_offline("Bing")
    from icrawler.builtin.bing import BingFeeder, BingParser

    kwargs = dict(keyword=query, offset=0, max_num=min(max_results, 1000))
    return [Candidate(u, "bing", query) for u in _icrawler_urls(BingFeeder, BingParser, kwargs, max_results, "Bing Images")]


def search_google(query: str, max_results: int = 100) -> list[Candidate]:
    """Image URLs from Google Images through icrawler - works only while icrawler's parser matches Google's page."""
    _check_search_args(query, max_results)
    _refuse_if_offline("Google")
    from icrawler.builtin.google import GoogleFeeder, GoogleParser

    kwargs = dict(keyword=query, offset=0, max_num=min(max_results, 1000))
    return [Candidate(u, "google", query) for u in _icrawler_urls(GoogleFeeder, GoogleParser, kwargs, max_results, "Google Images")]


def search_instagram(query: str, max_results: int = 100, login_user: str | None = None) -> list[Candidate]:
    """Photo URLs of a hashtag's recent posts through instaloader ("drag queen makeup" -> #dragqueenmakeup).

    Instagram now asks for a login for hashtags almost always. Log in once in a
    terminal with `instaloader --login YOUR_USER` (it saves a session file),
    then pass `login_user="YOUR_USER"`. Use an account you can afford to have
    rate-limited; cloud IPs (Colab) are often blocked outright.
    """
    _check_search_args(query, max_results)
    _refuse_if_offline("Instagram")
    import instaloader
    from instaloader.exceptions import InstaloaderException, LoginRequiredException

    tag = re.sub(r"\W", "", query.lower())
    if not tag:
        raise SearchError(f"{query!r} gives no usable hashtag; use letters, digits or underscores.")
    loader = instaloader.Instaloader(quiet=True, download_videos=False, max_connection_attempts=1, request_timeout=20)
    urls: list[str] = []
    try:
        if login_user:
            loader.load_session_from_file(login_user)
        hashtag = instaloader.Hashtag.from_name(loader.context, tag)
        for post in hashtag.get_posts_resumable():
            if post.typename == "GraphSidecar":
                urls += [n.display_url for n in post.get_sidecar_nodes() if not n.is_video]
            elif not post.is_video:
                urls.append(post.url)
            if len(urls) >= max_results:
                break
    except FileNotFoundError as exc:
        raise SearchError(f"No saved Instagram session for {login_user!r}: run `instaloader --login {login_user}` once, then retry.") from exc
    except LoginRequiredException as exc:
        raise SearchError(
            f"Instagram wants a login to list #{tag}. Run `instaloader --login YOUR_USER` once in a terminal, "
            "then pass login_user='YOUR_USER'."
        ) from exc
    except (InstaloaderException, OSError) as exc:
        if urls:  # keep what we got before Instagram stopped us
            return [Candidate(u, "instagram", f"#{tag}") for u in urls[:max_results]]
        raise SearchError(
            f"Instagram hashtag #{tag} failed ({_short(exc)}). Instagram blocks anonymous and cloud clients often; "
            "log in (see the docstring), wait, or use another back end."
        ) from exc
    return [Candidate(u, "instagram", f"#{tag}") for u in urls[:max_results]]


SEARCH_BACKENDS = {
    "duckduckgo": search_duckduckgo,
    "bing": search_bing,
    "google": search_google,
    "instagram": search_instagram,
}


def _backend_names(backends) -> list[str]:
    """A list of back-end names ("duckduckgo,bing" is accepted too), every one known - or a clear error now."""
    names = [b.strip() for b in backends.split(",") if b.strip()] if isinstance(backends, str) else list(backends)
    unknown = [b for b in names if b not in SEARCH_BACKENDS]
    if unknown or not names:
        raise ValueError(f"Unknown or no back end(s) {unknown or names!r}; choose from {sorted(SEARCH_BACKENDS)}")
    return names


def search(backend: str, query: str, max_results: int = 100, **kwargs) -> list[Candidate]:
    """Image URLs for `query` from one back end; raises SearchError with advice when it cannot deliver."""
    if backend not in SEARCH_BACKENDS:
        raise ValueError(f"Unknown back end {backend!r}; choose from {sorted(SEARCH_BACKENDS)}")
    return SEARCH_BACKENDS[backend](query, max_results=max_results, **kwargs)


def search_many(query: str, backends, max_results: int = 100, say=print, **kwargs) -> list[Candidate]:
    """Ask several back ends in turn; a failing one is reported in one line and skipped. URLs are de-duplicated."""
    backends = _backend_names(backends)
    _check_search_args(query, max_results)
    found, seen = [], set()
    for backend in backends:
        extra = {k: v for k, v in kwargs.items() if k == "login_user" and backend == "instagram"}
        try:
            got = search(backend, query, max_results, **extra)
        except SearchError as exc:
            say(f"  {backend:<10} skipped: {exc}")
            continue
        new = [c for c in got if c.url not in seen]
        seen.update(c.url for c in new)
        found += new
        say(f"  {backend:<10} {len(got)} URLs ({len(new)} new)")
    return found


def from_url_list(path: str | os.PathLike, query: str = "", source: str = "urls") -> list[Candidate]:
    """Candidates from a text file, one URL a line; blank lines and lines starting with # are ignored."""
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    urls = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return [Candidate(u, source, query) for u in dict.fromkeys(urls)]


def from_folder(folder: str | os.PathLike, query: str = "") -> list[Candidate]:
    """Candidates from images you already have (any depth); they go through the same checks as downloads."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [Candidate(p.resolve().as_uri(), "folder", query) for p in paths]


# ---------------------------------------------------------------- the downloader

@dataclass
class DownloadConfig:
    """Every knob of the downloader. The defaults are polite to servers and safe for a shared notebook."""

    workers: int = 8  # threads; hosts are interleaved so the rate limit rarely idles them
    per_host_interval: float = 1.0  # seconds between two requests to one host (robots.txt Crawl-delay can raise it)
    retries: int = 2  # extra tries after a time-out, dropped connection, HTTP 429 or 5xx - never after a 4xx
    backoff: float = 1.0  # first wait before a retry; doubles each time; Retry-After honoured up to max_backoff
    max_backoff: float = 30.0
    connect_timeout: float = 5.0
    read_timeout: float = 15.0  # longest silence between two packets
    total_timeout: float = 60.0  # the whole answer, so a server trickling bytes cannot hold a thread forever
    max_bytes: int = 15 * 2**20  # stop reading past this, with or without a Content-Length
    max_pixels: int = 50_000_000  # decompression bombs: a tiny file that decodes to gigabytes
    min_side: int = 256  # faces are cropped to 256x256 later; smaller images are no use
    max_side: int = 2048  # larger images are shrunk before saving (Drive space; faces need far less)
    min_contrast: float = 4.0  # standard deviation of the grey levels; below it the image is "blank"
    phash_threshold: int = 6  # Hamming distance at or below which an image counts as a near-duplicate
    max_redirects: int = 5
    respect_robots: bool = True
    user_agent: str = USER_AGENT
    jpeg_quality: int = 95
    # Private, loopback, link-local and reserved addresses are refused (a search result must not make us
    # fetch from the machine's own network). Our local sample server on 127.0.0.1 needs True, said explicitly.
    allow_private: bool = False

    def __post_init__(self) -> None:
        """Check every knob at once, so a bad value fails here and not as 3,000 odd manifest rows."""
        at_least = {"workers": 1, "retries": 0, "per_host_interval": 0, "backoff": 0, "max_backoff": 0,
                    "max_bytes": 1, "max_pixels": 1, "min_side": 0, "max_side": 1, "min_contrast": 0,
                    "phash_threshold": 0, "max_redirects": 0, "jpeg_quality": 1}
        above_zero = ("connect_timeout", "read_timeout", "total_timeout")
        for name in [*at_least, *above_zero]:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise TypeError(f"DownloadConfig.{name} must be a number, not {value!r}")
        for name, low in at_least.items():
            if getattr(self, name) < low:
                raise ValueError(f"DownloadConfig.{name}={getattr(self, name)!r} is too small: use {low} or more")
        for name in above_zero:
            if getattr(self, name) <= 0:
                raise ValueError(f"DownloadConfig.{name}={getattr(self, name)!r}: a time-out must be more than 0 seconds")
        for f in fields(self):
            if f.type == "int":  # 4.0 is fine and becomes 4; 2.5 retries is not
                value = getattr(self, f.name)
                if value != int(value):
                    raise ValueError(f"DownloadConfig.{f.name} must be a whole number, not {value!r}")
                setattr(self, f.name, int(value))
        if self.phash_threshold > 64 or self.jpeg_quality > 100:
            raise ValueError("DownloadConfig: phash_threshold is 0..64 bits and jpeg_quality 1..100")
        if not isinstance(self.user_agent, str) or not self.user_agent.strip():
            raise ValueError("DownloadConfig.user_agent must name the scraper (servers read it)")


# ---------------------------------------------------------------- the private-address guard (SSRF)

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


class _Stopped(Exception):
    """Ctrl-C was pressed: this URL did not finish and gets no manifest row (the next run fetches it)."""


class Skip(Exception):
    """Ends one URL with a named status (and why); never stops the run."""

    def __init__(self, status: str, error: str = "", retry_after: float | None = None):
        super().__init__(f"{status}: {error}")
        self.status, self.error, self.retry_after = status, error, retry_after


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


def sniff(data: bytes) -> str | None:
    """The image format the first bytes announce (magic numbers), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    return None


def _describe(data: bytes) -> str:
    head = data[:64].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg", b"<")):
        return "the bytes are HTML/XML text, not an image"
    if not data:
        return "empty body"
    return f"unknown first bytes {data[:8].hex()}"


def _to_rgb(im) -> np.ndarray:
    """RGB uint8 from any Pillow mode: transparency over white, CMYK and grey converted, 16-bit scaled."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    elif im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(im, dtype=np.float64)
        scale = 257.0 if a.max() > 255 else 1.0
        return np.repeat(np.clip(a / scale, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


_PIL_READY = threading.Lock()


def decode_image(data: bytes, max_pixels: int = DownloadConfig.max_pixels) -> np.ndarray:
    """Really decode the bytes (Pillow), apply the EXIF orientation, return upright RGB uint8."""
    from PIL import Image, ImageOps

    with _PIL_READY:
        Image.init()  # register every format plugin once, before threads race to do it lazily
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG", "PNG", "GIF", "WEBP", "BMP")) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise Skip("too_large", f"{w}x{h} = {w * h / 1e6:.0f} megapixels > max_pixels")
            upright = ImageOps.exif_transpose(im)  # also forces the full decode: truncation shows up here
            return _to_rgb(upright)
    except Skip:
        raise
    except Image.DecompressionBombError as exc:
        raise Skip("too_large", _short(exc, 160)) from exc
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for broken files
        raise Skip("corrupt", f"does not decode: {_short(exc, 160)}") from exc


def _limit_side(rgb: np.ndarray, max_side: int) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    s = max_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


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


def _save_jpeg(rgb: np.ndarray, folder: Path, name: str, quality: int) -> None:
    """Write atomically (temp file, then rename) and never over an existing file."""
    from PIL import Image

    dest = folder / name
    if dest.resolve().parent != folder.resolve():
        raise Skip("error", f"refusing to write outside {folder}: {name}")  # cannot happen with hex names
    if dest.exists():
        return  # same SHA-256 name = same content, written by an earlier (interrupted) run
    tmp = folder / f".{name}.{threading.get_ident()}.part"
    Image.fromarray(rgb).save(tmp, "JPEG", quality=quality)
    os.replace(tmp, dest)


def _process(cand: Candidate, run: _Run) -> dict | None:
    """Fetch, check, decode, de-duplicate and save one candidate; return its manifest row.

    None when Ctrl-C stopped it half way: no row, so the next run tries it again.
    """
    cfg = run.cfg
    row = dict.fromkeys(MANIFEST_COLUMNS, "")
    row.update(url=cand.url, source=cand.source, query=cand.query)
    try:
        if run.stop.is_set():
            raise _Stopped()
        data, row["address"] = _read_local(cand.url, cfg) if cand.source == "folder" else _fetch(cand.url, run)
        if sniff(data) is None:
            raise Skip("not_image", _describe(data))
        sha = hashlib.sha256(data).hexdigest()
        row["sha256"] = sha
        first = run.index.seen_sha(sha)
        if first:
            raise Skip("duplicate", f"same bytes as {first}")
        rgb = decode_image(data, cfg.max_pixels)
        row["height"], row["width"] = rgb.shape[:2]
        if min(rgb.shape[:2]) < cfg.min_side:
            raise Skip("too_small", f"{rgb.shape[1]}x{rgb.shape[0]}, shorter side < min_side={cfg.min_side}")
        if rgb.std() < cfg.min_contrast:
            raise Skip("blank", f"grey-level spread {rgb.std():.1f} < min_contrast={cfg.min_contrast:g}")
        rgb = _limit_side(rgb, cfg.max_side)
        row["height"], row["width"] = rgb.shape[:2]
        h = phash(rgb)
        row["phash"] = to_hex(h)
        name = f"{sha[:32]}.jpg"  # the server never chooses our file names
        if run.stop.is_set():
            raise _Stopped()
        status, note = run.index.claim(sha, h, name)
        if status != "ok":
            raise Skip(status, note)
        _save_jpeg(rgb, run.folder, name, cfg.jpeg_quality)
        row.update(path=name, status="ok")
    except _Stopped:
        return None
    except Skip as skip:
        if run.stop.is_set():  # probably our own cut connection: let the next run decide
            return None
        row.update(status=skip.status, error=skip.error)
    except Exception as exc:  # a bug must not stop a 3,000-image run: name it and go on
        if run.stop.is_set():
            return None
        row.update(status="error", error=_short(exc, 300))
    row["error"] = str(row["error"])[:300]
    return row


# ---------------------------------------------------------------- the manifest

def read_manifest(folder: str | os.PathLike) -> list[dict]:
    """All complete rows of `folder/manifest.csv` (a row cut short by a crash is ignored).

    A manifest written before a column was added still reads: the new column is empty.
    """
    path = Path(folder) / MANIFEST
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r.get("status") and None not in r.values() and None not in r]
    return [{**dict.fromkeys(MANIFEST_COLUMNS, ""), **r} for r in rows]


def latest_rows(folder: str | os.PathLike) -> dict[str, dict]:
    """url -> its newest row (a URL tried again in a later run has several)."""
    return {r["url"]: r for r in read_manifest(folder)}


def manifest_counts(folder: str | os.PathLike) -> Counter:
    """How many URLs of the domain ended in each status (newest row per URL)."""
    return Counter(r["status"] for r in latest_rows(folder).values())


def kept_images(folder: str | os.PathLike) -> list[Path]:
    """The kept images of a domain folder, in download order."""
    folder = Path(folder)
    return [folder / r["path"] for r in latest_rows(folder).values() if r["status"] == "ok" and (folder / r["path"]).exists()]


class _ManifestWriter:
    """Append rows one by one, flushed at once, so a crash or Ctrl-C loses nothing already written."""

    def __init__(self, folder: Path):
        self.path = folder / MANIFEST
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if not fresh:
            self._drop_partial_last_line()
            self._upgrade_columns(folder)
        self.file = open(self.path, "a", newline="", encoding="utf-8")
        self.writer = csv.DictWriter(self.file, fieldnames=MANIFEST_COLUMNS)
        if fresh:
            self.writer.writeheader()
        self.rows = 0

    def _drop_partial_last_line(self) -> None:
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):  # killed mid-row: cut back to the last complete one
            with open(self.path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def _upgrade_columns(self, folder: Path) -> None:
        """An older manifest (fewer columns) is rewritten once with today's header, atomically."""
        with open(self.path, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
        if header == MANIFEST_COLUMNS:
            return
        rows = read_manifest(folder)
        tmp = self.path.with_name(f".{MANIFEST}.upgrade")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def write(self, row: dict) -> None:
        self.writer.writerow({k: " ".join(str(v).split()) if k in ("source", "query", "error") else v for k, v in row.items()})
        self.file.flush()
        self.rows += 1
        if self.rows % 25 == 0:
            os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()


@dataclass
class ScrapeReport:
    """What one download() call did."""

    folder: Path
    counts: Counter  # status -> URLs tried in this run
    known: int  # URLs skipped because the manifest already had them
    interrupted: bool
    seconds: float
    kept_total: int  # ok images in the folder now

    def __str__(self) -> str:
        tried = sum(self.counts.values())
        parts = ", ".join(f"{n} {s}" for s, n in self.counts.most_common())
        note = " (interrupted: re-run to continue)" if self.interrupted else ""
        return (f"{self.folder.name}: tried {tried} URLs in {self.seconds:.1f} s{note} -> {parts or 'nothing new'}; "
                f"{self.known} already in the manifest; {self.kept_total} images kept in total")


def _clean_url(url: str) -> str:
    """Trim, and percent-encode control characters and spaces (as browsers do): one URL, one manifest line."""
    return re.sub(r"[\x00-\x20\x7f]", lambda m: f"%{ord(m.group()):02X}", url.strip())


def _interleave_hosts(cands: list[Candidate]) -> list[Candidate]:
    """Round-robin over hosts so threads are not all waiting on one host's rate limit."""
    by_host: dict[str, list[Candidate]] = defaultdict(list)
    for c in cands:
        try:
            host = urlsplit(c.url).netloc
        except ValueError:  # a malformed URL: it gets its bad_url row from _process like any other
            host = ""
        by_host[host].append(c)
    lanes = list(by_host.values())
    out = []
    for i in range(max((len(lane) for lane in lanes), default=0)):
        out += [lane[i] for lane in lanes if i < len(lane)]
    return out


def _load_index(rows: dict[str, dict], threshold: int) -> HashIndex:
    index = HashIndex(threshold)
    for r in rows.values():
        if r["status"] == "ok" and r["phash"]:
            index.add(r["sha256"], from_hex(r["phash"]), r["path"])
        elif r["sha256"]:
            index.add_sha(r["sha256"], r["url"])
    return index


def _config_for(config: DownloadConfig | None, settings: dict) -> DownloadConfig:
    """`config` with `settings` applied; an unknown or bad setting is one clear error, raised now."""
    if config is not None and not isinstance(config, DownloadConfig):
        raise TypeError(f"config must be a DownloadConfig, not {type(config).__name__}; pass settings as keywords instead")
    known = set(DownloadConfig.__dataclass_fields__)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"download() got unknown setting(s) {unknown}; DownloadConfig has {sorted(known)}")
    return replace(config or DownloadConfig(), **settings)


# Ctrl-C: how long to wait for the work in flight to wind down once its connections are cut.
STOP_GRACE_S = 3.0


def download(
    candidates,
    folder: str | os.PathLike,
    config: DownloadConfig | None = None,
    max_images: int | None = None,
    retry_transient: bool = False,
    progress: bool = True,
    **settings,
) -> ScrapeReport:
    """Fetch candidates into `folder` (one domain), appending one manifest row per URL.

    URLs already in the manifest are skipped (also those that failed, unless
    `retry_transient` and the failure may have been temporary). Stops adding
    work once the folder holds `max_images` kept images. Ctrl-C stops within a
    few seconds: connections in flight are cut, every finished URL keeps its
    row, unfinished ones get none, and the next call continues. `settings`
    override fields of `config` (e.g. `workers=4`, `allow_private=True`).
    """
    from tqdm.auto import tqdm

    cfg = _config_for(config, settings)
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 0):
        raise ValueError(f"max_images must be None (no limit) or a whole number >= 0, not {max_images!r}")
    if isinstance(candidates, (str, Candidate)):
        raise TypeError("candidates must be a list of Candidate (e.g. from search_many or from_url_list), not a single one")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".*.part"):  # temp files of a run that was killed
        remove(stale)
    t0 = time.monotonic()
    known_rows = latest_rows(folder)
    kept = sum(r["status"] == "ok" for r in known_rows.values())
    todo, known, queued = [], 0, set()
    for c in candidates:
        if not isinstance(c, Candidate):
            raise TypeError(f"candidates must be Candidate objects, got {c!r}; wrap plain URLs as Candidate(url, 'urls')")
        if _clean_url(str(c.url)) != c.url:
            c = replace(c, url=_clean_url(str(c.url)))
        row = known_rows.get(c.url)
        if c.url in queued or (row and not (retry_transient and _is_transient(row["status"]))):
            known += 1
            continue
        queued.add(c.url)
        todo.append(c)
    todo = _interleave_hosts(todo)
    run = _Run(cfg, folder, _load_index(known_rows, cfg.phash_threshold), HostLimiter(cfg.per_host_interval))
    run.robots = RobotsCache(cfg, run.session, run.limiter, run.stop)

    counts: Counter = Counter()
    interrupted = False
    writer = _ManifestWriter(folder)
    bar = tqdm(total=len(todo), desc=f"{folder.name}", unit="url", disable=not progress)
    pool = ThreadPoolExecutor(max_workers=cfg.workers, thread_name_prefix="scrape")
    pending: set = set()
    work = iter(todo)

    def record(fut) -> None:
        nonlocal kept
        row = fut.result()
        if row is None:  # stopped half way by Ctrl-C: no row, the next run fetches it
            return
        writer.write(row)
        counts[row["status"]] += 1
        kept += row["status"] == "ok"
        bar.update(1)
        bar.set_postfix(kept=kept, refresh=False)

    try:
        while True:
            while len(pending) < 2 * cfg.workers and (max_images is None or kept < max_images):
                cand = next(work, None)
                if cand is None:
                    break
                pending.add(pool.submit(_process, cand, run))
            if not pending:
                break
            # A short timeout: a Ctrl-C delivered to another thread is still seen within a moment.
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for fut in done:
                record(fut)
    except KeyboardInterrupt:
        interrupted = True
        run.halt()  # workers see the stop flag, cut connections end their reads at once
        for fut in pending:
            fut.cancel()
        try:  # give the few running a moment to end; keep the rows of those that finished
            finished, _ = wait([f for f in pending if not f.cancelled()], timeout=STOP_GRACE_S)
            for fut in finished:
                record(fut)
        except KeyboardInterrupt:
            pass
    finally:
        run.stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        writer.close()
        bar.close()
    return ScrapeReport(folder, counts, known, interrupted, time.monotonic() - t0, kept)


def status_table(counts: Counter) -> str:
    """A Markdown table of counts by status, with what each status means."""
    lines = ["| status | count | meaning |", "|---|---:|---|"]
    for status, n in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", -kv[1], kv[0])):
        meaning = STATUSES.get(status, "the server answered with this HTTP code" if status.startswith("http_") else "")
        lines.append(f"| {status} | {n} | {meaning} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- offline sources: sample frames on a local server

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log in the notebook
        pass


class LocalImageServer:
    """A folder served over real HTTP on 127.0.0.1 (random free port), for offline runs and tests."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).resolve()
        handler = partial(_QuietHandler, directory=str(self.folder))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url_for(self, path: str | os.PathLike) -> str:
        """The URL of a file inside the served folder."""
        rel = Path(path).resolve().relative_to(self.folder).as_posix()
        return f"{self.url}/{quote(rel)}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalImageServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def local_image_server(folder: str | os.PathLike) -> LocalImageServer:
    """Serve `folder` on 127.0.0.1: `with local_image_server(f) as srv: srv.url_for(path)`; or call `.close()`."""
    return LocalImageServer(folder)


def export_frames(video: str | os.PathLike, folder: str | os.PathLike, every: int = 10, max_frames: int | None = None,
                  prefix: str | None = None, quality: int = 92) -> list[Path]:
    """Save every `every`-th frame of a video as JPEG (upright, RGB) - stand-ins for photos found on the web."""
    from PIL import Image

    from .video import iter_frames

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    prefix = prefix or re.sub(r"[^A-Za-z0-9_-]", "_", Path(video).stem)
    paths = []
    for frame in iter_frames(video, every=every, max_frames=max_frames):
        path = folder / f"{prefix}_{frame.index:05d}.jpg"
        if not path.exists():
            Image.fromarray(frame.image).save(path, "JPEG", quality=quality)
        paths.append(path)
    return paths


# domain -> (sample video, keep every n-th frame): the offline stand-ins for scraped photos
SAMPLE_DOMAINS = {"selfie": (("woman.mp4", 16), ("man.mp4", 12)), "drag": (("megamind.avi", 10),)}


def serve_sample_frames(samples: dict, folder: str | os.PathLike, domains: dict = SAMPLE_DOMAINS,
                        max_frames: int | None = 30) -> tuple[LocalImageServer, dict[str, list[Candidate]]]:
    """Frames of the sample videos as JPEGs on a local HTTP server, as one URL-list file per domain.

    Each list also holds a URL that answers 404 and an HTML page saved as .jpg,
    so the offline run shows the downloader's checks at work. Returns the running
    server (close it when done) and domain -> candidates. The server is on
    127.0.0.1, which the downloader refuses unless told: download these with
    `allow_private=True` (the manifest's address column then says so).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fake = folder / "not_a_photo.jpg"
    fake.write_text("<!DOCTYPE html><html><body>An error page saved under a .jpg name</body></html>")
    server = local_image_server(folder)
    out = {}
    for domain, videos in domains.items():
        frames = [p for name, every in videos for p in export_frames(samples[name], folder / domain, every, max_frames)]
        urls = [server.url_for(p) for p in frames] + [server.url_for(fake), f"{server.url}/{domain}/gone.jpg"]
        url_list = folder / f"{domain}_urls.txt"
        url_list.write_text("\n".join(urls) + "\n")
        out[domain] = from_url_list(url_list, query="sample frames", source="local")
    return server, out


def square_thumbnails(paths, size: int = 128) -> list[np.ndarray]:
    """Centre-cropped square RGB thumbnails, for a grid of what came in."""
    import cv2
    from PIL import Image

    thumbs = []
    for p in paths:
        with Image.open(p) as im:
            rgb = np.asarray(im.convert("RGB"))
        h, w = rgb.shape[:2]
        s = min(h, w)
        crop = rgb[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        thumbs.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return thumbs
