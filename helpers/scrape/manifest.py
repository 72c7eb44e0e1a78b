"""manifest.csv: one row per URL, appended as soon as it is known, so an interrupted run loses nothing."""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

from .config import STATUSES

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ["url", "source", "query", "path", "sha256", "phash", "width", "height", "status", "error", "address"]


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


def first_failures(folder: str | os.PathLike) -> list[dict]:
    """The first row of each status other than "ok" (newest row per URL): one example of every reason to read."""
    first: dict[str, dict] = {}
    for row in latest_rows(folder).values():
        if row["status"] != "ok":
            first.setdefault(row["status"], row)
    return list(first.values())


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


def status_table(counts: Counter) -> str:
    """A Markdown table of counts by status, with what each status means."""
    lines = ["| status | count | meaning |", "|---|---:|---|"]
    for status, n in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", -kv[1], kv[0])):
        meaning = STATUSES.get(status, "the server answered with this HTTP code" if status.startswith("http_") else "")
        lines.append(f"| {status} | {n} | {meaning} |")
    return "\n".join(lines)
