"""Find faces, align them on five landmarks, crop them, and keep only the good ones.

Why align: a model that sees every face at the same place, size and angle
spends its capacity on the face itself, not on undoing head tilt and zoom.
The seeds cropped the Haar cascade's box as it came; here we fit a
similarity transform (rotation, uniform scale, shift) that moves the eyes,
nose and mouth corners onto a fixed template, and we keep that transform so a
face can later be pasted back into its frame (notebook 05).

    det = make_detector("mtcnn")
    faces = det.detect(rgb)                      # [Face(box, score, landmarks)]
    crop = align_face(rgb, faces[0], size=256)   # Aligned(image, matrix image->crop)
    report = crop_video("woman.mp4", ws.faces / "woman", every=4)

A face folder holds the aligned PNGs and `faces.csv`, one row per decision:
kept faces, rejected faces with the reason, frames without a face and
unreadable files. Running a crop again skips the sources already in the CSV.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from ..phash import hamming, phash  # one perceptual hash for the scraper and the cropper

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif", ".heic", ".avif")
INDEX = "faces.csv"
COLUMNS = ["face", "source", "frame", "time", "index", "detector", "score", "size", "box", "landmarks",
           "matrix", "blur", "outside", "phash", "status"]
MULTI_POLICIES = ("largest", "all", "reject")


# ---------------------------------------------------------------------------------------------
# Faces and detectors


@dataclass
class Face:
    """One detected face in image pixels.

    landmarks (5, 2): left eye, right eye (as seen in the image: left = smaller x
    for an upright face), nose tip, mouth left, mouth right; None when the
    detector gives no landmarks (Haar).
    """

    box: np.ndarray  # float32 (4,) x0, y0, x1, y1
    score: float
    landmarks: np.ndarray | None = None

    @property
    def size(self) -> float:
        """Side of the box in pixels (the larger of width and height)."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))

    def scaled(self, factor: float) -> "Face":
        """The same face in an image resized by `factor`."""
        lm = None if self.landmarks is None else (self.landmarks * factor).astype(np.float32)
        return Face((self.box * factor).astype(np.float32), self.score, lm)


def _shrink_for_detection(images: list[np.ndarray], max_side: int) -> tuple[list[np.ndarray], float]:
    """Detectors do not need 12 megapixels: resize big images down, return the factor to undo it."""
    h, w = images[0].shape[:2]
    factor = min(1.0, max_side / max(h, w))
    if factor == 1.0:
        return images, 1.0
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return [cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in images], factor


def _check_rgb(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"
        raise ValueError(f"Expected an RGB uint8 image of shape (H, W, 3), got {got}; use load_image() to read files.")
    return image


class Detector:
    """Common interface: `.detect(rgb)` and `.detect_batch([rgb, ...])` -> faces, largest first."""

    name = "detector"
    min_score = 0.0  # scores below this are rejected by the croppers
    # Where the box sits relative to the eyes, in eye distances: (box side, box centre below the eye line).
    # Used to crop boxes without landmarks at about the same framing as aligned faces.
    box_geometry = (2.6, 0.3)

    def __init__(self, min_size: int = 40, max_side: int = 1280):
        self.min_size = int(min_size)
        self.max_side = int(max_side)

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]:
        if len(images) == 0:
            return []
        images = [_check_rgb(im) for im in images]
        if any(im.shape != images[0].shape for im in images):
            return [self.detect(im) for im in images]  # only same-size images batch
        small, factor = _shrink_for_detection(images, self.max_side)
        found = self._detect_batch(small, self.min_size * factor)
        return [sorted((f.scaled(1 / factor) for f in faces), key=lambda f: -f.size) for faces in found]

    def _detect_batch(self, images: list[np.ndarray], min_size: float) -> list[list[Face]]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(min_size={self.min_size}, max_side={self.max_side})"


HAAR_CASCADE = "haarcascade_frontalface_default.xml"
NO_HAAR = (f"This OpenCV ({cv2.__version__}) has no Haar cascades (OpenCV 5 dropped them), "
           "so faces are found with MTCNN instead (slower on a CPU, but it also gives landmarks).")


class HaarUnavailable(RuntimeError):
    """This OpenCV cannot run the Haar cascade (OpenCV 5.x has no CascadeClassifier and ships no cascade files)."""


def haar_available(cascade: str = HAAR_CASCADE) -> bool:
    """True when this OpenCV has the cascade classifier and its model file: the 4.x wheels do, 5.x has neither."""
    if not hasattr(cv2, "CascadeClassifier"):
        return False
    folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
    return bool(folder) and (Path(folder) / cascade).is_file()


