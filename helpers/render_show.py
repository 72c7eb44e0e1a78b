"""The pictures lesson 05 shows on the way to a render: a phone clip as stored, the tracked face over time, a zoom.

Each is a few lines of plotting or OpenCV that would otherwise crowd the
lesson's cells; what they show (rotation, jitter, the blend) stays in the
notebook.
"""

from __future__ import annotations

import os

import numpy as np


def frame_as_stored(path: str | os.PathLike) -> np.ndarray:
    """The first frame as a reader that ignores the rotation tag sees it (RGB): OpenCV with auto-orientation off."""
    import cv2

    from .video import VideoError

    cap = cv2.VideoCapture(str(path))
    try:
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
        ok, stored = cap.read()
    finally:
        cap.release()
    if not ok:
        raise VideoError(f"OpenCV cannot read a frame of {path}")
    return cv2.cvtColor(stored, cv2.COLOR_BGR2RGB)


def first_faces(frame: np.ndarray, detector, video_name: str) -> list:
    """The faces the detector finds in the lesson's first frame; a LessonStop that says what to do when there is none."""
    from .env import LessonStop

    faces = detector.detect(frame)
    if not faces:
        raise LessonStop(f"No face in the first frame of {video_name}: choose a VIDEO where the face is visible from the start.")
    return faces


def face_zoom(box, pad: float = 0.6):
    """A function that crops any frame of the same size to `box` grown by `pad` face widths on each side."""
    x0, y0, x1, y1 = np.asarray(box, dtype=float).astype(int)
    margin = int(pad * (x1 - x0))
    return lambda image: image[max(0, y0 - margin):y1 + margin, max(0, x0 - margin):x1 + margin]


def plot_track(times, raw, steady):
    """The box centre over time, as detected (dots) and as smoothed (line), for x and y. Returns the figure."""
    import matplotlib.pyplot as plt

    raw, steady = np.asarray(raw, dtype=float), np.asarray(steady, dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2))
    for ax, (name, i, j) in zip(axes, [("x", 0, 2), ("y", 1, 3)]):
        ax.plot(times, (raw[:, i] + raw[:, j]) / 2, ".", color="tab:gray", label="detected")
        ax.plot(times, (steady[:, i] + steady[:, j]) / 2, "-", color="tab:red", label="one-euro smoothed")
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"box centre {name} (px)")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    return fig


def plot_timings(report):
    """Seconds per stage of a render (decode, detect, model, blend, encode) as bars. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.4))
    stages = list(report.timings)
    ax.barh(stages, [report.timings[s] for s in stages], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title(f"{report.frames} frames, {report.fps:.1f} fps end to end")
    fig.tight_layout()
    return fig
