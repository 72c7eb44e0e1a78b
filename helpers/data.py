"""Face folders as training data.

A face folder is what notebook 02 writes: aligned square PNGs plus
`faces.csv`. Rows whose `status` is not `kept` (rejected by a filter or by hand
in the curation widget) are left out. A folder without `faces.csv` (faces you
cropped yourself) is read whole.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
PROGRESS_FROM = 256  # folders with at least this many faces show a progress bar while loading (Drive reads are slow)


def list_faces(folder: str | os.PathLike) -> list[Path]:
    """Paths of the kept face images in `folder`, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No face folder at {folder}: run notebook 02 (crop faces) first.")
    index = folder / "faces.csv"
    if index.exists():
        with open(index, newline="") as f:
            rows = list(csv.DictReader(f))
        paths = [folder / r["face"] for r in rows if r.get("status", "kept") == "kept" and r.get("face")]
        paths = [p for p in paths if p.exists()]
    else:
        paths = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS]
    return sorted(paths)


def require_faces(folder: str | os.PathLike, lesson: str = "02", instead: str | None = None) -> Path:
    """The folder, if it holds kept faces; else stop the notebook with one sentence saying what to run first.

    `instead` is the other way out, e.g. 'set QUICK = True to use the sample faces'.
    """
    from .env import LessonStop

    folder = Path(folder)
    found = list_faces(folder) if folder.is_dir() else []
    if found:
        return folder
    rejected = 0
    if (folder / "faces.csv").exists():
        with open(folder / "faces.csv", newline="") as f:
            rejected = sum(1 for r in csv.DictReader(f) if r.get("status", "") != "kept")
    rejected = f" ({rejected} rejected in faces.csv)" if rejected else ""
    how = f"run notebook {lesson} first" + (f", or {instead}" if instead else "")
    raise LessonStop(f"No kept faces in {folder}{rejected}: {how}.")


def _progress(items: list, desc: str, enabled: bool | None):
    """tqdm.auto over `items` when asked, or by default for folders big enough to make someone wait."""
    if enabled is False or (enabled is None and len(items) < PROGRESS_FROM):
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="face", leave=False)


def load_faces(folder: str | os.PathLike, size: int, limit: int | None = None, progress: bool | None = None) -> np.ndarray:
    """Kept faces of a folder as one uint8 array (N, size, size, 3), RGB. Unreadable files are skipped.

    `progress`: None shows a bar for PROGRESS_FROM faces or more, True always, False never.
    """
    images = []
    paths = list_faces(folder)[:limit]
    for path in _progress(paths, f"loading {Path(folder).name}", progress):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        if bgr.shape[:2] != (size, size):
            interp = cv2.INTER_AREA if bgr.shape[0] > size else cv2.INTER_CUBIC
            bgr = cv2.resize(bgr, (size, size), interpolation=interp)
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if not images:
        raise ValueError(f"No readable faces in {folder}: run notebook 02 (crop faces) first.")
    return np.stack(images)
