"""One frame in, one frame out: the face pipeline shared by render_video and the live camera.

    pipe = FramePipeline(model)              # a FaceModel, or any function on aligned uint8 faces
    out = pipe.process(rgb)                  # out.frame, out.faces, out.message, out.timings
    pipe.reset()                             # a new clip or a camera restart

The face detector is the slow stage (MTCNN takes about 50 ms of a CPU's time
per 640x360 frame), and a face hardly moves between two frames. So the
detector runs only on the first frame, every `detect_every` frames, and
whenever tracking loses confidence; in between, pyramidal Lucas-Kanade
optical flow follows points on the face from the last frame to this one, and
the motion they agree on moves the box and the landmarks. Each point is also
tracked backwards: a point that does not come back where it started is
wrong, and when too few points survive the face counts as lost and the
detector looks again at once.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from .blend import COLOR_METHODS, MASKS, blend_face, check_blend_options
from .smooth import FaceSmoother, FaceTracker, OneEuroFilter, box_size, check_target
from .video import check_count

STEPS = ("detect", "track", "align", "model", "blend", "label")
CHECK_SIDE = 100  # px: a followed face is looked at again at this width (MTCNN's smallest face is 40 px)
NO_FACE = "No face in view: face the camera, with light on your face."


@dataclass
class FrameOut:
    frame: np.ndarray  # RGB uint8, the input's size, labelled when the pipeline labels
    faces: int  # faces found (detected, or followed since the last detection)
    message: str | None  # one sentence for the person in view, or None when all is well
    timings: dict = field(default_factory=dict)  # seconds per step (STEPS)
    face: object | None = None  # the face transformed (box and landmarks after smoothing), None when none
    found: object | None = None  # the same face as detected or tracked, before smoothing
    detected: bool = False  # whether the detector ran on this frame


# --- the visible label ------------------------------------------------------------------------

def label_box(shape, text: str = "AI-generated") -> tuple[int, int, int, int]:
    """Where `draw_label` puts its label (x0, y0, x1, y1): bottom-left, about 5% of the frame height."""
    h, w = shape[:2]
    scale, thick = _label_font(h)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(3, th // 3)
    x0, y1 = pad, h - pad
    return x0, max(0, y1 - th - base - 2 * pad), min(w, x0 + tw + 2 * pad), y1


def _label_font(height: int) -> tuple[float, int]:
    scale = max(0.5, height / 720 * 1.2)
    return scale, max(1, int(round(scale * 2)))


def draw_label(image: np.ndarray, text: str = "AI-generated") -> np.ndarray:
    """A copy of the image with a readable label: white text on a dark box, bottom-left."""
    out = image.copy()
    x0, y0, x1, y1 = label_box(image.shape, text)
    out[y0:y1, x0:x1] = (out[y0:y1, x0:x1] * 0.25).astype(np.uint8)
    scale, thick = _label_font(image.shape[0])
    (_, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(3, th // 3)
    cv2.putText(out, text, (x0 + pad, y1 - pad - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


# --- detection, plugged in ---------------------------------------------------------------------

def make_detect_fn(detector, device=None, max_side: int | None = 640) -> Callable:
    """A function list-of-RGB-frames -> list of face lists, from a name, a detector object or a function.

    Frames larger than `max_side` are shrunk for detection (faces in a phone
    video are big; a 4K frame would only cost time) and the boxes and
    landmarks scaled back. `detect(images, shrink_to)` shrinks further for
    one call (a check on a face already followed); a plain function always
    sees the frames at `max_side`, as it may know nothing of sizes.
    """
    plain = False
    if isinstance(detector, str):
        from .faces import make_detector

        detector = make_detector(detector, device=device)
    if hasattr(detector, "detect_batch"):
        run = detector.detect_batch
    elif hasattr(detector, "detect"):
        run = lambda images: [detector.detect(im) for im in images]  # noqa: E731
    elif callable(detector):
        run = detector
        plain = True
    else:
        raise TypeError("detector must be a name ('mtcnn', 'haar', 'auto'), an object with .detect_batch/.detect, or a function")

    def detect(images: list[np.ndarray], shrink_to: int | None = None) -> list[list]:
        h, w = images[0].shape[:2]
        side = min(filter(None, (max_side, None if plain else shrink_to)), default=None)
        scale = 1.0 if not side or max(h, w) <= side else side / max(h, w)
        if scale == 1.0:
            return run(images)
        size = (int(round(w * scale)), int(round(h * scale)))
        small = [cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in images]
        return [[_rescale(f, 1 / scale) for f in faces] for faces in run(small)]

    return detect


def _rescale(face, factor: float):
    lm = None if face.landmarks is None else (np.asarray(face.landmarks, np.float32) * factor)
    return dataclasses.replace(face, box=np.asarray(face.box, np.float32) * factor, landmarks=lm)


def run_model(face_fn, crops: np.ndarray) -> np.ndarray:
    """face_fn on a batch, checked: it must give back uint8 faces of the same shape."""
    out = face_fn(crops)
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    out = np.asarray(out)
    if out.dtype != np.uint8:
        from .viz import to_uint8

        out = np.stack([to_uint8(o) for o in out])
    if out.shape != crops.shape:
        raise ValueError(f"face_fn returned shape {out.shape}, expected {crops.shape} (uint8 faces in, same out)")
    return out


class TargetFace:
    """Per frame: pick the target face among the detections, then smooth it over time."""

    def __init__(self, target="largest", smooth: bool = True, min_cutoff: float = 1.0, beta: float = 1.0, max_gap: float = 1.0):
        self.tracker = FaceTracker(target, max_gap=max_gap)
        self.smoother = FaceSmoother(min_cutoff, beta) if smooth else None

    def __call__(self, faces, t: float, frame_shape):
        """(raw face, smoothed face) at time t, or (None, None)."""
        if self.tracker.lost_for_long(t) and self.smoother is not None:
            self.smoother.reset()  # a new appearance starts a new track: no pull from old positions
        face = self.tracker(faces, t, frame_shape[:2])
        if face is None:
            return None, None
        return face, (self.smoother(face, t) if self.smoother is not None else face)


# --- following a face between detections ----------------------------------------------------------

class FlowTracker:
    """Follow one face from frame to frame with pyramidal Lucas-Kanade optical flow.

    Corners inside the face's box are tracked forwards and backwards; those
    that come back within `max_error` face widths of where they started vote
    for one similarity motion (shift, turn, zoom), which moves the box and
    the landmarks. `confidence` is the share of points that survived; below
    `min_confidence` the face is lost, as it is when the points' patches
    change too much (a cut to another scene). Only a window around the face
    is looked at, in grey, shrunk so the face is at most `face_side` pixels
    wide: a big face in a 1080p frame costs no more than a small one.
    """

    def __init__(self, max_points: int = 60, max_error: float = 0.02, min_confidence: float = 0.5, face_side: int = 128,
                 max_change: float = 20.0, reach: float = 0.6):
        self.max_points, self.max_error, self.min_confidence = max_points, max_error, min_confidence
        self.face_side = face_side
        self.max_change = max_change  # mean grey-level difference of a point's patch from one frame to the next
        self.reach = reach  # how far (in face sizes) around the box the window reaches: the most a face moves per frame
        self.lk = dict(winSize=(15, 15), maxLevel=3, criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))
        self.reset()

    def reset(self) -> None:
        self.previous = self.points = self.face = None
        self.confidence = 0.0

    def _window(self, shape) -> tuple[int, int, int, int, float]:
        """x0, y0, x1, y1 of the part of the frame around the face, and the scale it is looked at."""
        box = np.asarray(self.face.box, np.float64)
        side = box_size(box)
        pad = self.reach * side
        h, w = shape[:2]
        x0, y0 = max(0, int(box[0] - pad)), max(0, int(box[1] - pad))
        x1, y1 = min(w, int(math.ceil(box[2] + pad))), min(h, int(math.ceil(box[3] + pad)))
        return x0, y0, x1, y1, min(1.0, self.face_side / side)

    @staticmethod
    def _gray(rgb: np.ndarray, window) -> np.ndarray:
        x0, y0, x1, y1, scale = window
        gray = cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))),
                              interpolation=cv2.INTER_LINEAR)  # INTER_AREA costs as much as the flow itself
        return gray

    def _seed(self, rgb: np.ndarray) -> None:
        """Good corners inside the face box (a tenth in from its edges), plus the landmarks themselves (frame pixels)."""
        window = self._window(rgb.shape)
        x0, y0, _, _, scale = window
        gray = self._gray(rgb, window)
        box = (np.asarray(self.face.box, np.float64) - [x0, y0, x0, y0]) * scale
        pad = 0.1 * (box[2] - box[0])
        h, w = gray.shape
        ix0, iy0 = max(0, int(box[0] + pad)), max(0, int(box[1] + pad))
        ix1, iy1 = min(w, int(box[2] - pad)), min(h, int(box[3] - pad))
        points = np.zeros((0, 2), np.float32)
        if ix1 - ix0 > 4 and iy1 - iy0 > 4:
            found = cv2.goodFeaturesToTrack(gray[iy0:iy1, ix0:ix1], self.max_points, 0.01,
                                            max(2.0, (ix1 - ix0) / 15), blockSize=5)
            if found is not None:
                points = (found.reshape(-1, 2) + [ix0, iy0]) / scale + [x0, y0]
        if self.face.landmarks is not None:
            points = np.vstack([points, np.asarray(self.face.landmarks, np.float32)])
        self.points = points.astype(np.float32).reshape(-1, 2)

    def start(self, rgb: np.ndarray, face) -> None:
        """Begin following `face` (a detection in this frame)."""
        self.previous, self.face = rgb, face
        self.confidence = 1.0
        self._seed(rgb)

    def step(self, rgb: np.ndarray):
        """The face moved to this frame, or None when it is lost (then call start after a detection)."""
        if self.face is None:
            return None
        if self.points is None or len(self.points) < 4 or rgb.shape != self.previous.shape:
            self.face = None
            return None
        window = self._window(rgb.shape)
        x0, y0, _, _, scale = window
        before, now = self._gray(self.previous, window), self._gray(rgb, window)
        start = ((self.points - [x0, y0]) * scale).astype(np.float32).reshape(-1, 1, 2)
        ahead, ok1, change = cv2.calcOpticalFlowPyrLK(before, now, start, None, **self.lk)
        back, ok2, _ = cv2.calcOpticalFlowPyrLK(now, before, ahead, None, **self.lk)
        error = np.linalg.norm((back - start).reshape(-1, 2), axis=1)
        limit = max(0.5, self.max_error * box_size(self.face.box) * scale)
        good = (ok1.ravel() == 1) & (ok2.ravel() == 1) & (error < limit) & (change.ravel() < self.max_change)
        self.confidence = float(good.mean())
        ahead = ahead.reshape(-1, 2) / scale + [x0, y0]  # frame pixels again
        motion = None
        if good.sum() >= 4 and self.confidence >= self.min_confidence:
            motion, inliers = cv2.estimateAffinePartial2D(self.points[good], ahead[good], method=cv2.RANSAC,
                                                          ransacReprojThreshold=max(1.0, limit / scale))
            if motion is not None and inliers is not None:
                self.confidence *= float(inliers.mean())
        if motion is None or self.confidence < self.min_confidence:
            self.face = None
            return None
        self.face = _moved(self.face, motion)
        if not _inside(self.face.box, rgb.shape):
            self.face = None
            return None
        self.previous = rgb
        self.points = ahead[good].astype(np.float32)
        if len(self.points) < self.max_points // 2:
            self._seed(rgb)
        return self.face


def _moved(face, motion: np.ndarray):
    """The face carried by a similarity `motion` (2x3): centre shifted and turned, size zoomed, landmarks moved."""
    m = np.asarray(motion, np.float64)
    zoom = math.sqrt(abs(np.linalg.det(m[:, :2])))
    box = np.asarray(face.box, np.float64)
    centre = m[:, :2] @ ((box[:2] + box[2:]) / 2) + m[:, 2]
    half = (box[2:] - box[:2]) / 2 * zoom
    landmarks = None
    if face.landmarks is not None:
        landmarks = (np.asarray(face.landmarks, np.float64) @ m[:, :2].T + m[:, 2]).astype(np.float32)
    return dataclasses.replace(face, box=np.concatenate([centre - half, centre + half]).astype(np.float32),
                               landmarks=landmarks)


def _check_frame(rgb) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"a frame must be RGB uint8 (H, W, 3); got {rgb.dtype} {rgb.shape}")
    return rgb


def _inside(box, shape) -> bool:
    """Whether the box's centre is still in the frame."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return 0 <= cx < shape[1] and 0 <= cy < shape[0]