class HaarDetector(Detector):
    """OpenCV's Viola-Jones cascade (the seeds' detector): fast on a CPU, frontal faces only, no landmarks."""

    name = "haar"
    box_geometry = (2.6, 0.25)  # measured against MTCNN's eyes on the sample faces

    def __init__(self, min_size: int = 40, max_side: int = 1280, scale_factor: float = 1.1, min_neighbors: int = 5,
                 cascade: str = HAAR_CASCADE):
        super().__init__(min_size, max_side)
        if not haar_available(cascade):
            raise HaarUnavailable(f"This OpenCV ({cv2.__version__}) has no Haar cascades (OpenCV 5 dropped them): "
                                  "use make_detector('mtcnn'), or make_detector('haar'), which falls back to MTCNN.")
        path = Path(cv2.data.haarcascades) / cascade
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise HaarUnavailable(f"Could not load the Haar cascade {path}: use make_detector('mtcnn') instead.")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors

    def _detect_one(self, image: np.ndarray, min_size: float) -> list[Face]:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        side = max(1, int(min_size))
        boxes, _, weights = self.cascade.detectMultiScale3(
            gray, self.scale_factor, self.min_neighbors, minSize=(side, side), outputRejectLevels=True)
        faces = []
        for (x, y, w, h), weight in zip(np.reshape(boxes, (-1, 4)), np.reshape(weights, (-1,))):
            faces.append(Face(np.array([x, y, x + w, y + h], np.float32), float(weight), None))
        return faces

    def _detect_batch(self, images, min_size):
        return [self._detect_one(im, min_size) for im in images]


