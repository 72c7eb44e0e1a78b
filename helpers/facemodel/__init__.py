"""Trained face models behind one contract, so lesson 05 (and anyone) can use either.

    model = load_face_model(ws.checkpoints / "swap", ws.device)   # or load_swapper / load_translator
    new_faces = model(faces)          # uint8 (N, H, W, 3) RGB aligned crops -> the same shape
    model.kind, model.size, model.name

    contract.py  FaceModel, Swapper (lesson 03), Translator (lesson 04): crops in, crops out
    load.py      read a checkpoint safely, tell its kind, build the model (load_face_model)
    shared.py    fetch_checkpoint: a checkpoint someone shared, into a run folder
    lessons.py   translate_only (lesson 04), portrait_crops

`from helpers.facemodel import X` works for all of them. This package sits below both trainers
(helpers.swap, helpers.ugatit) and imports neither; lesson 05's model_for_render, which may train a
toy swap, lives above them in helpers.lesson_model and is still reachable here by name.
"""

from .contract import (DIRECTIONS, IDENTITIES, KINDS, LOADERS, UGATIT_ARCH, UGATIT_NETS, FaceModel, Swapper, Translator,
                       WrongCheckpointKind, as_device, inference_dtype, resize_faces)
from .load import (SWAP_HINT, UGATIT_HINT, checkpoint_kind, describe_architecture, has_checkpoint,
                   load_face_model, load_swapper, load_translator, pretrained_networks, read_checkpoint, read_weights,
                   ugatit_architecture)
from .lessons import portrait_crops, translate_only
from .shared import fetch_checkpoint, fetch_shared_swap, fetch_shared_ugatit

__all__ = [
    "DIRECTIONS", "IDENTITIES", "KINDS", "LOADERS", "SWAP_HINT", "UGATIT_ARCH", "UGATIT_HINT", "UGATIT_NETS",
    "FaceModel", "Swapper", "Translator", "WrongCheckpointKind", "as_device", "checkpoint_kind",
    "describe_architecture", "fetch_checkpoint", "fetch_shared_swap", "fetch_shared_ugatit", "has_checkpoint",
    "inference_dtype", "load_face_model", "load_swapper", "load_translator", "portrait_crops",
    "pretrained_networks", "read_checkpoint", "read_weights", "resize_faces", "translate_only",
    "ugatit_architecture",
]

ABOVE = ("model_for_render", "train_toy_swapper")  # names that live in helpers.lesson_model, above the trainers


def __getattr__(name):
    """`helpers.facemodel.model_for_render` as before, imported from above only when used."""
    if name in ABOVE:
        from .. import lesson_model

        return getattr(lesson_model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
