"""The scraper against a hostile HTTP server on 127.0.0.1: every bad answer ends as a named, counted status.

The server below is written for these tests (not the conftest one): it can
fail, stall, trickle, lie about types and sizes, loop redirects and point at
files outside the web root. No test touches the internet.
"""

from __future__ import annotations

import _thread
import csv
import functools
import http.server
import io
import re
import threading
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from helpers import scrape
from helpers.scrape import fetch as scrape_fetch
from helpers.scrape import guard as scrape_guard
from helpers.scrape import sources as scrape_sources
from helpers.phash import HashIndex, dct2, hamming, phash
from helpers.scrape import Candidate, SearchError, download, latest_rows, manifest_counts

# Short limits keep the whole file fast; the server's stalls are longer than these. Our servers are on
# 127.0.0.1, which the downloader refuses unless allowed: the tests allow it explicitly, as the notebook does.
FAST = dict(workers=4, per_host_interval=0.0, retries=1, backoff=0.05, connect_timeout=1.0, read_timeout=0.5,
            total_timeout=1.0, max_bytes=300_000, max_pixels=4_000_000, min_side=64, progress=False, allow_private=True)


# ---------------------------------------------------------------- test images

def blobs(seed: int, w: int = 320, h: int = 240) -> np.ndarray:
    """A smooth random RGB picture: each seed looks different to a perceptual hash, and JPEGs stay small."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def encode(rgb_or_image, fmt: str = "JPEG", **kw) -> bytes:
    im = rgb_or_image if isinstance(rgb_or_image, Image.Image) else Image.fromarray(rgb_or_image)
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def load_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "RGB", f"{path.name} saved as {im.mode}"
        return np.asarray(im)


UPRIGHT = blobs(7, 200, 300)  # portrait; stored sideways with an EXIF tag below
ALPHA = np.dstack([blobs(8), np.where(np.arange(320)[None, :] < 160, 0, 255).repeat(240, 0).astype(np.uint8)])
CMYK_SOURCE = blobs(9)


def rotated_jpeg() -> bytes:
    stored = Image.fromarray(UPRIGHT).transpose(Image.Transpose.ROTATE_90)  # sideways pixels, 300x200
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    return encode(stored, exif=exif)


@functools.lru_cache(maxsize=1)
def build_site() -> dict:
    """path -> bytes of the plain files the hostile server serves (made once; copy before changing)."""
    a = blobs(1, 400, 300)
    a_jpg = encode(a)
    return {
        "/img/a.jpg": a_jpg,
        "/img/a-copy.jpg": a_jpg,  # same bytes again
        "/img/a-resized.jpg": encode(cv2.resize(a, (260, 195), interpolation=cv2.INTER_AREA), quality=80),
        "/img/b.jpg": encode(blobs(2)),  # reached through a redirect
        "/img/c.jpg": encode(blobs(3)),  # served for the ../../ path
        "/img/d.jpg": encode(blobs(4)),  # served for the absolute path
        "/img/e.jpg": encode(blobs(5)),
        "/img/f.jpg": encode(blobs(6)),
        "/private/p.jpg": encode(blobs(10)),
        "/img/alpha.png": encode(ALPHA, "PNG"),
        "/img/grey.jpg": encode(Image.fromarray(blobs(11)).convert("L")),
        "/img/cmyk.jpg": encode(Image.fromarray(CMYK_SOURCE).convert("CMYK")),
        "/img/rotated.jpg": rotated_jpeg(),
        "/img/tiny.jpg": encode(blobs(12, 32, 32)),
        "/img/blank.png": encode(np.full((200, 200, 3), 200, np.uint8), "PNG"),  # a grey placeholder
        "/img/bomb.png": encode(np.zeros((3000, 3000), np.uint8), "PNG"),  # 9 megapixels in a few KB
        "/img/truncated.jpg": encode(blobs(13))[:1500],
    }


# ---------------------------------------------------------------- the hostile server

class Hostile(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    seen: list = []  # (path, user agent) of every request
    times: list = []  # (monotonic time, path) of every request
    robots = (200, b"User-agent: *\nDisallow: /private/\n")
    redirect_to = ""
    fast = False  # /drip/ and /stall/ answer at once (the re-run after a Ctrl-C)
    ctrl_c = None  # a callable that "presses Ctrl-C" once the first drip has started

    def log_message(self, *args):
        pass

    def drip(self, body: bytes):
        if type(self).fast:
            return self.send(200, body)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for i, byte in enumerate(body[:600]):
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            if i == 5 and type(self).ctrl_c:
                press, type(self).ctrl_c = type(self).ctrl_c, None
                press()
            time.sleep(0.1)
        return None

    def send(self, code: int, body: bytes = b"", ctype: str = "image/jpeg", headers: dict | None = None, length: bool = True):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        if length:
            self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        try:
            type(self).seen.append((self.path, self.headers.get("User-Agent", "")))
            type(self).times.append((time.monotonic(), self.path))
            self.route(self.path)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up on purpose (cap or deadline reached)

    def route(self, path: str):
        files = type(self).files
        if path == "/robots.txt":
            return self.send(*type(self).robots, "text/plain")
        if path in files:
            return self.send(200, files[path], "image/png" if path.endswith(".png") else "image/jpeg")
        if "..%2F" in path or "/../" in path:  # a path that tries to climb out; named after an outside file
            return self.send(200, files["/img/c.jpg"], headers={"Content-Disposition": 'attachment; filename="../../escaped.jpg"'})
        if path.startswith(("//", "/etc/")):  # an absolute path (http.server folds the leading //)
            return self.send(200, files["/img/d.jpg"], headers={"Content-Disposition": 'attachment; filename="/tmp/escaped.jpg"'})
        if path == "/error.jpg":
            return self.send(500, b"oops", "text/plain")
        if path == "/slow.jpg":
            time.sleep(1.5)  # longer than read_timeout
            return self.send(200, files["/img/e.jpg"])
        if path == "/trickle.jpg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for byte in files["/img/f.jpg"][:60]:  # one byte every 50 ms: never silent long enough for read_timeout
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)
            return None
        if path == "/html.jpg":
            return self.send(200, b"<!DOCTYPE html><html><body>Not a picture</body></html>", "image/jpeg")
        if path == "/page.html":
            return self.send(200, b"<html></html>", "text/html; charset=utf-8")
        if path == "/huge-header.jpg":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(10**10))
            self.end_headers()
            return self.wfile.write(b"\xff\xd8\xff" + b"\0" * 1000)
        if path == "/huge-body.jpg":  # no Content-Length: HTTP/1.0 body runs until the server closes
            self.send(200, b"\xff\xd8\xff\xe0", length=False)
            for _ in range(40):
                self.wfile.write(b"\0" * 50_000)
            return None
        if path == "/loop1":
            return self.send(302, headers={"Location": "/loop2"})
        if path == "/loop2":
            return self.send(302, headers={"Location": "/loop1"})
        if path == "/to-file":
            return self.send(302, headers={"Location": "file:///etc/passwd"})
        if path == "/moved.jpg":
            return self.send(301, headers={"Location": "/img/b.jpg"})
        if path == "/interrupt.jpg":  # a user pressing Ctrl-C while the download runs
            _thread.interrupt_main()
            return self.send(200, files["/img/e.jpg"])
        if path.startswith("/drip/"):  # a slow server: one byte every 0.1 s for a minute, never silent for long
            return self.drip(encode(blobs(200 + int(re.sub(r"\D", "", path) or 0))))
        if path.startswith("/stall/"):  # a silent one: headers after 30 s
            if not type(self).fast:
                time.sleep(30)
            return self.send(200, encode(blobs(100 + int(re.sub(r"\D", "", path) or 0))))
        if path == "/elsewhere.jpg":  # a redirect to another host, chosen by the test
            return self.send(302, headers={"Location": type(self).redirect_to})
        return self.send(404, b"not found", "text/plain")


@pytest.fixture
def hostile():
    """(base_url, handler class): a fresh hostile server per test, with its request log."""
    handler = type("H", (Hostile,), {"files": dict(build_site()), "seen": [], "times": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def online(monkeypatch):
    """The notebook test sets POLYJUICE_OFFLINE=1; 127.0.0.1 is fetched either way, but search tests choose."""
    monkeypatch.delenv("POLYJUICE_OFFLINE", raising=False)


HOSTILE_PATHS = {
    "/img/a.jpg": None, "/img/a-copy.jpg": None, "/img/a-resized.jpg": None,  # 1 ok, 1 duplicate, 1 near_duplicate
    "/missing.jpg": "http_404",
    "/error.jpg": "http_500",
    "/slow.jpg": "timeout",
    "/trickle.jpg": "timeout",
    "/html.jpg": "not_image",
    "/page.html": "not_image",
    "/img/truncated.jpg": "corrupt",
    "/huge-header.jpg": "too_large",
    "/huge-body.jpg": "too_large",
    "/loop1": "bad_redirect",
    "/to-file": "bad_redirect",
    "/moved.jpg": "ok",
    "/..%2F..%2F..%2Fetc%2Fpasswd": "ok",
    "//etc/passwd": "ok",
    "/private/p.jpg": "robots_disallowed",
    "/img/alpha.png": "ok",
    "/img/grey.jpg": "ok",
    "/img/cmyk.jpg": "ok",
    "/img/rotated.jpg": "ok",
    "/img/tiny.jpg": "too_small",
    "/img/blank.png": "blank",
    "/img/bomb.png": "too_large",
}


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- the downloader

def test_hostile_server_every_url_ends_in_a_named_counted_status(hostile, tmp_path):
    base, handler = hostile
    cands = [Candidate(base + p, "urls", "test") for p in HOSTILE_PATHS]
    cands += [Candidate("file:///etc/passwd", "urls"), Candidate("ftp://127.0.0.1/x.jpg", "urls")]
    cands += [Candidate(base + "/img/e.jpg\n,evil\r\n", "urls", "a query\nover two lines")]  # stays one manifest line
    folder = tmp_path / "raw" / "selfie"
    before = files_under(tmp_path)

    report = download(cands, folder, **FAST)

    rows = latest_rows(folder)
    assert set(rows) == {c.url for c in cands[:-1]} | {base + "/img/e.jpg%0A,evil"}, "every URL gets exactly one row"
    assert len((folder / "manifest.csv").read_text().splitlines()) == 1 + len(cands)
    for path, expected in HOSTILE_PATHS.items():
        if expected:
            assert rows[base + path]["status"] == expected, (path, rows[base + path])
    assert rows["file:///etc/passwd"]["status"] == "bad_url"
    assert rows["ftp://127.0.0.1/x.jpg"]["status"] == "bad_url"
    group = Counter(rows[base + p]["status"] for p in ("/img/a.jpg", "/img/a-copy.jpg", "/img/a-resized.jpg"))
    assert group == Counter({"ok": 1, "duplicate": 1, "near_duplicate": 1})
    assert report.counts == manifest_counts(folder) and sum(report.counts.values()) == len(cands)
    assert report.counts["ok"] == 8 and rows[base + "/img/e.jpg%0A,evil"]["status"] == "http_404" and not report.interrupted
    assert all(r["error"] for r in rows.values() if r["status"] != "ok"), "every skip says why"

    # Nothing outside the domain folder; names come from the content, never from the server.
    new = files_under(tmp_path) - before
    assert new and all(folder in p.parents for p in new), sorted(map(str, new))
    assert not list(tmp_path.rglob("*escaped*")) and not list(folder.glob(".*.part"))
    kept = [r for r in rows.values() if r["status"] == "ok"]
    assert all(re.fullmatch(r"[0-9a-f]{32}\.jpg", r["path"]) and (folder / r["path"]).is_file() for r in kept)
    assert all(r["path"] == r["sha256"][:32] + ".jpg" for r in kept)

    # Politeness: 5xx retried, 4xx not, robots.txt read once and obeyed, an honest User-Agent on every request.
    paths = Counter(p for p, _ in handler.seen)
    assert paths["/error.jpg"] == 1 + FAST["retries"] and paths["/missing.jpg"] == 1
    assert paths["/robots.txt"] == 1 and paths["/private/p.jpg"] == 0
    assert all("polyjuice" in ua for _, ua in handler.seen)

    # Pixels: upright, RGB, transparency over white, CMYK colours kept.
    def saved(path):
        return load_rgb(folder / rows[base + path]["path"])

    rot = saved("/img/rotated.jpg")
    assert rot.shape == UPRIGHT.shape, "EXIF orientation applied: a portrait comes out as a portrait"
    assert np.abs(rot.astype(int) - UPRIGHT).mean() < 6
    assert saved("/img/grey.jpg").shape == (240, 320, 3)
    alpha = saved("/img/alpha.png")
    assert alpha[:, :150].min() > 245, "transparent half composited over white"
    assert np.abs(alpha[:, 170:].astype(int) - ALPHA[:, 170:, :3]).mean() < 6
    assert np.abs(saved("/img/cmyk.jpg").astype(int) - CMYK_SOURCE).mean() < 12


def test_rerun_fetches_nothing_already_known(hostile, tmp_path):
    base, handler = hostile
    cands = [Candidate(base + p, "urls") for p in ("/img/a.jpg", "/missing.jpg", "/error.jpg", "/img/tiny.jpg", "/html.jpg")]
    folder = tmp_path / "drag"
    first = download(cands, folder, **FAST)
    assert sum(first.counts.values()) == 5
    handler.seen.clear()

    again = download(cands + [Candidate(base + "/img/a-copy.jpg", "urls")], folder, **FAST)

    assert again.known == 5 and sum(again.counts.values()) == 1
    assert [p for p, _ in handler.seen] == ["/robots.txt", "/img/a-copy.jpg"], "only the new URL is fetched"
    assert again.counts == Counter({"duplicate": 1}), "de-duplication spans runs (the whole domain folder)"
    assert len(list(folder.glob("*.jpg"))) == 1

    handler.seen.clear()
    download(cands, folder, retry_transient=True, **FAST)
    assert Counter(p for p, _ in handler.seen)["/error.jpg"] == 2, "retry_transient tries the 5xx again, nothing else"
    assert "/missing.jpg" not in [p for p, _ in handler.seen]


def test_crash_mid_row_and_ctrl_c_lose_nothing(hostile, tmp_path):
    base, handler = hostile
    names = ["/img/a.jpg", "/interrupt.jpg", "/img/b.jpg", "/img/c.jpg", "/img/d.jpg", "/img/alpha.png", "/img/grey.jpg"]
    cands = [Candidate(base + p, "urls") for p in names]
    folder = tmp_path / "selfie"

    report = download(cands, folder, **{**FAST, "workers": 1})

    assert report.interrupted
    done = latest_rows(folder)
    # The URL in flight when Ctrl-C lands may finish or be cut (a quick stop cuts open connections): a cut one
    # has no row, and the re-run below must fetch exactly it and the rest.
    assert 1 <= len(done) < len(cands) and all(r["status"] == "ok" for r in done.values())
    # A crash in the middle of writing a row leaves half a line: it is dropped, not mistaken for a row.
    manifest = folder / "manifest.csv"
    manifest.write_bytes(manifest.read_bytes() + b"http://127.0.0.1/half-written-row,urls,,abc")
    handler.seen.clear()

    download(cands, folder, **FAST)

    rows = latest_rows(folder)
    assert set(rows) == {c.url for c in cands} and all(r["status"] == "ok" for r in rows.values())
    refetched = {base + p for p, _ in handler.seen if p != "/robots.txt"}
    assert refetched == {c.url for c in cands} - set(done), "the second run fetches exactly what the first did not finish"
    with open(manifest, newline="") as f:
        assert all(len(r) == len(scrape.MANIFEST_COLUMNS) for r in csv.reader(f))


def test_robots_5xx_means_keep_off_and_the_rate_limit_spaces_requests(hostile, tmp_path):
    base, handler = hostile
    cands = [Candidate(base + p, "urls") for p in ("/img/a.jpg", "/img/b.jpg", "/img/c.jpg", "/img/d.jpg")]
    handler.robots = (503, b"busy")
    download(cands, tmp_path / "one", **FAST)
    assert set(manifest_counts(tmp_path / "one")) == {"robots_disallowed"}
    assert [p for p, _ in handler.seen] == ["/robots.txt"], "RFC 9309: a 5xx robots.txt means fetch nothing"

    handler.robots = (404, b"")
    handler.times.clear()
    download(cands, tmp_path / "two", **{**FAST, "per_host_interval": 0.2})
    assert manifest_counts(tmp_path / "two")["ok"] == 4
    starts = sorted(t for t, _ in handler.times)  # robots.txt + 4 images, 4 threads eager to go
    assert len(starts) == 5 and min(np.diff(starts)) > 0.15, "one request per interval per host, even with 4 threads"


def test_folder_and_url_list_sources_go_through_the_same_checks(tmp_path):
    src = tmp_path / "mine"
    (src / "sub").mkdir(parents=True)
    (src / "one.jpg").write_bytes(encode(blobs(20)))
    (src / "sub" / "two.png").write_bytes(encode(blobs(21), "PNG"))
    (src / "notes.txt").write_text("not an image")
    (src / "big.jpg").write_bytes(encode(blobs(22, 700, 700), quality=100) + b"\0" * 300_000)
    lst = tmp_path / "urls.txt"
    lst.write_text("# my list\n\nfile:///etc/passwd\nhttp://127.0.0.1:9/x.jpg\n")
    folder = tmp_path / "raw" / "selfie"

    download(scrape.from_folder(src) + scrape.from_url_list(lst), folder, **FAST)

    status = {u: r["status"] for u, r in latest_rows(folder).items()}
    mine = {(src / n).resolve().as_uri(): s for n, s in [("one.jpg", "ok"), ("sub/two.png", "ok"), ("notes.txt", "not_image"), ("big.jpg", "too_large")]}
    assert status == {**mine, "file:///etc/passwd": "bad_url", "http://127.0.0.1:9/x.jpg": "robots_unreachable"}


def test_offline_mode_refuses_web_urls_but_serves_localhost(hostile, tmp_path, monkeypatch):
    base, _ = hostile
    monkeypatch.setenv("POLYJUICE_OFFLINE", "1")
    download([Candidate(base + "/img/a.jpg", "urls"), Candidate("https://example.com/x.jpg", "urls")], tmp_path / "d", **FAST)
    assert {u: r["status"] for u, r in latest_rows(tmp_path / "d").items()} == {base + "/img/a.jpg": "ok", "https://example.com/x.jpg": "offline"}


def test_max_images_stops_adding_work(hostile, tmp_path):
    base, _ = hostile
    cands = [Candidate(base + p, "urls") for p in ("/img/a.jpg", "/img/b.jpg", "/img/c.jpg", "/img/d.jpg", "/img/e.jpg", "/img/f.jpg")]
    report = download(cands, tmp_path / "d", max_images=2, **{**FAST, "workers": 1})
    assert 2 <= report.kept_total < len(cands)
    assert download(cands, tmp_path / "d", max_images=2, **FAST).counts == Counter()


def test_a_malformed_url_is_a_row_and_the_others_still_download(hostile, tmp_path):
    base, _ = hostile
    bad = ["http://[::1", "http://[::1]x/a.jpg", "http://127.0.0.1:99999/a.jpg", "https://[not-an-ip]/x.jpg"]
    cands = [Candidate(base + "/img/a.jpg", "urls")] + [Candidate(u, "urls") for u in bad] + [Candidate(base + "/img/b.jpg", "urls")]

    report = download(cands, tmp_path / "d", **FAST)

    rows = latest_rows(tmp_path / "d")
    assert {u: rows[u]["status"] for u in bad} == dict.fromkeys(bad, "bad_url")
    assert all("malformed" in rows[u]["error"] or "http" in rows[u]["error"] for u in bad)
    assert rows[base + "/img/a.jpg"]["status"] == rows[base + "/img/b.jpg"]["status"] == "ok"
    assert report.counts == Counter({"bad_url": 4, "ok": 2})


def test_address_refusal_names_every_non_public_kind():
    refused = ["127.0.0.1", "127.1.2.3", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
               "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
               "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::", "64:ff9b::a00:1", "2001:db8::1"]
    public = ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
    assert [ip for ip in refused if scrape.address_refusal(ip) is None] == []
    assert [ip for ip in public if scrape.address_refusal(ip) is not None] == []
    assert "loopback" in scrape.address_refusal("::ffff:127.0.0.1")


def test_private_addresses_in_any_spelling_are_refused_unless_allowed(hostile, tmp_path):
    base, handler = hostile
    port = base.rsplit(":", 1)[1]
    spellings = ["127.0.0.1", "2130706433", "127.1", "0x7f.1", "0177.0.0.1", "[::ffff:127.0.0.1]", "localhost"]
    cands = [Candidate(f"http://{host}:{port}/img/a.jpg", "search", "selfie") for host in spellings]
    strict = {**FAST, "allow_private": False}

    download(cands, tmp_path / "strict", **strict)

    rows = latest_rows(tmp_path / "strict")
    assert {u: r["status"] for u, r in rows.items()} == {c.url: "private_address" for c in cands}
    assert all("allow_private" in r["error"] for r in rows.values()), "the skip says how to allow it"
    assert handler.seen == [], "not one request reached the private server, not even for robots.txt"
    assert not list((tmp_path / "strict").glob("*.jpg"))

    download(cands[:1], tmp_path / "allowed", **FAST)  # the explicit allowance, and the manifest says so
    (row,) = latest_rows(tmp_path / "allowed").values()
    assert row["status"] == "ok" and row["address"] == "127.0.0.1 (private, allowed by allow_private)"


@pytest.fixture
def second_loopback_server():
    """A plain image server on 127.0.0.2: "another private address" that a redirect can point at."""
    handler = type("H", (Hostile,), {"files": dict(build_site()), "seen": [], "times": []})
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), handler)
    except OSError:
        pytest.skip("this system cannot bind 127.0.0.2")
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.2:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_every_redirect_hop_is_checked(hostile, second_loopback_server, tmp_path, monkeypatch):
    """Our test server stands in for a public site (only 127.0.0.1 is let through); it redirects to 127.0.0.2."""
    base, handler = hostile
    inside, inside_handler = second_loopback_server
    handler.redirect_to = inside + "/img/b.jpg"
    real = scrape.address_refusal
    monkeypatch.setattr(scrape_guard, "address_refusal", lambda ip: None if ip == "127.0.0.1" else real(ip))
    strict = {**FAST, "allow_private": False}

    download([Candidate(base + "/elsewhere.jpg", "search")], tmp_path / "d", **strict)

    (row,) = latest_rows(tmp_path / "d").values()
    assert row["status"] == "private_address" and "redirected to 127.0.0.2" in row["error"], row
    assert [p for p, _ in handler.seen] == ["/robots.txt", "/elsewhere.jpg"]
    assert inside_handler.seen == [], "the private host was never contacted"


def test_the_host_is_resolved_once_and_the_checked_address_is_the_one_connected(hostile, tmp_path, monkeypatch):
    """DNS rebinding: a name that answers 127.0.0.1 (allowed here) first and a private address after."""
    import socket

    base, _ = hostile
    port = int(base.rsplit(":", 1)[1])
    real_lookup, answers = socket.getaddrinfo, []

    def rebinding(host, *args, **kwargs):
        if host != "rebind.test":
            return real_lookup(host, *args, **kwargs)
        answers.append(host)
        ip = "127.0.0.1" if len(answers) == 1 else "10.255.255.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    real = scrape.address_refusal
    monkeypatch.setattr(scrape_guard, "address_refusal", lambda ip: None if ip == "127.0.0.1" else real(ip))

    download([Candidate(f"http://rebind.test:{port}/img/a.jpg", "search")], tmp_path / "d",
             **{**FAST, "allow_private": False, "respect_robots": False, "workers": 1})

    (row,) = latest_rows(tmp_path / "d").values()
    assert row["status"] == "ok" and row["address"] == "127.0.0.1"
    assert answers == ["rebind.test"], "one lookup: the address checked is the address used"


def test_https_through_the_guard_still_verifies_the_host_name(tmp_path, monkeypatch):
    """We connect to the checked IP ourselves; TLS must still check the certificate against the URL's host name."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    handler = type("H", (Hostile,), {"files": dict(build_site()), "seen": [], "times": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    plain_session = scrape_fetch._Run.session

    def trusting_our_cert(run):
        session = plain_session(run)
        session.verify = str(cert)
        return session

    monkeypatch.setattr(scrape_fetch._Run, "session", trusting_our_cert)
    try:
        cands = [Candidate(f"https://{host}:{port}/img/a.jpg", "urls") for host in ("localhost", "127.0.0.1")]
        download(cands, tmp_path / "d", **FAST)
    finally:
        server.shutdown()
        server.server_close()

    rows = latest_rows(tmp_path / "d")
    assert rows[cands[0].url]["status"] == "ok" and rows[cands[0].url]["address"].startswith("127.0.0.1 (private")
    assert rows[cands[1].url]["status"] == "robots_unreachable", "the certificate names localhost, not 127.0.0.1"
    assert "CERTIFICATE_VERIFY_FAILED" in rows[cands[1].url]["error"] or "SSLError" in rows[cands[1].url]["error"]


