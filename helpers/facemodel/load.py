"""Loading a face model: read a checkpoint safely, tell which lesson's model it is, build it for inference.

Loading reads only what inference needs and says what is wrong with a folder
(empty, unreadable, or a checkpoint of the other kind) in one sentence.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import list_checkpoints, list_weights
from .contract import (KINDS, LOADERS, UGATIT_ARCH, UGATIT_NETS, FaceModel, Swapper, Translator, WrongCheckpointKind,
                       _check_batch_size, _check_direction, _check_identity, as_device)


def read_weights(path: str | os.PathLike) -> dict:
    """A checkpoint's tensors, safely (weights_only), memory-mapped where the file allows it.

    mmap: a full-model checkpoint carries gigabytes of optimiser state that
    inference never reads. Files in PyTorch's pre-1.6 format (the official
    U-GAT-IT code is from 2019) cannot be mapped: they are read normally.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc) and "zipfile" not in str(exc):
            raise
    return torch.load(path, map_location="cpu", weights_only=True)


def checkpoint_kind(state) -> str | None:
    """'swap', 'ugatit' (one of our runs), 'ugatit-official' (six networks) or None for anything else."""
    if not isinstance(state, dict):
        return None
    config = state.get("config")
    if "model" in state and isinstance(config, dict) and "size" in config:
        return "swap"
    if "nets" in state and isinstance(config, dict) and "img_size" in config:
        return "ugatit"
    nets = state.get("nets", state)
    if isinstance(nets, dict) and all(n in nets for n in ("genA2B", "genB2A")):
        return "ugatit-official" if "nets" not in state else "ugatit"
    return None


def _wrong_kind(source: Path, found: str, wanted: str) -> WrongCheckpointKind:
    where = "folder" if source.is_dir() else "file"
    return WrongCheckpointKind(
        f"{source}: this {where} holds a {KINDS[found]}, not a {KINDS[wanted]}; use {LOADERS[found]}"
        f" (or load_face_model, which takes either)."
    )


def _candidates(source: Path) -> list[Path]:
    """Newest step first: the run folder's ckpt-*.pt and weights-*.pt milestones, else any .pt/.pth in it (official files, shared/)."""
    if source.is_file():
        return [source]
    saved = list_checkpoints(source) + list_weights(source)
    found = [p for _, p in sorted(saved, key=lambda sp: (sp[0], sp[1].name.startswith("ckpt-")), reverse=True)]
    if not found:
        loose = [p for p in source.rglob("*") if p.suffix.lower() in (".pt", ".pth") and p.is_file()]
        found = sorted(loose, key=lambda p: p.stat().st_mtime, reverse=True)
    return found