@contextmanager
def _torch_threads(n: int | None, device):
    """Run torch on `n` CPU threads inside the block, then restore the setting.

    MTCNN's networks are tiny: on a CPU, extra threads mostly wait for each
    other, and on a busy machine (other notebooks, a shared Colab VM) they
    make detection ten times slower. One thread is as fast when idle and
    steady when busy (see bench/bench_faces.py).
    """
    import torch

    if n is None or torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class MTCNNDetector(Detector):
    """MTCNN (Zhang et al. 2016) from facenet-pytorch: three small CNNs, a box and five landmarks per face.

    Its weights ship inside the facenet-pytorch wheel, so it works offline.
    Same-size images (video frames) go through the networks as one batch.
    """

    name = "mtcnn"
    min_score = 0.9
    box_geometry = (2.95, 0.32)

    def __init__(self, device=None, min_size: int = 40, max_side: int = 1280, thresholds=(0.6, 0.7, 0.7),
                 cpu_threads: int | None = 1):
        super().__init__(min_size, max_side)
        self.cpu_threads = cpu_threads
        import torch

        try:
            from facenet_pytorch.models.mtcnn import MTCNN
        except ImportError as exc:  # pragma: no cover - depends on the installed packages
            raise ImportError(
                f"MTCNN needs facenet-pytorch ({exc}). Install it with `pip install facenet-pytorch==2.5.3 --no-deps` "
                "(2.6 pins an old torch), or use make_detector('haar')."
            ) from exc
        self.device = torch.device(device or "cpu")
        self.thresholds = list(thresholds)
        self.net = MTCNN(keep_all=True, device=self.device, thresholds=self.thresholds, min_face_size=min_size).eval()

    def _detect_batch(self, images, min_size):
        import torch

        self.net.min_face_size = max(12, int(min_size))  # the image pyramid starts at this face size
        with torch.inference_mode(), _torch_threads(self.cpu_threads, self.device):
            try:
                boxes, scores, points = self.net.detect(np.stack(images), landmarks=True)
            except RuntimeError as exc:
                if "expected a non-empty list" not in str(exc):
                    raise
                return [[] for _ in images]  # facenet-pytorch fails when every candidate box lies outside the image
        out = []
        for b, s, p in zip(boxes, scores, points):
            faces = []
            if b is not None:
                for box, score, lm in zip(b, s, p):
                    faces.append(Face(np.asarray(box, np.float32), float(score), np.asarray(lm, np.float32).reshape(5, 2)))
            out.append(faces)
        return out

    def landmarks_in_boxes(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Five landmarks and a face score for given square boxes, from MTCNN's last network (ONet) alone.

        Cheap (one 48x48 pass per box): used to look again at a face that is
        already upright and centred, where the whole detector would be wasted work.
        """
        import torch

        patches, corners = [], []
        for x0, y0, x1, y1 in np.asarray(boxes, np.float64).reshape(-1, 4):
            side = max(1, int(round(max(x1 - x0, y1 - y0))))
            cx, cy = int(round(x0)), int(round(y0))
            scale = 48.0 / side
            m = np.array([[scale, 0, -scale * cx], [0, scale, -scale * cy]])
            patches.append(warp(image, m, 48))
            corners.append((cx, cy, side))
        batch = torch.as_tensor(np.stack(patches), dtype=torch.float32, device=self.device).permute(0, 3, 1, 2)
        with torch.inference_mode(), _torch_threads(self.cpu_threads, self.device):
            _, points, probs = self.net.onet((batch - 127.5) * 0.0078125)
        points, probs = points.cpu().numpy(), probs[:, 1].cpu().numpy()
        out = np.empty((len(patches), 5, 2), np.float32)
        for i, (cx, cy, side) in enumerate(corners):
            out[i, :, 0] = cx + points[i, :5] * side
            out[i, :, 1] = cy + points[i, 5:] * side
        return out, probs

    def __repr__(self) -> str:
        return f"MTCNNDetector(device={self.device}, min_size={self.min_size}, max_side={self.max_side})"


DETECTORS = {"mtcnn": MTCNNDetector, "haar": HaarDetector}
DETECTOR_NAMES = ("auto", "haar", "mtcnn")
_told_no_haar = False  # the OpenCV 5 fallback is announced once per session, not once per crop


def detector_name(name: str, _caller_depth: int = 1) -> str:
    """The detector that will really run for `name`: "haar" or "mtcnn".

    "auto" is Haar where this OpenCV has it (fast on a CPU) and MTCNN
    elsewhere. "haar" on OpenCV 5, which has no cascades, also becomes
    MTCNN, so a notebook asking for Haar still finds faces; the first such
    fallback warns in one sentence.
    """
    global _told_no_haar
    if name not in DETECTOR_NAMES:
        raise ValueError(f"Unknown detector {name!r}; choose from {list(DETECTOR_NAMES)}.")
    if name == "mtcnn" or haar_available():
        return "haar" if name == "auto" else name
    if not _told_no_haar:
        _told_no_haar = True
        warnings.warn(NO_HAAR, stacklevel=1 + _caller_depth)  # point at the notebook line, not at helpers
    return "mtcnn"


def make_detector(name: str = "mtcnn", device=None, **kwargs) -> Detector:
    """A detector by name: "mtcnn" (landmarks, better), "haar" (fast, no landmarks) or "auto" (Haar if present).

    Without Haar cascades (OpenCV 5) "haar" and "auto" give MTCNN, with one
    warning; Haar-only keyword arguments are then dropped. To insist on Haar,
    build HaarDetector() yourself: it raises HaarUnavailable.
    """
    if isinstance(name, Detector):
        return name
    wanted = name
    name = detector_name(name, _caller_depth=2)
    if name == "mtcnn":
        if wanted != "mtcnn":
            kwargs = {k: v for k, v in kwargs.items() if k in ("min_size", "max_side")}
        return MTCNNDetector(device=device, **kwargs)
    return HaarDetector(**kwargs)


# ---------------------------------------------------------------------------------------------
# Alignment

# The five landmarks of an average upright face, in units of the eye distance, origin between the eyes
# (x to the right of the image, y down). Measured by us: the mean of MTCNN's landmarks on the sample portraits
# and videos (79 faces) after mapping each face's eyes to (-0.5, 0) and (0.5, 0), made symmetric.
MEAN_FACE = np.array([[-0.5, 0.0], [0.5, 0.0], [0.0, 0.52], [-0.45, 1.02], [0.45, 1.02]], np.float64)
FACE_SIDE = 3.0  # a tight face square (forehead to chin) is 3 eye distances wide ...
FACE_CENTRE = 0.35  # ... centred a third of an eye distance below the eyes
DEFAULT_MARGIN = 0.2


@dataclass
class Aligned:
    image: np.ndarray  # uint8 (size, size, 3)
    matrix: np.ndarray  # float64 (2, 3): image pixel -> crop pixel


def template(size: int = 256, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Where the five landmarks land in a `size` crop: eyes level, face centred.

    `margin` is the extra room around the tight face on each side, as a fraction
    of it: 0 cuts at forehead and chin, 0.2 keeps some hair, 0.5 the whole head.
    """
    if size < 8 or not 0 <= margin <= 2:
        raise ValueError(f"Need size >= 8 and 0 <= margin <= 2, got size={size}, margin={margin}.")
    pixels_per_eye_distance = size / (FACE_SIDE * (1 + 2 * margin))
    return (MEAN_FACE - [0.0, FACE_CENTRE]) * pixels_per_eye_distance + size / 2


def box_matrix(box: np.ndarray, size: int = 256, margin: float = DEFAULT_MARGIN,
               geometry: tuple[float, float] = Detector.box_geometry) -> np.ndarray:
    """Matrix of a centred square crop of a box (no landmarks), framed like an aligned face."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side_units, centre_units = geometry
    eye_distance = max(x1 - x0, y1 - y0) / side_units
    cx = (x0 + x1) / 2
    cy = (y0 + y1) / 2 + (FACE_CENTRE - centre_units) * eye_distance
    side = FACE_SIDE * (1 + 2 * margin) * eye_distance
    s = size / side
    return np.array([[s, 0.0, size / 2 - s * cx], [0.0, s, size / 2 - s * cy]])


YAW_SLACK = 1.15  # eyes may look this much closer together than the mean face before the mouth sets the scale


def landmark_matrix(landmarks: np.ndarray, size: int = 256, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Image -> crop similarity that puts the eyes level, at the template's eye positions.

    The eye line gives the angle and the eye midpoint the position. The eye
    distance gives the scale, except when the head is turned: then the eyes
    look closer together than they are, and the (yaw-proof) eye-to-mouth
    distance sets the scale instead, so turned faces are not blown up.
    """
    lm = np.asarray(landmarks, np.float64)
    eyes_mid, mouth_mid = lm[:2].mean(0), lm[3:].mean(0)
    across = lm[1] - lm[0]
    eye_distance = float(np.hypot(*across))
    if eye_distance < 1e-6:
        raise ValueError("Both eyes are at the same point: these landmarks cannot be aligned.")
    across /= eye_distance
    down = np.array([-across[1], across[0]])  # 90 degrees clockwise in image coordinates (y points down)
    mouth_ratio = MEAN_FACE[3:, 1].mean() - MEAN_FACE[:2, 1].mean()  # eye-to-mouth / eye distance of the mean face
    eye_to_mouth = float((mouth_mid - eyes_mid) @ down)
    face_scale = max(eye_distance, eye_to_mouth / mouth_ratio / YAW_SLACK)  # one eye distance of this face, px
    target = template(size, margin)
    scale = float(np.hypot(*(target[1] - target[0]))) / face_scale
    rot = scale * np.array([across, down])  # rows: crop x and crop y directions in the image
    shift = target[:2].mean(0) - rot @ eyes_mid
    return np.hstack([rot, shift[:, None]])


def face_matrix(face: Face, size: int = 256, margin: float = DEFAULT_MARGIN, geometry=Detector.box_geometry) -> np.ndarray:
    """Image -> crop matrix of a face: from its landmarks, or a square around the box without them."""
    if face.landmarks is None:
        return box_matrix(face.box, size, margin, geometry)
    return landmark_matrix(face.landmarks, size, margin)


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """cv2.warpAffine(image, matrix, (size, size)), but shrinking big faces with area averaging first.

    Bilinear sampling of a face 4x bigger than the crop skips pixels and
    aliases; halving the image first keeps the crop smooth. The matrix stays
    image -> crop either way.
    """
    matrix = np.asarray(matrix, np.float64)
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    h, w = image.shape[:2]
    if scale < 0.5 and min(h, w) * scale * 2 >= 8:
        factor = 2 ** math.floor(math.log2(1 / scale))  # leave a remaining scale in (0.5, 1]
        sw, sh = max(1, round(w / factor)), max(1, round(h / factor))
        small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
        fx, fy = sw / w, sh / h
        # pixel centres: x_small = (x + 0.5) * f - 0.5  =>  x = (x_small + 0.5) / f - 0.5
        a = matrix[:, :2] / [fx, fy]
        t = matrix[:, 2] + matrix[:, :2] @ [0.5 / fx - 0.5, 0.5 / fy - 0.5]
        image, matrix = small, np.hstack([a, t[:, None]])
    # where the crop reaches past the picture, repeat the edge pixels: a mirrored border would add a second chin
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def outside_fraction(matrix: np.ndarray, size: int, image_shape: tuple[int, ...], samples: int = 16) -> float:
    """Share of the crop that lies outside the picture (a face cut by the frame's edge), from a grid of points."""
    steps = (np.arange(samples) + 0.5) * size / samples
    grid = np.stack(np.meshgrid(steps, steps), -1).reshape(-1, 2)
    points = transform_points(cv2.invertAffineTransform(np.asarray(matrix, np.float64)), grid)
    h, w = image_shape[:2]
    inside = (points[:, 0] >= 0) & (points[:, 0] <= w - 1) & (points[:, 1] >= 0) & (points[:, 1] <= h - 1)
    return float(1 - inside.mean())


def compose(second: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The 2x3 matrix that applies `first`, then `second`."""
    return np.hstack([second[:, :2] @ first[:, :2], (second[:, :2] @ first[:, 2] + second[:, 2])[:, None]])


REFINE_SIZE = 256  # landmarks are re-detected on an upright crop of this size


def refine_matrix(image: np.ndarray, face: Face, detector: "Detector", size: int = 256,
                  margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Align once, find the landmarks again on the upright crop, and align on those.

    Landmark detectors are most accurate on upright faces of the size they
    were trained on; a rolled or tiny face gets rough landmarks the first time.
    Falls back to the first alignment if the second look finds no face.
    """
    first = landmark_matrix(face.landmarks, REFINE_SIZE, margin)
    crop = warp(image, first, REFINE_SIZE)
    target = template(REFINE_SIZE, margin)
    if hasattr(detector, "landmarks_in_boxes"):  # MTCNN: we know where the face is, run only its last network
        eye_distance = float(np.hypot(*(target[1] - target[0])))
        side_units, centre_units = detector.box_geometry
        cx, cy = target[:2].mean(0) + [0.0, centre_units * eye_distance]
        half = side_units * eye_distance / 2
        points, scores = detector.landmarks_in_boxes(crop, np.array([[cx - half, cy - half, cx + half, cy + half]]))
        again = points[0] if scores[0] >= 0.5 else None
    else:
        found = [f for f in detector.detect(crop) if f.landmarks is not None]
        again = min(found, key=lambda f: np.hypot(*(f.landmarks[:2].mean(0) - target[:2].mean(0)))).landmarks if found else None
    if again is None or np.hypot(*(again[:2].mean(0) - target[:2].mean(0))) > 0.25 * REFINE_SIZE:
        return landmark_matrix(face.landmarks, size, margin)  # no face there on the second look: keep the first
    return compose(landmark_matrix(again, size, margin), first)


def align_face(image: np.ndarray, face: Face, size: int = 256, margin: float = DEFAULT_MARGIN,
               geometry=Detector.box_geometry, refine: "Detector | None" = None) -> Aligned:
    """Rotate, scale and shift a face onto the template; return the crop and its image -> crop matrix.

    With `refine` (a landmark detector), the landmarks are found a second
    time on the upright crop (see refine_matrix). Paste back with
    cv2.invertAffineTransform(matrix). For another crop size s, use matrix * (s / size).
    """
    _check_rgb(image)
    if refine is not None and face.landmarks is not None:
        matrix = refine_matrix(image, face, refine, size, margin)
    else:
        matrix = face_matrix(face, size, margin, geometry)
    return Aligned(warp(image, matrix, size), matrix)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 matrix to (N, 2) points."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


# ---------------------------------------------------------------------------------------------
# Quality measures


def blur_score(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image: high for sharp edges, low for blur (Pech-Pacheco 2000)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


# ---------------------------------------------------------------------------------------------
# Reading images


class ImageError(ValueError):
    """A file that is not a readable image; the message says why."""


def _to_rgb8(pil) -> np.ndarray:
    """Any Pillow mode -> RGB uint8: transparency onto white, 16-bit scaled down, CMYK converted."""
    from PIL import Image

    mode = pil.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(pil, dtype=np.float64)
        top = 65535.0 if a.max() > 255 else 255.0
        gray = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([gray] * 3, -1))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in pil.info):
        rgba = pil.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        pil = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(pil.convert("RGB"), dtype=np.uint8))


