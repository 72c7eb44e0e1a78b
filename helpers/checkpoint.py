"""Checkpoints that survive a Colab session ending at any moment.

One file per save holds everything a run needs to continue exactly: model and
optimizer state, grad scaler, step, RNG state and config. Files are written to
a temp name in the same folder, fsynced and renamed, so a kill mid-save leaves
the previous checkpoint untouched. Loading uses `weights_only=True`, which is
why RNG states are stored as tensors.
"""

from __future__ import annotations

import os
import random
import re
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

NAME = "ckpt-{step:09d}.pt"
NAME_RE = re.compile(r"^ckpt-(\d{9})\.pt$")


# ---------------------------------------------------------------- RNG state

def capture_rng() -> dict[str, Any]:
    """Python, NumPy and torch RNG states as tensors (weights_only-loadable)."""
    version, py_state, gauss = random.getstate()
    kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": torch.tensor(py_state, dtype=torch.int64),
        "python_version": version,
        "python_gauss": gauss,
        "numpy": torch.from_numpy(np_keys.astype(np.int64)),
        "numpy_pos": int(np_pos),
        "numpy_has_gauss": int(np_has_gauss),
        "numpy_gauss": float(np_gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng`."""
    random.setstate((state["python_version"], tuple(int(v) for v in state["python"].tolist()), state["python_gauss"]))
    np.random.set_state((
        "MT19937",
        state["numpy"].numpy().astype(np.uint32),
        state["numpy_pos"],
        state["numpy_has_gauss"],
        state["numpy_gauss"],
    ))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# ---------------------------------------------------------------- files

def checkpoint_path(folder: str | os.PathLike, step: int) -> Path:
    return Path(folder) / NAME.format(step=step)


def list_checkpoints(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint file in `folder`, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for p in folder.iterdir():
        m = NAME_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems (Windows, Drive FUSE) refuse: rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to a temp file in the same folder, fsync, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def prune(folder: str | os.PathLike, keep_last: int, milestone_every: int | None) -> list[Path]:
    """Delete all but the newest `keep_last` checkpoints and every milestone; return what was removed."""
    ckpts = list_checkpoints(folder)
    keep = {p for _, p in ckpts[-keep_last:]} if keep_last > 0 else set()
    if milestone_every:
        keep |= {p for s, p in ckpts if s > 0 and s % milestone_every == 0}
    removed = []
    for _, p in ckpts:
        if p not in keep:
            p.unlink(missing_ok=True)
            removed.append(p)
    # temp files left by a killed save are garbage once a newer save succeeded
    for tmp in Path(folder).glob(".ckpt-*.tmp"):
        if time.time() - tmp.stat().st_mtime > 60:
            tmp.unlink(missing_ok=True)
    return removed


def save_checkpoint(
    folder: str | os.PathLike,
    step: int,
    state: dict[str, Any],
    keep_last: int = 3,
    milestone_every: int | None = None,
) -> Path:
    """Write `state` plus step and RNG to `folder/ckpt-<step>.pt` atomically, then prune old files.

    `state` holds plain state dicts: {"model": m.state_dict(), "optimizer": ..., "config": asdict(cfg)}.
    """
    payload = dict(state)
    payload["step"] = int(step)
    payload.setdefault("rng", capture_rng())
    path = atomic_save(payload, checkpoint_path(folder, step))
    prune(folder, keep_last, milestone_every)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=True)


def load_latest(folder: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any] | None:
    """Newest checkpoint that loads; a truncated or corrupt file is skipped with a warning."""
    for step, path in reversed(list_checkpoints(folder)):
        try:
            state = load_checkpoint(path, map_location)
        except Exception as exc:  # truncated zip, bad pickle, disk error: fall back to the previous one
            warnings.warn(f"Skipping unreadable checkpoint {path.name}: {type(exc).__name__}: {exc}", stacklevel=2)
            continue
        if not isinstance(state, dict) or state.get("step") != step:
            warnings.warn(f"Skipping checkpoint {path.name}: it does not hold step {step}", stacklevel=2)
            continue
        return state
    return None


class Checkpointer:
    """Save every N steps and every M minutes, keep the last K plus milestones.

    The training loop asks `due(step)` once per step; that is a clock read and a
    modulo, so it costs nothing.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        every_steps: int = 1000,
        every_minutes: float = 10.0,
        keep_last: int = 3,
        milestone_every: int | None = None,
    ):
        self.folder = Path(folder)
        self.every_steps = every_steps
        self.every_seconds = every_minutes * 60 if every_minutes else None
        self.keep_last = keep_last
        self.milestone_every = milestone_every
        self._last_save_time = time.monotonic()

    def due(self, step: int) -> bool:
        if self.every_steps and step % self.every_steps == 0:
            return True
        return self.every_seconds is not None and time.monotonic() - self._last_save_time >= self.every_seconds

    def save(self, step: int, state: dict[str, Any]) -> Path:
        path = save_checkpoint(self.folder, step, state, self.keep_last, self.milestone_every)
        self._last_save_time = time.monotonic()
        return path

    def latest(self, map_location: Any = "cpu") -> dict[str, Any] | None:
        return load_latest(self.folder, map_location)
