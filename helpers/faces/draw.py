"""Pictures of faces: boxes and landmarks on a photo, the template on a crop, grids and the sharpness plot."""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

from .detect import Face

def draw_faces(image: np.ndarray, faces: Iterable[Face], color=(0, 255, 0)) -> np.ndarray:
    """A copy of the image with each face's box and landmarks drawn (eyes red, nose green, mouth blue)."""
    out = image.copy()
    thick = max(1, round(max(image.shape[:2]) / 300))
    for face in faces:
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), color, thick)
        if face.landmarks is not None:
            for (x, y), c in zip(face.landmarks, [(255, 0, 0), (255, 0, 0), (0, 255, 0), (0, 128, 255), (0, 128, 255)]):
                cv2.circle(out, (int(round(x)), int(round(y))), thick * 2 + 1, c, -1)
    return out



def draw_template(crop: np.ndarray, margin: float, color=(0, 255, 255)) -> np.ndarray:
    """A copy of an aligned crop with the template's five points: where alignment puts the landmarks."""
    from .align import template

    out = crop.copy()
    for x, y in template(crop.shape[0], margin):
        cv2.circle(out, (int(round(x)), int(round(y))), 3, color, -1)
    return out


def face_grid(folder, rows: list[dict], count: int = 16, side: int = 96) -> np.ndarray:
    """One strip of `count` faces spread over `rows` (e.g. a folder's kept faces), each `side` px."""
    from ..viz import image_grid
    from .index import read_face

    if not rows:
        raise ValueError(f"No faces to show from {folder}: crop some first (crop_video / crop_folder).")
    picked = rows[:: max(1, len(rows) // count)][:count]
    faces = [cv2.resize(read_face(folder, r["face"]), (side, side), interpolation=cv2.INTER_AREA) for r in picked]
    return image_grid(faces, ncol=count)


def plot_sharpness(folders: dict, threshold: float | None):
    """Sharpness of every face per folder ({name: folder}), kept green and rejected red, the blur filter dashed.

    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    from .index import face_rows

    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.55 * max(1, len(folders))))
    for i, folder in enumerate(folders.values()):
        rows = [r for r in face_rows(folder) if r.get("blur")]
        blur = np.array([float(r["blur"]) for r in rows])
        kept = np.array([r["status"] == "kept" for r in rows], bool)
        ax.scatter(blur[kept], np.full(kept.sum(), i), s=12, c="tab:green", label="kept" if i == 0 else None)
        ax.scatter(blur[~kept], np.full((~kept).sum(), i), s=12, c="tab:red", marker="x", label="rejected" if i == 0 else None)
    if threshold:
        ax.axvline(threshold, ls="--", c="k")
    ax.set_xscale("log")
    ax.set_yticks(range(len(folders)), list(folders))
    ax.set_xlabel("sharpness: variance of the Laplacian (log)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
