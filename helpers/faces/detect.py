"""Face detectors: OpenCV's Haar cascade (fast, boxes only) and MTCNN (boxes and five landmarks).

    det = make_detector("mtcnn")
    faces = det.detect(rgb)          # [Face(box, score, landmarks)], largest first

OpenCV 5 has no Haar cascades: there "haar" and "auto" fall back to MTCNN
with one warning, so a notebook asking for Haar still finds faces.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .align import BOX_GEOMETRY, warp
from .images import check_rgb

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



class Detector:
    """Common interface: `.detect(rgb)` and `.detect_batch([rgb, ...])` -> faces, largest first."""

    name = "detector"
    min_score = 0.0  # scores below this are rejected by the croppers
    box_geometry = BOX_GEOMETRY  # where the box sits relative to the eyes (see align.BOX_GEOMETRY)

    def __init__(self, min_size: int = 40, max_side: int = 1280):
        self.min_size = int(min_size)
        self.max_side = int(max_side)

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]:
        if len(images) == 0:
            return []
        images = [check_rgb(im) for im in images]
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

