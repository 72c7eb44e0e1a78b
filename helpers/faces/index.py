"""The face index, faces.csv: one row per decision of a crop run, kept or rejected with its reason.

Rows are written as they are made (an interrupted run loses nothing) and the
file is rewritten atomically when a row changes (the curation widget's click).
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from dataclasses import dataclass
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


# ---------------------------------------------------------------------------------------------
# Reading decisions back: why a face was rejected, which kept face a duplicate copies


def rejection_reason(row: dict) -> str | None:
    """"blurry" for a row rejected as "rejected:blurry"; None for a kept face."""
    status = row.get("status", "")
    return status.split(":", 1)[1] if status.startswith("rejected:") else None


def rejected_by_reason(folder: str | os.PathLike) -> dict[str, list[dict]]:
    """The rejected face images of a folder, grouped by reason (reasons sorted, rows in faces.csv order)."""
    groups: dict[str, list[dict]] = {}
    for row in face_rows(folder, "rejected"):
        groups.setdefault(rejection_reason(row), []).append(row)
    return dict(sorted(groups.items()))


def face_hash(row: dict) -> int | None:
    """The row's 64-bit perceptual hash (stored as 16 hex digits); None when the row has none."""
    text = row.get("phash") or ""
    return int(text, 16) if text else None


def twin_of(folder: str | os.PathLike, row: dict) -> tuple[dict, int] | None:
    """The kept face whose hash is nearest to this row's, and how many bits apart: what a "duplicate" copies.

    None when the row has no hash or the folder no other kept face.
    """
    from ..phash import hamming

    digest = face_hash(row)
    kept = [(k, face_hash(k)) for k in face_rows(folder, "kept") if k.get("face") != row.get("face")]
    kept = [(k, h) for k, h in kept if h is not None]
    if digest is None or not kept:
        return None
    twin, other = min(kept, key=lambda pair: hamming(pair[1], digest))
    return twin, hamming(other, digest)


@dataclass
class Rejected:
    """One rejected face to look at: its folder's name, the reason, its row, and for a duplicate the kept twin."""

    domain: str
    folder: Path
    reason: str
    row: dict
    twin: dict | None = None
    bits: int | None = None  # hash distance to the twin


def rejected_examples(folders: dict[str, str | os.PathLike], per_reason: int = 3) -> list[Rejected]:
    """A few rejected faces per reason across face folders ({domain: folder}), spread over each reason's rows."""
    by_reason: dict[str, list[tuple[str, Path, dict]]] = {}
    for domain, folder in folders.items():
        for reason, rows in rejected_by_reason(folder).items():
            by_reason.setdefault(reason, []).extend((domain, Path(folder), r) for r in rows)
    examples = []
    for reason, found in sorted(by_reason.items()):
        for domain, folder, row in found[:: max(1, len(found) // per_reason)][:per_reason]:
            twin = twin_of(folder, row) if reason == "duplicate" else None
            examples.append(Rejected(domain, folder, reason, row, *(twin or (None, None))))
    return examples


def row_face(row: dict):
    """The detector's Face back from a faces.csv row (box, score, landmarks), e.g. to draw it on its frame."""
    from .detect import Face

    landmarks = parse_array(row.get("landmarks", ""), (5, 2))
    return Face(parse_array(row["box"], (4,)).astype(np.float32), float(row["score"] or 0),
                None if landmarks is None else landmarks.astype(np.float32))


def status_summary(folder: str | os.PathLike) -> str:
    """One line of counts: "kept 120   rejected:blurry 4  rejected:no_face 2"."""
    counts = status_counts(folder)
    rest = "  ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "kept")
    return f"kept {counts.get('kept', 0):4d}   {rest}".rstrip()
