"""The face index, faces.csv: one row per decision of a crop run, kept or rejected with its reason.

Rows are written as they are made (an interrupted run loses nothing) and the
file is rewritten atomically when a row changes (the curation widget's click).
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

INDEX = "faces.csv"
COLUMNS = ["face", "source", "frame", "time", "index", "detector", "score", "size", "box", "landmarks",
           "matrix", "blur", "outside", "phash", "status"]


def read_index(folder: str | os.PathLike) -> list[dict]:
    """Rows of a face folder's faces.csv as dicts of strings ([] when there is none)."""
    path = Path(folder) / INDEX
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_index(folder: str | os.PathLike, rows: list[dict]) -> None:
    """Rewrite faces.csv atomically (a crash leaves the old or the new file, never half of one)."""
    path = Path(folder) / INDEX
    columns = COLUMNS + [k for r in rows for k in r if k not in COLUMNS]
    columns = list(dict.fromkeys(columns))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def append_index(folder: str | os.PathLike, rows: list[dict]) -> None:
    """Add rows to faces.csv as they are made, so an interrupted run loses nothing."""
    path = Path(folder) / INDEX
    if not rows:
        return
    if path.exists():
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        if set(header) >= set(COLUMNS) and all(set(r) <= set(header) for r in rows):
            with open(path, "a", newline="") as f:
                csv.DictWriter(f, header, restval="").writerows(rows)
            return
        write_index(folder, read_index(folder) + rows)  # older or foreign header: rewrite with all columns
        return
    write_index(folder, rows)


def set_status(folder: str | os.PathLike, face: str, status: str) -> dict:
    """Change one face's status (the curation widget's click) and save; return the row."""
    if status != "kept" and not status.startswith("rejected:"):
        raise ValueError(f"status must be 'kept' or 'rejected:<reason>', got {status!r}")
    rows = read_index(folder)
    for row in rows:
        if row["face"] == face:
            row["status"] = status
            write_index(folder, rows)
            return row
    raise KeyError(f"No face {face!r} in {Path(folder) / INDEX}")


def parse_array(text: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """A JSON list from faces.csv (box, landmarks, matrix) back as an array; None for an empty cell."""
    if not text:
        return None
    return np.asarray(json.loads(text), np.float64).reshape(shape)


def status_counts(folder: str | os.PathLike) -> Counter:
    """How many rows of faces.csv have each status ("kept", "rejected:blurry", ...)."""
    return Counter(r["status"] for r in read_index(folder))



def face_rows(folder: str | os.PathLike, status: str | None = None) -> list[dict]:
    """Rows of faces.csv that have a face image, optionally only "kept" or only rejected ("rejected")."""
    rows = [r for r in read_index(folder) if r.get("face")]
    if status == "kept":
        rows = [r for r in rows if r["status"] == "kept"]
    elif status == "rejected":
        rows = [r for r in rows if r["status"].startswith("rejected:")]
    return rows


def read_face(folder: str | os.PathLike, name: str) -> np.ndarray:
    """One saved face as RGB uint8."""
    bgr = cv2.imread(str(Path(folder) / name), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"Missing or unreadable face image {Path(folder) / name}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def iter_faces(folder: str | os.PathLike, status: str | None = None) -> Iterator[tuple[dict, np.ndarray]]:
    """(row, image) for the face images of a folder."""
    for row in face_rows(folder, status):
        path = Path(folder) / row["face"]
        if path.exists():
            yield row, read_face(folder, row["face"])
