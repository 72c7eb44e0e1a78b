"""What the lessons ask of face models: lesson 05's choice of model, lesson 04's skip to translating, faces to try one on."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .contract import KINDS, FaceModel, Swapper, as_device
from .load import has_checkpoint, load_face_model, load_swapper




def model_for_render(ws, mode: str = "swap", swap_run: str = "swap", ugatit_run: str = "ugatit", to: str = "A",
                     direction: str = "A2B", quick: bool = False, detector="mtcnn") -> FaceModel:
    """Lesson 05's face model: the kind `mode` asks for, else the other lesson's, else (quick) a toy swap trained now.

    Without any trained model and outside quick mode it stops with one
    sentence that names the notebook to run first.
    """
    from ..env import LessonStop

    if mode not in KINDS:
        raise ValueError(f"mode must be 'swap' or 'ugatit', not {mode!r}")
    device = as_device(ws.device)
    runs = {"swap": ws.checkpoints / swap_run, "ugatit": ws.checkpoints / ugatit_run}
    lesson = {"swap": "lesson 03", "ugatit": "lesson 04"}
    for kind in [mode] + [k for k in KINDS if k != mode]:
        try:
            model = load_face_model(runs[kind], device, to=to, direction=direction)
        except FileNotFoundError:
            continue
        if kind != mode:
            print(f"No {KINDS[mode].split(' (')[0]} in {runs[mode]}: using {lesson[kind]}'s {model.name} instead.")
        return model
    if not quick:
        raise LessonStop(
            f"No trained model in this workspace ({runs['swap']} and {runs['ugatit']} are empty): run notebook 03 (face swap) "
            "or notebook 04 (U-GAT-IT) first, set SHARED_CHECKPOINT_URL there, or set QUICK = True for a toy model.")
    print(f"No swap checkpoint in {runs['swap']}: lesson 03 has not run in this workspace. "
          "Training a toy model with SwapConfig.quick() so this lesson can run; run lesson 03 for a real one.")
    return train_toy_swapper(ws, runs["swap"], to, detector)


def train_toy_swapper(ws, folder: Path, to: str = "A", detector="mtcnn") -> Swapper:
    """A few quick steps of lesson 03 on the sample identities: blurry, but every step of lesson 05 runs.

    The faces come from `ensure_sample_faces`, the one place every lesson crops
    the sample identities (folders lesson 02 already wrote are kept).
    """
    from ..data import require_faces
    from ..faces import ensure_sample_faces
    from ..swap import SwapConfig, train_swap

    for name, report in ensure_sample_faces(ws.faces, ["woman", "man"], ws.samples, detector=detector, device=ws.device).items():
        print(f"{name}: {report}")
        require_faces(ws.faces / name, lesson="02")
    train_swap(SwapConfig.quick(), ws.faces / "woman", ws.faces / "man", folder, ws.device)
    return load_swapper(folder, ws.device, to=to)


def translate_only(run_dir: str | os.PathLike, faces_root: str | os.PathLike, domains) -> str | None:
    """Why lesson 04 should skip training and go straight to translating, or None to train.

    That is when the run folder holds a U-GAT-IT (trained here or shared) and
    a domain has no faces to train on: the sample domains can always be cropped.
    """
    from ..data import list_faces
    from ..ugatit import SAMPLE_VIDEOS

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
