"""Pictures of faces: boxes and landmarks drawn on a photo."""

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

