"""The run folder's files besides checkpoints: the CSV log, step-named pictures, the timelapse.

Each is written so a kill leaves the old file or the new one, and each is
trimmed back to the checkpoint a run resumes from.
"""

from __future__ import annotations

import csv
import io
import os
import re
import warnings
from pathlib import Path

import numpy as np

from .. import storage
from ..storage import remove


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write to a temp name in the same folder, fsync, rename: a kill leaves the old file or the new one, never half."""
    return storage.atomic_write(path, lambda f: f.write(data), expected_size=len(data))


def write_picture(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """An RGB uint8 picture as a PNG, atomically."""
    import cv2

    ok, png = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"Could not encode a {rgb.dtype} {rgb.shape} picture as PNG.")
    return atomic_write_bytes(path, png.tobytes())


_STEP_RE = re.compile(r"(\d+)$")


def picture_step(path: Path) -> int | None:
    """The step a picture belongs to: the digits its name ends with (step-000000012.png -> 12)."""
    m = _STEP_RE.search(path.stem)
    return int(m.group(1)) if m else None


def pictures_in(folder: str | os.PathLike) -> list[Path]:
    """Step-named PNGs of a folder, in step order."""
    folder = Path(folder)
    found = [(picture_step(p), p) for p in folder.glob("*.png")] if folder.is_dir() else []
    return [p for s, p in sorted((s, p) for s, p in found if s is not None)]


def trim_pictures(folder: str | os.PathLike, step: int) -> list[Path]:
    """Delete pictures newer than `step` (the checkpoint we resume from) and temp files of killed writes."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    gone = [p for p in pictures_in(folder) if picture_step(p) > step]
    for p in gone:
        remove(p)
    return gone + storage.clean_stale_temp_files(folder)


class CsvLog:
    """A CSV file of rows with a "step" column: appended as training goes, trimmed atomically on resume.

    An append killed half-way leaves at most one broken last line; `trim` (run
    at every start) drops it together with every row past the checkpoint and
    rewrites the file through a temp file, so a kill during the trim leaves the
    old file whole.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def rows(self) -> list[dict]:
        """Complete rows with a readable step (a torn last line is skipped)."""
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header or header[0] != "step":
                return []
            out = []
            for values in reader:
                if len(values) != len(header):
                    continue
                try:
                    float(values[0])
                except ValueError:
                    continue
                out.append(dict(zip(header, values)))
        return out

    def trim(self, step: int) -> None:
        """Keep only complete rows up to `step`; start afresh at step 0."""
        if not self.path.exists():
            return
        if step <= 0:
            remove(self.path)
            return
        rows = [r for r in self.rows() if float(r["step"]) <= step]
        if not rows:
            remove(self.path)
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.path, buffer.getvalue().encode())

    def append(self, row: dict) -> None:
        new = not self.path.exists() or self.path.stat().st_size == 0
        fields = list(row)
        if not new:  # keep the file's own columns: a row with one more (a newer version's) must not tear it
            with open(self.path, newline="") as f:
                header = next(csv.reader(f), None)
            fields = header if header and header[0] == "step" else fields
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n", extrasaction="ignore", restval="")
            if new:
                writer.writeheader()
            writer.writerow(row)
            f.flush()


# ---------------------------------------------------------------- the timelapse

def make_timelapse(frames: str | os.PathLike, out: str | os.PathLike | None = None, max_frames: int = 120,
                   seconds_per_frame: float = 0.25, hold_last: float = 2.0) -> Path | None:
    """A GIF of the step-named PNGs in `frames` (evenly thinned to `max_frames`), the last frame held longer.

    Written atomically to `out` (default: timelapse.gif next to the frames folder).
    A picture that cannot be read (a disk error) is skipped, not fatal.
    """
    from PIL import Image

    frames = Path(frames)
    paths = pictures_in(frames)
    if len(paths) > max_frames:
        keep = np.linspace(0, len(paths) - 1, max_frames).round().astype(int)
        paths = [paths[i] for i in sorted(set(keep))]
    images = []
    for p in paths:
        try:
            with Image.open(p) as im:
                images.append(im.convert("RGB"))
        except OSError as exc:
            warnings.warn(f"Timelapse: skipping unreadable {p.name} ({exc}).", stacklevel=2)
    if not images:
        return None
    size = images[-1].size
    images = [(im if im.size == size else im.resize(size)).quantize(colors=255, method=Image.Quantize.MEDIANCUT) for im in images]
    durations = [int(seconds_per_frame * 1000)] * (len(images) - 1) + [int(hold_last * 1000)]
    out = Path(out) if out else frames.parent / "timelapse.gif"
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return atomic_write_bytes(out, buffer.getvalue())
