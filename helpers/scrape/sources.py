"""Search back ends: a query in, image URLs out (`Candidate`s); nothing is downloaded here.

Each back end is a thin adapter over a maintained package (ddgs, icrawler,
instaloader), because search pages change every few months. A back end that
cannot deliver raises `SearchError` with advice; `search_many` reports it in
one line and asks the next one. URL lists and local folders are sources too.
"""

from __future__ import annotations

import os
import queue
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .config import _short, offline


class SearchError(RuntimeError):
    """A search back end could not deliver; the message says why and what to try instead."""


@dataclass(frozen=True)
class Candidate:
    """One image URL to try, with where it came from (kept in the manifest)."""

    url: str
    source: str
    query: str = ""


def _refuse_if_offline(name: str) -> None:
    if offline():
        raise SearchError(
            f"{name} search refused: POLYJUICE_OFFLINE=1 is set. Unset it to search the web, "
            "or give the downloader a URL list (from_url_list) or a folder of images (from_folder)."
        )


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