def read_checkpoint(source: str | os.PathLike, wanted: str, hint: str) -> tuple[Path, dict, str]:
    """(file, state, kind) of the newest readable checkpoint of kind `wanted` at `source` (a run folder or a file).

    Raises FileNotFoundError (with `hint`) when there is none, and
    WrongCheckpointKind when what is there belongs to the other lesson.
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"No {KINDS[wanted]} at {source}: {hint}")
    paths = _candidates(source)
    if not paths:
        raise FileNotFoundError(f"No {KINDS[wanted]} in {source}: {hint}")
    errors, other = [], None
    for path in paths:
        try:
            state = read_weights(path)
        except Exception as exc:  # truncated, not a torch file, or not weights_only-safe
            errors.append(f"{path.name}: {type(exc).__name__}")
            continue
        kind = checkpoint_kind(state)
        if kind is None:
            errors.append(f"{path.name}: not a model checkpoint")
            continue
        if kind.split("-")[0] == wanted:
            if errors:
                warnings.warn(f"Skipped unreadable checkpoints in {source} ({'; '.join(errors)}); using {path.name}.", stacklevel=3)
            return path, state, kind
        other = other or kind.split("-")[0]
    if other is not None:
        raise _wrong_kind(source, other, wanted)
    raise FileNotFoundError(f"No readable checkpoint in {source} ({'; '.join(errors)}): {hint}")


# ---------------------------------------------------------------- loaders

SWAP_HINT = "train one with notebook 03 (train_swap), or download a shared one with fetch_shared_checkpoint."
UGATIT_HINT = "train in notebook 04 or fetch a shared one (SHARED_CHECKPOINT_URL)."


def load_swapper(folder: str | os.PathLike, device: torch.device | str | None = None, to: str = "B", batch_size: int = 64) -> Swapper:
    """The newest checkpoint in `folder` (or a checkpoint file) as a Swapper on `device`."""
    from ..models.autoencoder import FaceSwapAutoencoder, spec_for

    device, to, batch_size = as_device(device), _check_identity(to), _check_batch_size(batch_size)
    _, state, _ = read_checkpoint(folder, "swap", SWAP_HINT)
    cfg = state["config"]
    model = FaceSwapAutoencoder(spec_for(cfg.get("model", "classic"), cfg["size"]))
    model.load_state_dict(state["model"])
    step = state.get("step")
    return Swapper(model, device, batch_size, step=None if step is None else int(step), to=to)


def ugatit_architecture(state: dict, img_size: int | None = None) -> dict:
    """img_size, light, ch, n_res of a U-GAT-IT checkpoint: from its config, else from its tensor shapes."""
    from ..models.ugatit import infer_official_config

    if isinstance(state.get("config"), dict) and all(k in state["config"] for k in UGATIT_ARCH):
        return {k: state["config"][k] for k in UGATIT_ARCH}
    if img_size is not None:
        _check_img_size(img_size)
    return infer_official_config(state.get("nets", state), img_size or 256)


def _check_img_size(img_size) -> int:
    if isinstance(img_size, bool) or not isinstance(img_size, (int, np.integer)) or img_size < 32 or img_size % 4:
        raise ValueError(f"img_size must be a whole number of pixels >= 32 and divisible by 4 (e.g. 256), not {img_size!r}")
    return int(img_size)


def describe_architecture(arch: dict) -> str:
    """'a light U-GAT-IT at 256 px (ch 64, 4 blocks)': for messages."""
    return f"a {'light' if arch['light'] else 'full'} U-GAT-IT at {arch['img_size']} px (ch {arch['ch']}, {arch['n_res']} blocks)"


def pretrained_networks(path: str | os.PathLike, img_size: int = 256) -> tuple[dict, dict]:
    """(the six networks' state dicts, their architecture) from one U-GAT-IT file, ours or official, any torch format.

    `img_size` is the size assumed for light official files, which do not record it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No U-GAT-IT checkpoint file at {path}: fetch one with fetch_shared_checkpoint, or pass the path of a .pt file.")
    state = read_weights(path)
    kind = checkpoint_kind(state)
    if kind == "swap":
        raise _wrong_kind(path, "swap", "ugatit")
    nets = state.get("nets", state) if isinstance(state, dict) else None
    if kind is None or not all(n in nets for n in UGATIT_NETS):
        raise ValueError(f"{path.name} is not a full U-GAT-IT checkpoint: it lacks the six networks {list(UGATIT_NETS)} (a weights-*.pt milestone holds only the generators: use load_translator).")
    return nets, ugatit_architecture(state, img_size)


def load_translator(source: str | os.PathLike, device=None, direction: str = "A2B", img_size: int | None = None,
                    batch_size: int = 8) -> Translator:
    """A Translator from a run folder (newest readable checkpoint), one of our checkpoint files,
    or an official `*_params_*.pt` file (light files do not record their size: pass `img_size`, default 256)."""
    from ..models.ugatit import build_networks

    direction, batch_size = _check_direction(direction), _check_batch_size(batch_size)
    if img_size is not None:
        _check_img_size(img_size)
    device = as_device(device)
    _, state, _ = read_checkpoint(source, "ugatit", UGATIT_HINT)
    arch = ugatit_architecture(state, img_size)
    gen = build_networks(arch["img_size"], arch["light"], arch["ch"], arch["n_res"])["gen" + direction]
    gen.load_state_dict(state.get("nets", state)["gen" + direction])
    step = state.get("step")
    return Translator(gen, arch["img_size"], direction, device, batch_size=batch_size, step=None if step is None else int(step))


def load_face_model(source: str | os.PathLike, device=None, to: str = "B", direction: str = "A2B", batch_size: int | None = None) -> FaceModel:
    """Whichever face model `source` holds: a Swapper (painting as `to`) or a Translator (`direction`)."""
    source = Path(source)
    try:
        return load_swapper(source, device, to, batch_size or 64)
    except WrongCheckpointKind:
        return load_translator(source, device, direction, batch_size=batch_size or 8)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc} A U-GAT-IT run of notebook 04 would do too.") from None


def has_checkpoint(folder: str | os.PathLike, kind: str) -> bool:
    """Whether `folder` holds a readable checkpoint of `kind` ('swap' or 'ugatit'), without building a model."""
    try:
        read_checkpoint(folder, kind, "")
    except (FileNotFoundError, WrongCheckpointKind):
        return False
    return True