def _cv2_read(path: Path) -> np.ndarray | None:
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        return None
    if image.dtype == np.uint16:
        image = (image / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image.astype(np.float64), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        alpha = image[..., 3:4].astype(np.float64) / 255.0
        image = (image[..., :3] * alpha + 255 * (1 - alpha) + 0.5).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photo upright as RGB uint8, whatever its mode; raise ImageError with the reason if unreadable.

    Phones store portrait photos sideways plus an EXIF orientation tag; we
    apply it. Pillow reads first (it knows EXIF); OpenCV is the fallback for
    formats Pillow does not identify.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError("not a file")
    if path.stat().st_size == 0:
        raise ImageError("empty file")
    try:
        with Image.open(path) as pil:
            pil.load()
            pil = ImageOps.exif_transpose(pil)
            image = _to_rgb8(pil)
    except UnidentifiedImageError:
        image = _cv2_read(path)
        if image is None:
            raise ImageError("not an image (unknown format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        reason = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise ImageError(f"{reason} ({exc})") from None
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ImageError(f"too small ({image.shape[1]}x{image.shape[0]})")
    return image


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder (by extension, not recursive), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No folder {folder}: check the path (notebook 01 writes workspace/raw/<domain>/).")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


# ---------------------------------------------------------------------------------------------
# The face index (faces.csv)


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


# ---------------------------------------------------------------------------------------------
# Cropping: detection -> filters -> aligned PNGs + faces.csv


@dataclass
class CropReport:
    """What one crop run did. `skipped` names the unreadable inputs."""

    out_dir: Path
    sources: int = 0  # files or videos looked at in this run
    done_before: int = 0  # sources (or frames) already in faces.csv, not redone
    frames: int = 0  # images or video frames searched
    faces: int = 0  # faces detected
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    skipped: list = field(default_factory=list)  # (name, reason)
    seconds: float = 0.0

    def __str__(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in self.rejected.most_common()) or "none"
        lines = [
            f"{self.out_dir}: searched {self.frames} images/frames from {self.sources} source(s) in {self.seconds:.1f} s",
            f"  faces found {self.faces}, kept {self.kept}, rejected: {reasons}",
        ]
        if self.done_before:
            lines.append(f"  {self.done_before} already done in an earlier run (skipped)")
        if self.skipped:
            names = ", ".join(f"{n} ({r})" for n, r in self.skipped[:5]) + (" ..." if len(self.skipped) > 5 else "")
            lines.append(f"  unreadable, skipped: {len(self.skipped)}: {names}")
        return "\n".join(lines)


def _fmt(values, digits=2) -> str:
    return "" if values is None else json.dumps(np.round(np.asarray(values, np.float64), digits).flatten().tolist())


class _Cropper:
    """Shared state of one crop run: the detector, the filters, and the rows already in faces.csv."""

    def __init__(self, out_dir, size, margin, detector, device, min_face, min_score, blur, multi, dedupe, refine, report):
        if multi not in MULTI_POLICIES:
            raise ValueError(f"multi must be one of {MULTI_POLICIES}, got {multi!r}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.size, self.margin = int(size), float(margin)
        self.min_face, self.blur, self.multi, self.dedupe = min_face, blur, multi, dedupe
        if isinstance(detector, Detector):
            self.detector = detector
        else:  # MTCNN looks for faces a bit smaller than the filter keeps, so small ones are seen and counted;
            # Haar's small windows are its main cost, so it only looks for faces we would keep
            detector = detector_name(detector, _caller_depth=3)  # _Cropper <- crop_video/crop_folder <- caller
            smallest = max(1, int(min_face)) if detector == "haar" else max(20, int(min_face * 0.6))
            self.detector = make_detector(detector, device=device, min_size=smallest)
        self.min_score = self.detector.min_score if min_score is None else float(min_score)
        self.refine = self.detector if refine else None
        self.report = report
        rows = read_index(self.out_dir)
        self.done = {(r["source"], r["frame"]) for r in rows}
        self.done_sources = {r["source"] for r in rows}
        self.hashes = [(int(r["phash"], 16), r["face"]) for r in rows if r["status"] == "kept" and r.get("phash")]

    def handle(self, image: np.ndarray, faces: list[Face], source: str, frame: int | str = "", t: float | str = "") -> list[dict]:
        """Filter, align and save the faces of one image; return their faces.csv rows."""
        self.report.frames += 1
        self.report.faces += len(faces)
        base = {"source": source, "frame": frame, "time": "" if t == "" else f"{t:.3f}", "detector": self.detector.name}
        if not faces:
            return [self._count(dict(base, face="", status="rejected:no_face"))]
        verdicts = self._first_verdicts(faces)
        stem = Path(source).name.replace(".", "_") + (f"_f{int(frame):06d}" if frame != "" else "")
        rows = []
        for i, (face, verdict) in enumerate(zip(faces, verdicts)):
            refine = self.refine if verdict == "kept" else None  # a second look only for faces we may keep
            aligned = align_face(image, face, self.size, self.margin, self.detector.box_geometry, refine)
            sharpness = blur_score(aligned.image)
            cut = outside_fraction(aligned.matrix, self.size, image.shape)
            digest = phash(aligned.image)
            if verdict == "kept" and self.blur and sharpness < self.blur:
                verdict = "rejected:blurry"
            if verdict == "kept" and self.dedupe is not None:
                twin = next((name for h, name in self.hashes if hamming(h, digest) <= self.dedupe), None)
                if twin is not None:
                    verdict = "rejected:duplicate"
            name = f"{stem}_{i}.png"
            ok, png = cv2.imencode(".png", cv2.cvtColor(aligned.image, cv2.COLOR_RGB2BGR))
            (self.out_dir / name).write_bytes(png.tobytes())
            if verdict == "kept":
                self.hashes.append((digest, name))
            rows.append(self._count(dict(
                base, face=name, index=i, score=f"{face.score:.4f}", size=f"{face.size:.1f}", box=_fmt(face.box, 1),
                landmarks=_fmt(face.landmarks, 1), matrix=_fmt(aligned.matrix, 6), blur=f"{sharpness:.1f}", outside=f"{cut:.2f}",
                phash=f"{digest:016x}", status=verdict)))
        return rows

    def _first_verdicts(self, faces: list[Face]) -> list[str]:
        """Score, size and several-faces decisions (cheap, before aligning)."""
        verdicts = []
        for face in faces:
            if face.score < self.min_score:
                verdicts.append("rejected:low_score")
            elif face.size < self.min_face:
                verdicts.append("rejected:too_small")
            else:
                verdicts.append("kept")
        candidates = [i for i, v in enumerate(verdicts) if v == "kept"]
        if len(candidates) > 1 and self.multi != "all":
            largest = max(candidates, key=lambda i: faces[i].size)
            for i in candidates:
                if self.multi == "reject":
                    verdicts[i] = "rejected:several_faces"
                elif i != largest:
                    verdicts[i] = "rejected:not_largest"
        return verdicts

    def _count(self, row: dict) -> dict:
        if row["status"] == "kept":
            self.report.kept += 1
        else:
            self.report.rejected[row["status"].split(":", 1)[1]] += 1
        return row


def _check_whole(name: str, value, low: int, meaning: str, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low} ({meaning}){' or None' if none_ok else ''}, got {value!r}.")


def _check_number(name: str, value, low: float, high: float, meaning: str, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and low <= float(value) <= high
    if not ok:
        span = f">= {low}" if high == math.inf else f"between {low} and {high}"
        raise ValueError(f"{name} must be a number {span} ({meaning}){' or None' if none_ok else ''}, got {value!r}.")


def _check_crop_args(size, margin, detector, min_face, blur, multi, dedupe, min_score, **counts) -> None:
    """Fail at once, before any file is written, on arguments that would crash later or crop nonsense."""
    _check_whole("size", size, 8, "side of the square crops in pixels, e.g. 256")
    _check_number("margin", margin, 0, 2, "room around the face: 0 tight, 0.2 some hair, 0.5 the whole head")
    if not isinstance(detector, Detector) and detector not in DETECTOR_NAMES:
        raise ValueError(f"Unknown detector {detector!r}; choose from {list(DETECTOR_NAMES)} or pass a Detector.")
    _check_number("min_face", min_face, 0, math.inf, "smallest face box kept, in pixels; 0 keeps all")
    _check_number("blur", blur, 0, math.inf, "least sharpness kept; None or 0 keeps blurry faces too", none_ok=True)
    if multi not in MULTI_POLICIES:
        raise ValueError(f"multi must be one of {MULTI_POLICIES}, got {multi!r}.")
    _check_whole("dedupe", dedupe, 0, "near-duplicate threshold in bits of the 64-bit hash, e.g. 4", none_ok=True)
    _check_number("min_score", min_score, -math.inf, math.inf, "least detector score kept", none_ok=True)
    meanings = {"every": "1 = every frame, 2 = every other frame", "batch": "frames per detector call",
                "max_frames": "frames to search at most", "limit": "photos to look at, at most"}
    for name, value in counts.items():
        _check_whole(name, value, 1, meanings[name], none_ok=name in ("max_frames", "limit"))


def _progress(iterable, total=None, desc="", enabled=True):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


def crop_video(
    video: str | os.PathLike,
    out_dir: str | os.PathLike,
    size: int = 256,
    every: int = 1,
    detector: str | Detector = "mtcnn",
    margin: float = DEFAULT_MARGIN,
    min_face: int = 64,
    blur: float | None = 20.0,
    multi: str = "largest",
    dedupe: int | None = None,
    min_score: float | None = None,
    refine: bool = True,
    max_frames: int | None = None,
    batch: int = 8,
    device=None,
    progress: bool = True,
) -> CropReport:
    """Detect, align and save the faces of every `every`-th frame of a video; return a report.

    Filters (each rejection is a row of faces.csv with its reason): faces with a
    box smaller than `min_face` px, a variance of the Laplacian under `blur`
    (None: no blur filter), several faces (`multi`: keep the "largest", "all",
    or "reject" the frame), and near-duplicates of a kept face (perceptual hash
    within `dedupe` bits; None, the default for videos, keeps them: successive
    frames are near-duplicates by nature, so thin them with `every` instead).
    With `refine`, the landmarks are found again on the upright crop for a
    steadier alignment. Frames already in faces.csv are skipped, so an
    interrupted run continues where it stopped.
    """
    from ..video import iter_frames, probe

    _check_crop_args(size, margin, detector, min_face, blur, multi, dedupe, min_score, every=every, batch=batch,
                     max_frames=max_frames)
    t0 = time.perf_counter()
    report = CropReport(Path(out_dir))
    cropper = _Cropper(out_dir, size, margin, detector, device, min_face, min_score, blur, multi, dedupe, refine, report)
    video = Path(video)
    report.sources = 1
    info = probe(video)
    total = math.ceil(info.frame_count / every) if info.frame_count else None
    if max_frames is not None and total is not None:
        total = min(total, max_frames)
    pending = []

    def flush():
        found = cropper.detector.detect_batch([f.image for f in pending])
        rows = []
        for frame, faces in zip(pending, found):
            rows += cropper.handle(frame.image, faces, video.name, frame.index, frame.time)
        append_index(cropper.out_dir, rows)
        pending.clear()

    try:
        for frame in _progress(iter_frames(video, every=every, max_frames=max_frames), total, video.name, progress):
            if (video.name, str(frame.index)) in cropper.done:
                report.done_before += 1
                continue
            pending.append(frame)
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
    except KeyboardInterrupt:
        print(f"Interrupted: what was done so far is in {cropper.out_dir / INDEX}; run again to continue.")
    report.seconds = time.perf_counter() - t0
    return report


def crop_folder(
    in_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    size: int = 256,
    detector: str | Detector = "mtcnn",
    margin: float = DEFAULT_MARGIN,
    min_face: int = 64,
    blur: float | None = 20.0,
    multi: str = "largest",
    dedupe: int | None = 4,
    min_score: float | None = None,
    refine: bool = True,
    limit: int | None = None,
    device=None,
    progress: bool = True,
) -> CropReport:
    """Detect, align and save the faces of every photo in a folder; the filters are those of crop_video.

    Unreadable files (empty, not an image, truncated) are skipped, counted,
    named in the report and recorded as "rejected:unreadable" in faces.csv.
    Photos already in faces.csv are not redone.
    """
    _check_crop_args(size, margin, detector, min_face, blur, multi, dedupe, min_score, limit=limit)
    t0 = time.perf_counter()
    report = CropReport(Path(out_dir))
    cropper = _Cropper(out_dir, size, margin, detector, device, min_face, min_score, blur, multi, dedupe, refine, report)
    files = image_files(in_dir)[:limit]
    try:
        for path in _progress(files, len(files), Path(in_dir).name, progress):
            if path.name in cropper.done_sources:
                report.done_before += 1
                continue
            report.sources += 1
            try:
                image = load_image(path)
            except ImageError as exc:
                report.skipped.append((path.name, str(exc)))
                append_index(cropper.out_dir, [cropper._count({"face": "", "source": path.name, "frame": "", "status": "rejected:unreadable"})])
                continue
            faces = cropper.detector.detect(image)
            append_index(cropper.out_dir, cropper.handle(image, faces, path.name))
    except KeyboardInterrupt:
        print(f"Interrupted: what was done so far is in {cropper.out_dir / INDEX}; run again to continue.")
    report.seconds = time.perf_counter() - t0
    return report


# ---------------------------------------------------------------------------------------------
# Pictures


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


from .sample_faces import SAMPLE_VIDEOS, ensure_sample_faces, sample_every  # noqa: E402  (lessons 03-05 without lesson 02)
