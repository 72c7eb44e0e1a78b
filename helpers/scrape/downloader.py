"""download(): every source's candidates through one polite, safe, resumable downloader into one domain folder.

Worker threads each take one URL through `_process` (fetch, check, decode,
de-duplicate, save); the main thread writes the manifest rows and watches for
Ctrl-C, which cuts every open connection and returns within a few seconds.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections import Counter, defaultdict
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from ..phash import HashIndex, from_hex, phash, to_hex
from ..storage import remove
from .config import DownloadConfig, Skip, _is_transient, _short, _Stopped
from .fetch import _fetch, _read_local, _Run
from .image import _describe, _limit_side, _save_jpeg, decode_image, sniff
from .manifest import MANIFEST_COLUMNS, _ManifestWriter, latest_rows
from .polite import HostLimiter, RobotsCache
from .sources import Candidate


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
        note = " (interrupted: run it again to continue where it left off)" if self.interrupted else ""
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
