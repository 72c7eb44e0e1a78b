"""A checkpoint someone shared (a URL or a Drive link), brought into a run folder for either kind of model."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

from ..checkpoint import checkpoint_path, list_checkpoints, save_checkpoint
from .contract import KINDS, LOADERS, WrongCheckpointKind
from .load import checkpoint_kind, read_weights


def fetch_checkpoint(url: str, folder: str | os.PathLike, kind: str, sha256: str | None = None) -> Path:
    """Download a shared checkpoint of `kind` ('swap' or 'ugatit') into the run folder `folder`.

    The URL may be a Google Drive file or folder link or any URL, to a .pt or
    an archive holding one (helpers.download checks the SHA-256 and unpacks
    safely). One of our full checkpoints is written into the run folder as
    ckpt-<step>.pt, so training continues from it and the loaders find it; an
    official U-GAT-IT `*_params_*.pt` (networks only) stays in folder/shared,
    where `load_translator(folder)` and `Trainer.load_pretrained` read it.
    Returns that file. A checkpoint of the other kind is refused by name.
    """
    from ..download import DownloadError, fetch_weight_files

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, not {kind!r}")
    if not isinstance(url, str) or not url.strip():
        raise ValueError("url must be a Google Drive link or an http(s) URL to a checkpoint (a .pt, or a zip/tar holding one).")
    folder = Path(folder)
    candidates = fetch_weight_files(url, folder / "shared", sha256=sha256)
    other = None
    for path in candidates:
        try:
            state = read_weights(path)
        except Exception as exc:  # not a torch file, or not weights_only-safe
            warnings.warn(f"Skipping {path.name}: not a loadable checkpoint ({type(exc).__name__}).", stacklevel=2)
            continue
        found = checkpoint_kind(state)
        if found is None:
            continue
        if found.split("-")[0] != kind:
            other = found.split("-")[0]
            continue
        if found == "ugatit-official":
            return path
        step = int(state.get("step", 0))
        if kind == "ugatit":
            target = checkpoint_path(folder, step)
            shutil.copyfile(path, target)
            return target
        return save_checkpoint(folder, step, {k: v for k, v in state.items() if k != "step"})
    if other is not None:
        raise WrongCheckpointKind(f"What {url} gave holds a {KINDS[other]}, not a {KINDS[kind]}; use it with {LOADERS[other]}.")
    names = [p.name for p in candidates]
    raise DownloadError(f"No {KINDS[kind]} in what {url} gave ({len(candidates)} weight files: {names}).")


def fetch_shared_swap(url: str, folder: str | os.PathLike, sha256: str | None = None) -> Path:
    """Lesson 03's shared start: does nothing when `folder` already has checkpoints (your own run wins) and returns the newest."""
    if list_checkpoints(folder):
        print(f"{folder} already has checkpoints; not downloading the shared one.")
        return list_checkpoints(folder)[-1][1]
    return fetch_checkpoint(url, folder, "swap", sha256)


def fetch_shared_ugatit(url: str, run_dir: str | os.PathLike, sha256: str | None = None) -> Path | None:
    """Lesson 04's shared start: None when the run folder already has checkpoints (your own run wins)."""
    if list_checkpoints(run_dir):
        print(f"{run_dir} already has checkpoints; not downloading the shared one.")
        return None
    return fetch_checkpoint(url, run_dir, "ugatit", sha256)
