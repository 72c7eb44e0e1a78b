"""What every part of the scraper shares: the downloader's knobs, the statuses a URL can end in, and how it ends.

`DownloadConfig` holds every knob (checked at once); `STATUSES` names every way
a URL can end in the manifest; `Skip` ends one URL with such a status and
never stops the run; `_Stopped` marks a URL cut short by Ctrl-C (it gets no row).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

USER_AGENT = "polyjuice-course-scraper/0.1 (+https://github.com/polyjuice-course/polyjuice; course data set builder)"
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


def offline() -> bool:
    """True when $POLYJUICE_OFFLINE=1 (the tests and offline runs): no web searches then."""
    return os.environ.get("POLYJUICE_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


class _Stopped(Exception):
    """Ctrl-C was pressed: this URL did not finish and gets no manifest row (the next run fetches it)."""


class Skip(Exception):
    """Ends one URL with a named status (and why); never stops the run."""

    def __init__(self, status: str, error: str = "", retry_after: float | None = None):
        super().__init__(f"{status}: {error}")
        self.status, self.error, self.retry_after = status, error, retry_after