# --- the pipeline ------------------------------------------------------------------------------

class FramePipeline:
    """Detect now and then, track in between, align, run the model (batched), blend back, label.

    model: a helpers.facemodel FaceModel (Swapper or Translator), or any
        function uint8 (N, S, S, 3) aligned faces -> the same shape.
    detector: 'auto' (Haar where OpenCV has it, else MTCNN), 'mtcnn', 'haar',
        a detector object or a function (see make_detect_fn).
    detect_every: run the detector at least every this many frames; 1 detects
        on every frame (no tracking).
    size: side of the aligned face handed to the model.
    target, smooth, min_cutoff, beta: which face to follow and its one-euro
        smoothing (helpers.smooth); mask, color, seamless, erode, feather: the
        blend (helpers.blend).
    label: draw the visible "AI-generated" label on every frame.
    """

    def __init__(self, model, detector="auto", detect_every: int = 10, device=None, label: bool = True, *,
                 label_text: str = "AI-generated", size: int = 256, target="largest", smooth: bool = True,
                 min_cutoff: float = 1.0, beta: float = 1.0, mask: str = "hull", color: str | None = "lab",
                 seamless: bool = False, erode: float = 0.04, feather: float = 0.05, detect_max_side: int | None = 640,
                 align_fn: Callable | None = None, fps: float = 30.0):
        if not callable(model):
            raise TypeError(f"model must be a face model or a function: uint8 faces (N, S, S, 3) -> the same; "
                            f"got {type(model).__name__}")
        color = None if color == "none" else color
        if mask not in MASKS or color not in COLOR_METHODS:
            raise ValueError(f"mask must be one of {MASKS} and color one of {COLOR_METHODS}; got {mask!r}, {color!r}")
        check_blend_options(size, erode, feather)
        check_count("detect_every", detect_every)
        check_count("detect_max_side", detect_max_side, allow_none=True)
        check_target(target)
        OneEuroFilter(min_cutoff, beta)  # checks both
        if label and (not isinstance(label_text, str) or not label_text.strip()):
            raise ValueError(f"label_text must be a non-empty string such as 'AI-generated'; got {label_text!r}")
        self.model, self.size, self.detect_every, self.fps = model, int(size), int(detect_every), float(fps)
        self.label, self.label_text = label, label_text
        self.detect = make_detect_fn(detector, device, detect_max_side)
        if align_fn is None:
            from .faces import align_face as align_fn
        self.align = align_fn
        self.blend_options = dict(mask=mask, color=color, seamless=seamless, erode=erode, feather=feather)
        self.follow_options = dict(target=target, smooth=smooth, min_cutoff=min_cutoff, beta=beta)
        self.flow = FlowTracker()
        self.reset()

    def reset(self) -> None:
        """Forget the face followed so far (a new clip, or the camera restarted)."""
        self.target = TargetFace(**self.follow_options)
        self.flow.reset()
        self.since_detect = 0
        self.frames = 0
        self.seen = 0  # faces the last detection found
        self.detections = 0  # detector runs since the last reset

    # one frame at a time: the live camera
    def process(self, rgb: np.ndarray, t: float | None = None) -> FrameOut:
        """One RGB uint8 (H, W, 3) frame through the pipeline; `t` its time in seconds (default: frame count / fps)."""
        return self.process_batch([rgb], None if t is None else [t])[0]

    # several frames at once: the model sees them as one batch (render_video)
    def process_batch(self, frames: list[np.ndarray], times: list[float] | None = None) -> list[FrameOut]:
        """Consecutive frames: found and followed one by one, then the model runs once on all their faces."""
        frames = [_check_frame(rgb) for rgb in frames]
        outs = [self._find(rgb, None if times is None else times[i]) for i, rgb in enumerate(frames)]
        jobs = []
        for i, out in enumerate(outs):
            if out.face is not None:
                t0 = time.perf_counter()
                jobs.append((i, self.align(frames[i], out.face, size=self.size)))
                out.timings["align"] = time.perf_counter() - t0
        if jobs:
            t0 = time.perf_counter()
            crops = np.stack([a.image for _, a in jobs])
            new = run_model(self.model, crops)
            share = (time.perf_counter() - t0) / len(jobs)
            for (i, aligned), crop, orig in zip(jobs, new, crops):
                out = outs[i]
                out.timings["model"] = share
                t0 = time.perf_counter()
                out.frame = blend_face(out.frame, crop, aligned.matrix, original_crop=orig, landmarks=out.face.landmarks,
                                       **self.blend_options)
                out.timings["blend"] = time.perf_counter() - t0
        if self.label:
            for out in outs:
                t0 = time.perf_counter()
                out.frame = draw_label(out.frame, self.label_text)
                out.timings["label"] = time.perf_counter() - t0
        return outs

    def _find(self, rgb: np.ndarray, t: float | None) -> FrameOut:
        """Detect or track the target face in one frame: a FrameOut with `face` set, not yet transformed."""
        t = self.frames / self.fps if t is None else float(t)
        self.frames += 1
        timings = {s: 0.0 for s in STEPS}
        face = None
        due = self.flow.face is None or self.since_detect >= self.detect_every - 1
        if not due:
            t0 = time.perf_counter()
            face = self.flow.step(rgb)
            timings["track"] = time.perf_counter() - t0
            self.since_detect += 1
        detected = face is None
        if detected:  # due, or the track was lost just now: look again
            t0 = time.perf_counter()
            faces = self._check(rgb) if self.flow.face is not None else []
            faces = faces or self.detect([rgb])[0]
            self.seen, self.since_detect, self.detections = len(faces), 0, self.detections + 1
            face, steady = self.target(faces, t, rgb.shape)
            if face is not None:
                self.flow.start(rgb, face)
            else:
                self.flow.reset()
            timings["detect"] = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            face, steady = self.target([face], t, rgb.shape)
            timings["track"] += time.perf_counter() - t0
        return FrameOut(rgb, self.seen, self._message(steady), timings, steady, face, detected)

    def _check(self, rgb: np.ndarray) -> list:
        """The regular look at a face already followed, on the frame shrunk so that face is CHECK_SIDE px wide.

        Much cheaper than the whole frame (the detector's cost grows with the
        pixels); faces under about half that size are not seen, and when the
        followed face is not found the caller looks at the whole frame.
        """
        shrink = CHECK_SIDE / box_size(self.flow.face.box)
        return self.detect([rgb], max(32, round(max(rgb.shape[:2]) * shrink)))[0] if shrink < 1 else []

    def _message(self, face) -> str | None:
        if face is None:
            return NO_FACE if self.seen == 0 else (
                f"{self.seen} faces in view, none of them the one followed so far: it is picked again within a second.")
        if self.seen > 1:
            rule = self.follow_options["target"]
            which = {"largest": "the largest", "center": "the one nearest the centre"}.get(rule, "the one asked for") \
                if isinstance(rule, str) else "the one asked for"
            return f"{self.seen} faces in view: only {which} is transformed."
        return None