def test_bad_arguments_fail_at_once_with_a_clear_message(tmp_path):
    cands = [Candidate("http://127.0.0.1:9/a.jpg", "urls")]
    for settings, message in [({"workers": 0}, "workers"), ({"workers": -3}, "workers"), ({"retries": -1}, "retries"),
                              ({"total_timeout": 0}, "time-out"), ({"max_bytes": 0}, "max_bytes"),
                              ({"per_host_interval": -1}, "per_host_interval"), ({"workers": "4"}, "number"),
                              ({"retries": 2.5}, "whole number"), ({"workres": 4}, "unknown setting")]:
        with pytest.raises((ValueError, TypeError), match=message):
            download(cands, tmp_path / "d", progress=False, **settings)
    with pytest.raises(ValueError, match="max_images"):
        download(cands, tmp_path / "d", max_images=-1, progress=False)
    with pytest.raises(TypeError, match="Candidate"):
        download(["http://127.0.0.1:9/a.jpg"], tmp_path / "d", progress=False)
    with pytest.raises(ValueError, match="retries"):
        scrape.DownloadConfig(retries=-1)
    assert not (tmp_path / "d" / "manifest.csv").exists(), "nothing was tried"
    with pytest.raises(ValueError, match="max_results"):
        scrape.search("duckduckgo", "selfie", 0)
    with pytest.raises(ValueError, match="query"):
        scrape.search("duckduckgo", "  ", 5)
    with pytest.raises(ValueError, match="max_results"):
        scrape.search_bing("selfie", max_results=-5)
    said = []
    with pytest.raises(ValueError, match="choose from"):
        scrape.search_many("selfie", ["duckduckgo", "altavista"], 5, say=said.append)
    assert said == [], "refused before any back end was asked"


