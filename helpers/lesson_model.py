"""Lesson 05's face model: the one trained in lesson 03 or 04, else a toy swap trained on the spot.

It sits above both trainers (it may train a swap), so helpers.facemodel,
which both trainers build on, never imports them:

    facemodel (inference: the face contract, loading, shared checkpoints)
        <- swap, ugatit (training)  <- lesson_model (what lesson 05 renders with)

`from helpers.facemodel import model_for_render` still works: the name is
looked up here when first used.
"""

from __future__ import annotations

from pathlib import Path

from .facemodel import KINDS, FaceModel, Swapper, as_device, load_face_model, load_swapper


def model_for_render(ws, mode: str = "swap", swap_run: str = "swap", ugatit_run: str = "ugatit", to: str = "A",
                     direction: str = "A2B", quick: bool = False, detector="mtcnn") -> FaceModel:
    """Lesson 05's face model: the kind `mode` asks for, else the other lesson's, else (quick) a toy swap trained now.

    Without any trained model and outside quick mode it stops with one
    sentence that names the notebook to run first.
    """
    from .env import LessonStop

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
    from .data import require_faces
    from .faces import ensure_sample_faces
    from .swap import SwapConfig, train_swap

    for name, report in ensure_sample_faces(ws.faces, ["woman", "man"], ws.samples, detector=detector, device=ws.device).items():
        print(f"{name}: {report}")
        require_faces(ws.faces / name, lesson="02")
    train_swap(SwapConfig.quick(), ws.faces / "woman", ws.faces / "man", folder, ws.device)
    return load_swapper(folder, ws.device, to=to)
