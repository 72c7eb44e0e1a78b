"""Keep one face steady over time: a one-euro filter for its box and landmarks, and a tracker.

A detector looks at each frame on its own, so its box wobbles by a few pixels
from frame to frame even when the head is still. Pasting a face at those
positions makes it shimmer. The one-euro filter (Casiez, Roussel and Vogel,
CHI 2012) smooths hard while the face is still, where jitter shows, and lets
go when it moves fast, where lag would show. Times come from the video, so a
variable frame rate is smoothed correctly.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


def _finite(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) and math.isfinite(value)


def _alpha(cutoff_hz: float, dt: float) -> float:
    """Weight of the new sample in an exponential smoother with this cutoff at this time step."""
    tau = 1.0 / (2 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Adaptive low-pass filter for a vector that arrives at (possibly irregular) times.

    min_cutoff (Hz): smoothing when still; lower = steadier but laggier.
    beta: how fast the cutoff rises with speed; higher = less lag on fast moves.
    Speeds are in the units of x per second.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.5, d_cutoff: float = 1.0):
        if not (_finite(min_cutoff) and min_cutoff > 0 and _finite(d_cutoff) and d_cutoff > 0):
            raise ValueError(f"min_cutoff and d_cutoff must be > 0 Hz (1.0 is a good start); got {min_cutoff!r}, {d_cutoff!r}")
        if not (_finite(beta) and beta >= 0):
            raise ValueError(f"beta must be >= 0 (0 = fixed smoothing, 1.0 is a good start); got {beta!r}")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self.x = self.dx = self.t = None

    def __call__(self, x, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.x is None:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self.t
        if dt <= 0:  # same or earlier time stamp: nothing new to learn
            return self.x.copy()
        dx = (x - self.x) / dt
        self.dx = self.dx + _alpha(self.d_cutoff, dt) * (dx - self.dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        a = 1.0 / (1.0 + 1.0 / (2 * math.pi * cutoff * dt))
        self.x = self.x + a * (x - self.x)
        self.t = t
        return self.x.copy()


def box_size(box) -> float:
    box = np.asarray(box, dtype=np.float64)
    return float(max(box[2] - box[0], box[3] - box[1], 1.0))


def iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


class FaceSmoother:
    """One-euro filter over a face's box and landmarks, measured in face sizes so it works at any resolution.

    Returns a copy of the Face (any dataclass with `box` and `landmarks`) with
    smoothed coordinates. `min_cutoff` and `beta` as in OneEuroFilter, with
    speed in face widths per second.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 1.0):
        self.filter = OneEuroFilter(min_cutoff, beta)
        self.scale = None
        self.has_landmarks = None

    def reset(self) -> None:
        self.filter.reset()
        self.scale = None

    def __call__(self, face, t: float):
        box = np.asarray(face.box, dtype=np.float64)
        lm = None if face.landmarks is None else np.asarray(face.landmarks, dtype=np.float64)
        if self.scale is None or (lm is not None) != self.has_landmarks:
            self.reset()  # first face, or the detector changed what it reports
            self.scale = box_size(box)
            self.has_landmarks = lm is not None
        packed = box if lm is None else np.concatenate([box, lm.ravel()])
        smooth = self.filter(packed / self.scale, t) * self.scale
        new_box = smooth[:4].astype(np.float32)
        new_lm = None if lm is None else smooth[4:].reshape(lm.shape).astype(np.float32)
        return dataclasses.replace(face, box=new_box, landmarks=new_lm)


def check_target(target) -> None:
    """'largest', 'center', a face number >= 0 or a box (x0, y0, x1, y1); else a ValueError that lists them."""
    if isinstance(target, str):
        ok = target in ("largest", "center")
    elif isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        ok = target >= 0
    else:
        try:
            box = np.asarray(target, dtype=np.float64)
        except (TypeError, ValueError):
            box = None
        ok = box is not None and box.shape == (4,) and np.isfinite(box).all() and box[2] > box[0] and box[3] > box[1]
    if not ok:
        raise ValueError(f"target must be 'largest', 'center', a face number counted from the left (0, 1, ...) "
                         f"or a box (x0, y0, x1, y1) near the face; got {target!r}")