def test_total_timeout_does_not_count_the_polite_wait(hostile, tmp_path):
    """robots.txt and two fast images from one host, 1.2 s apart: each image waits longer than total_timeout for its turn."""
    base, _ = hostile
    cands = [Candidate(base + p, "urls") for p in ("/img/a.jpg", "/img/b.jpg")]

    report = download(cands, tmp_path / "d", **{**FAST, "per_host_interval": 1.2, "total_timeout": 1.0})

    assert report.counts == Counter({"ok": 2}), [r["error"] for r in latest_rows(tmp_path / "d").values()]


def test_ctrl_c_during_slow_downloads_stops_within_seconds_and_resumes(hostile, tmp_path):
    """Ctrl-C while two servers trickle and one is silent: the call returns at once, no half file, and a re-run resumes."""
    import signal

    base, handler = hostile
    main = threading.main_thread().ident
    handler.ctrl_c = lambda: signal.pthread_kill(main, signal.SIGINT)  # what Jupyter's "interrupt" sends
    names = ["/img/a.jpg", "/img/b.jpg", "/stall/1.jpg", "/drip/1.jpg", "/drip/2.jpg", "/img/c.jpg", "/img/d.jpg"]
    cands = [Candidate(base + p, "urls") for p in names]
    folder = tmp_path / "selfie"
    patient = {**FAST, "workers": 2, "retries": 2, "read_timeout": 20.0, "total_timeout": 60.0, "max_bytes": 1_000_000}

    t0 = time.monotonic()
    report = download(cands, folder, **patient)
    seconds = time.monotonic() - t0

    assert report.interrupted
    assert seconds < 15, f"Ctrl-C took {seconds:.0f} s to take effect (the drips alone run for a minute)"
    rows = latest_rows(folder)
    assert rows and all(r["status"] == "ok" for r in rows.values()), "a cut-off URL gets no row, not a false failure"
    assert not any("/drip/" in u or "/stall/" in u for u in rows)
    on_disk = {p.name for p in folder.iterdir() if p.name != "manifest.csv"}
    assert on_disk <= {r["path"] for r in rows.values()}, "no half-written or unrecorded file"

    handler.fast, handler.seen[:] = True, []
    again = download(cands, folder, **patient)

    assert not again.interrupted and set(latest_rows(folder)) == {c.url for c in cands}
    assert set(manifest_counts(folder)) == {"ok"}
    assert {base + p for p, _ in handler.seen if p != "/robots.txt"} == {c.url for c in cands} - set(rows)


