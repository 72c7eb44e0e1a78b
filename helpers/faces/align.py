"""Alignment: turn, scale and shift a face so its eyes land on a fixed template.

A model that sees every face at the same place, size and angle spends its
capacity on the face itself, not on undoing head tilt and zoom. The matrix
(image pixel -> crop pixel) is kept, so lesson 05 can paste a face back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .images import check_rgb

if TYPE_CHECKING:
    from .detect import Detector, Face

# The five landmarks of an average upright face, in units of the eye distance, origin between the eyes
# (x to the right of the image, y down). Measured by us: the mean of MTCNN's landmarks on the sample portraits
# and videos (79 faces) after mapping each face's eyes to (-0.5, 0) and (0.5, 0), made symmetric.
MEAN_FACE = np.array([[-0.5, 0.0], [0.5, 0.0], [0.0, 0.52], [-0.45, 1.02], [0.45, 1.02]], np.float64)
FACE_SIDE = 3.0  # a tight face square (forehead to chin) is 3 eye distances wide ...
FACE_CENTRE = 0.35  # ... centred a third of an eye distance below the eyes
DEFAULT_MARGIN = 0.2
# Where a detector's box sits relative to the eyes, in eye distances: (box side, box centre below the eye line).
# Used to crop boxes without landmarks at about the same framing as aligned faces; each detector has its own.
BOX_GEOMETRY = (2.6, 0.3)


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
               geometry: tuple[float, float] = BOX_GEOMETRY) -> np.ndarray:
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


def face_matrix(face: Face, size: int = 256, margin: float = DEFAULT_MARGIN, geometry=BOX_GEOMETRY) -> np.ndarray:
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
               geometry=BOX_GEOMETRY, refine: "Detector | None" = None) -> Aligned:
    """Rotate, scale and shift a face onto the template; return the crop and its image -> crop matrix.

    With `refine` (a landmark detector), the landmarks are found a second
    time on the upright crop (see refine_matrix). Paste back with
    cv2.invertAffineTransform(matrix). For another crop size s, use matrix * (s / size).
    """
    check_rgb(image)
    if refine is not None and face.landmarks is not None:
        matrix = refine_matrix(image, face, refine, size, margin)
    else:
        matrix = face_matrix(face, size, margin, geometry)
    return Aligned(warp(image, matrix, size), matrix)


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 matrix to (N, 2) points."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]