class FaceTracker:
    """Follow one face through a video when several are present.

    target: "largest" (default), "center" (nearest the frame centre), an int
    (the n-th face from the left in the first frame that has faces) or a box
    (x0, y0, x1, y1) near the wanted face. Afterwards each frame's face is the
    one that overlaps the last known position most. A target unseen for more
    than `max_gap` seconds is looked for again with the same rule, preferring
    faces near where it was last.
    """

    def __init__(self, target="largest", max_gap: float = 1.0, min_iou: float = 0.2):
        check_target(target)
        if not (_finite(max_gap) and max_gap >= 0) or not (_finite(min_iou) and 0 <= min_iou <= 1):
            raise ValueError(f"max_gap must be >= 0 seconds and min_iou within [0, 1]; got {max_gap!r}, {min_iou!r}")
        self.target, self.max_gap, self.min_iou = target, max_gap, min_iou
        self.last_box = None
        self.last_time = None

    def _acquire(self, faces, frame_size):
        boxes = [np.asarray(f.box, dtype=np.float64) for f in faces]
        if isinstance(self.target, str) and self.target == "largest":
            scores = [-box_size(b) for b in boxes]
        elif isinstance(self.target, str) and self.target == "center":
            h, w = frame_size
            scores = [math.hypot((b[0] + b[2]) / 2 - w / 2, (b[1] + b[3]) / 2 - h / 2) for b in boxes]
        elif isinstance(self.target, (int, np.integer)):
            order = np.argsort([b[0] for b in boxes])
            return faces[order[min(int(self.target), len(faces) - 1)]]
        else:
            want = np.asarray(self.target, dtype=np.float64)
            scores = [-iou(b, want) + 1e-3 * np.linalg.norm((b[:2] + b[2:]) / 2 - (want[:2] + want[2:]) / 2) for b in boxes]
        if self.last_box is not None:  # re-acquiring: prefer faces near the last position
            c = (self.last_box[:2] + self.last_box[2:]) / 2
            scores = [s + np.linalg.norm((b[:2] + b[2:]) / 2 - c) / box_size(self.last_box) for s, b in zip(scores, boxes)]
        return faces[int(np.argmin(scores))]

    def _follow(self, faces):
        last = self.last_box
        best = max(faces, key=lambda f: iou(f.box, last))
        if iou(best.box, last) >= self.min_iou:
            return best
        # a fast move can drop the overlap: accept a face of similar size whose centre is close
        c = (last[:2] + last[2:]) / 2
        near = min(faces, key=lambda f: np.linalg.norm((np.asarray(f.box[:2]) + f.box[2:]) / 2 - c))
        nb = np.asarray(near.box, dtype=np.float64)
        close = np.linalg.norm((nb[:2] + nb[2:]) / 2 - c) < 0.5 * box_size(last)
        similar = 0.66 < box_size(nb) / box_size(last) < 1.5
        return near if close and similar else None

    def lost_for_long(self, t: float) -> bool:
        return self.last_time is None or t - self.last_time > self.max_gap

    def __call__(self, faces, t: float, frame_size=(0, 0)):
        """The target face among `faces` at time `t` (seconds), or None when it is not in this frame."""
        if not faces:
            return None
        face = self._acquire(faces, frame_size) if self.lost_for_long(t) else self._follow(faces)
        if face is not None:
            self.last_box = np.asarray(face.box, dtype=np.float64)
            self.last_time = t
        return face


def box_jitter(boxes) -> float:
    """Average frame-to-frame wobble of a box track, in box widths.

    The second difference b[t+1] - 2 b[t] + b[t-1] is zero for steady motion
    and large for back-and-forth shaking, so it measures jitter, not movement.
    `boxes` is (T, 4); rows of NaN (no face) break the track.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    values = []
    for t in range(1, len(boxes) - 1):
        a, b, c = boxes[t - 1], boxes[t], boxes[t + 1]
        if np.isnan(a).any() or np.isnan(b).any() or np.isnan(c).any():
            continue
        values.append(np.linalg.norm(c - 2 * b + a) / box_size(b))
    return float(np.mean(values)) if values else float("nan")