def test_a_manifest_from_before_the_address_column_still_resumes(hostile, tmp_path):
    base, handler = hostile
    folder = tmp_path / "d"
    folder.mkdir()
    old_header = [c for c in scrape.MANIFEST_COLUMNS if c != "address"]
    with open(folder / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(old_header)
        w.writerow([base + "/missing.jpg", "urls", "", "", "", "", "", "", "http_404", "Not Found"])

    download([Candidate(base + "/missing.jpg", "urls"), Candidate(base + "/img/a.jpg", "urls")], folder, **FAST)

    assert [p for p, _ in handler.seen] == ["/robots.txt", "/img/a.jpg"], "the old row is still known"
    rows = latest_rows(folder)
    assert rows[base + "/missing.jpg"]["status"] == "http_404" and rows[base + "/img/a.jpg"]["status"] == "ok"
    with open(folder / "manifest.csv", newline="") as f:
        assert next(csv.reader(f)) == scrape.MANIFEST_COLUMNS


# ---------------------------------------------------------------- perceptual hash

def test_dct_and_phash():
    x = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    assert np.allclose(dct2(x), cv2.dct(x), atol=1e-4), "our DCT-II matches OpenCV's"
    a, b = blobs(1, 400, 300), blobs(2, 400, 300)
    small = cv2.resize(a, (130, 97), interpolation=cv2.INTER_AREA)
    jpeg = np.asarray(Image.open(io.BytesIO(encode(a, quality=40))))
    assert hamming(phash(a), phash(small)) <= 4 and hamming(phash(a), phash(jpeg)) <= 4
    assert hamming(phash(a), phash(b)) > 16
    index = HashIndex(threshold=6)
    assert index.claim("s1", phash(a), "a.jpg") == ("ok", "")
    assert index.claim("s1", phash(a), "again.jpg")[0] == "duplicate"
    assert index.claim("s2", phash(small), "small.jpg")[0] == "near_duplicate"
    assert index.claim("s3", phash(b), "b.jpg") == ("ok", "")


# ---------------------------------------------------------------- search back ends (no web here)

def test_web_backends_refuse_clearly_when_offline(monkeypatch):
    monkeypatch.setenv("POLYJUICE_OFFLINE", "1")
    for backend in scrape.SEARCH_BACKENDS:
        with pytest.raises(SearchError, match="POLYJUICE_OFFLINE"):
            scrape.search(backend, "selfie", 5)
    said = []
    assert scrape.search_many("selfie", ["duckduckgo", "bing"], 5, say=said.append) == []
    assert len(said) == 2 and all("skipped" in s for s in said)
    assert scrape.web_reachable() == (False, "POLYJUICE_OFFLINE=1 is set")
    with pytest.raises(ValueError, match="choose from"):
        scrape.search("altavista", "selfie")


def test_library_failures_become_clear_search_errors(monkeypatch):
    import ddgs
    import instaloader
    from ddgs.exceptions import DDGSException
    from instaloader.exceptions import LoginRequiredException

    def no_dns(self, *a, **kw):
        raise DDGSException("DNSError: error resolving DNS")

    def login_wall(*a, **kw):
        raise LoginRequiredException("Redirected to login page")

    monkeypatch.setattr(ddgs.DDGS, "images", no_dns)
    monkeypatch.setattr(instaloader.Hashtag, "from_name", login_wall)
    with pytest.raises(SearchError, match="Is the web reachable"):
        scrape.search("duckduckgo", "selfie")
    with pytest.raises(SearchError, match="instaloader --login"):
        scrape.search("instagram", "drag queen makeup")


def test_icrawler_feeder_and_parser_give_urls_for_our_downloader(hostile, tmp_path):
    """The Bing adapter's glue, with a results page served locally instead of bing.com."""
    from icrawler import Feeder
    from icrawler.builtin.bing import BingParser

    base, handler = hostile
    entries = "".join(f'<div class="imgpt"><a m=\'{{"murl":"{base}/img/{n}.jpg","turl":"x"}}\'>x</a></div>' for n in "abc")
    handler.files["/results"] = f"<html><body>{entries}</body></html>".encode()

    class LocalFeeder(Feeder):
        def feed(self, keyword, offset, max_num):
            self.out_queue.put(f"{base}/results")

    urls = scrape_sources._icrawler_urls(LocalFeeder, BingParser, dict(keyword="selfie", offset=0, max_num=3), 10, "Local Bing")
    assert urls == [f"{base}/img/{n}.jpg" for n in "abc"]
    report = download([Candidate(u, "bing", "selfie") for u in urls], tmp_path / "selfie", **FAST)
    assert report.counts["ok"] == 3

    class DeadFeeder(Feeder):
        def feed(self, keyword, offset, max_num):
            self.out_queue.put("http://127.0.0.1:9/results")  # the discard port: nothing listens

    with pytest.raises(SearchError, match="could not be reached"):
        scrape_sources._icrawler_urls(DeadFeeder, BingParser, dict(keyword="x", offset=0, max_num=1), 10, "Dead Bing")


# ---------------------------------------------------------------- the offline path of the notebook

def test_sample_frames_served_locally_run_through_the_real_downloader(samples, tmp_path):
    frames = scrape.export_frames(samples["megamind.avi"], tmp_path / "frames", every=30)
    assert len(frames) >= 5 and all(load_rgb(p).shape == (528, 720, 3) for p in frames)
    server, cands = scrape.serve_sample_frames(samples, tmp_path / "www", {"drag": (("megamind.avi", 30),)})
    with server:
        report = download(cands["drag"], tmp_path / "raw" / "drag", **FAST)
    counts = manifest_counts(tmp_path / "raw" / "drag")
    assert counts["ok"] >= 3 and counts["http_404"] == 1 and counts["not_image"] == 1
    assert sum(counts.values()) == len(frames) + 2 == len(cands["drag"])
    kept = scrape.kept_images(tmp_path / "raw" / "drag")
    assert report.kept_total == counts["ok"] == len(kept)
    assert all(t.shape == (64, 64, 3) for t in scrape.square_thumbnails(kept, 64))
