"""What lesson 04 asks of face models: whether to skip to translating, and faces to try one on.

Lesson 05's choice of model trains a toy swap when there is none, so it lives above the trainers (helpers.lesson_model).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .load import has_checkpoint


def translate_only(run_dir: str | os.PathLike, faces_root: str | os.PathLike, domains) -> str | None:
    """Why lesson 04 should skip training and go straight to translating, or None to train.

    That is when the run folder holds a U-GAT-IT (trained here or shared) and
    a domain has no faces to train on: the sample domains can always be cropped.
    """
    from ..data import list_faces
    from ..faces import SAMPLE_VIDEOS

    def has_faces(name: str) -> bool:
        folder = Path(faces_root) / name
        return name in SAMPLE_VIDEOS or (folder.is_dir() and bool(list_faces(folder)))

    missing = [d for d in domains if not has_faces(d)]
    if not missing or not has_checkpoint(run_dir, "ugatit"):
        return None
    return (f"A trained U-GAT-IT is ready in {run_dir} and there are no faces of {', '.join(missing)} to train on, "
            "so the training sections are skipped and the lesson goes straight to translating (section 6).")


def portrait_crops(samples_dir: str | os.PathLike, size: int = 256, detector="mtcnn") -> np.ndarray:
    """Aligned faces of the sample portraits (uint8 (N, size, size, 3)): faces to try a model on when no face folder exists."""
    import cv2

    from ..faces import align_face, make_detector
    from ..samples import fetch_samples

    detector = make_detector(detector) if isinstance(detector, str) else detector
    crops = []
    for path in fetch_samples(samples_dir, ["grace_hopper.jpg", "astronaut.png"]).values():
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        crops += [align_face(rgb, face, size=size).image for face in detector.detect(rgb)]
    return np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
