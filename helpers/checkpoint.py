"""Checkpoints that survive a Colab session ending at any moment, and fit on a free Google Drive.

One file per save holds everything a run needs to continue exactly: model and
optimizer state, grad scaler, step, RNG state and config. Files are written to
a temp name in the same folder, fsynced and renamed (helpers.storage), so a
kill mid-save leaves the previous checkpoint untouched. Loading uses
`weights_only=True`, which is why RNG states are stored as tensors.

The API a training loop uses:

    saver = Checkpointer(folder, every_steps=1000, every_minutes=10, keep_last=2, milestone_every=5000)
    state = saver.latest()                      # newest checkpoint that loads, or None: resume from it
    if saver.due(step):                         # a modulo and a clock read
        saver.save(step, full_state, weights=lambda: inference_state)

    save_checkpoint(folder, step, state, keep_last, milestone_every)   # the same without the cadence
    save_weights(folder, step, inference_state)  # a milestone: inference only, half precision
    load_latest(folder), load_checkpoint(path), list_checkpoints(folder), list_weights(folder), prune(...)

Files in a run folder:

    ckpt-<step:09d>.pt      full state, for resume. The newest `keep_last` that load are kept.
    weights-<step:09d>.pt   a milestone: what inference needs (e.g. {"model": ..., "config": ...} or
                            {"nets": {"genA2B": ...}, "config": ...}), floating tensors in float16, plus
                            "step" and "precision": "float16". Never pruned. Same keys as the full
                            state, so `model.load_state_dict(w["model"])` works (it casts back to float32);
                            `load_latest(folder, weights=True)` finds the newest of both kinds.
    .<name>.<pid>@<host>.<hex>.tmp   a save in progress; removed by the next save or load once its
                            writer is gone (see helpers.storage).

When `milestone_every` is set, `save(..., weights=...)` writes a weights file at
each milestone step and the full-state file of that step is then pruned like
any other; without `weights` the full-state milestone is kept instead (the old
behaviour, which costs a full checkpoint per milestone).

Space: before each save the free space is checked against the tensors' size and
a full disk (or Drive quota) raises `NoSpaceError` with one sentence, leaving
the older checkpoints intact. A run folder needs room for `keep_last + 1` full
checkpoints (the new file lands before the oldest is deleted). Every deletion
goes through `helpers.storage.remove`, which on Google Drive empties the file
first so Drive's trash does not keep its bytes.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import storage
from .storage import NoSpaceError, human_size  # noqa: F401  (re-exported: callers catch checkpoint.NoSpaceError)

NAME = "ckpt-{step:09d}.pt"
NAME_RE = re.compile(r"^ckpt-(\d{9})\.pt$")
WEIGHTS_NAME = "weights-{step:09d}.pt"
WEIGHTS_RE = re.compile(r"^weights-(\d{9})\.pt$")
HALF_MAX = float(torch.finfo(torch.float16).max)


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


def weights_path(folder: str | os.PathLike, step: int) -> Path:
    return Path(folder) / WEIGHTS_NAME.format(step=step)


def _list(folder: str | os.PathLike, pattern: re.Pattern) -> list[tuple[int, Path]]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.match(p.name)))


def list_checkpoints(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of every full-state checkpoint file in `folder`, oldest first."""
    return _list(folder, NAME_RE)


def list_weights(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of every inference-only milestone (weights-<step>.pt) in `folder`, oldest first."""
    return _list(folder, WEIGHTS_RE)


def _walk_tensors(obj: Any):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _walk_tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _walk_tensors(v)


def estimate_size(obj: Any) -> int:
    """Bytes a torch.save of `obj` will take: its tensors' storages (shared ones once) plus a little per tensor."""
    storages, count = {}, 0
    for t in _walk_tensors(obj):
        try:
            s = t.untyped_storage()
            storages[(str(s.device), s.data_ptr())] = s.nbytes()
        except (RuntimeError, NotImplementedError):  # sparse and other storage-less tensors
            storages[("other", id(t))] = t.numel() * t.element_size()
        count += 1
    return sum(storages.values()) + 512 * count + 64 * 1024


def atomic_save(obj: Any, path: str | os.PathLike, expected_size: int | None = None) -> Path:
    """torch.save to a temp file in the same folder, fsync, then os.replace (NoSpaceError on a full disk)."""
    return storage.atomic_write(path, lambda f: torch.save(obj, f), expected_size or estimate_size(obj),
                                what=f"{Path(path).name}")


class _Stub:
    """Stands in for every class a pickle names, so reading a checkpoint's skeleton runs no code at all."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, value):
        pass

    def extend(self, values):
        pass


class _SkeletonUnpickler(pickle.Unpickler):
    """The plain dicts, numbers and strings of a torch pickle; tensors and classes become _Stub."""

    def find_class(self, module, name):
        return _Stub

    def persistent_load(self, pid):
        return None


def _probe(path: Path, step: int) -> str:
    """'ok' when the file is a whole checkpoint of `step`, 'corrupt' when it can never load, else 'unknown'.

    Cheap on any file system, without mmap: it reads the zip directory at the
    end of the file and the small pickle of its structure, never the tensors,
    so a 7 GiB checkpoint on Drive costs a few hundred kilobytes. A truncated
    file has no zip directory; an I/O error says nothing about the content
    (a Drive hiccup) and a non-zip file may be an old torch format: those are
    'unknown', kept and not counted.
    """
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if not magic:
            return "corrupt"  # an empty file
        if magic != b"PK\x03\x04" and magic[:1] == b"\x80":
            return "unknown"  # a pickle: the pre-1.6 torch format, not one of our saves
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pickles) != 1:
                return "corrupt"
            with archive.open(pickles[0]) as f:  # reading it to the end checks its CRC
                skeleton = _SkeletonUnpickler(f).load()
    except OSError:
        return "unknown"
    except Exception:  # BadZipFile (truncated, garbage), a broken pickle
        return "corrupt"
    if not isinstance(skeleton, dict) or skeleton.get("step") != step:
        return "unknown"  # a whole file, but not what its name says: not ours to delete, not counted
    return "ok"


_probed: dict[Path, tuple[int, int]] = {}  # path -> (size, mtime_ns) of files known to load


def _loads(path: Path, step: int) -> str:
    try:
        st = path.stat()
    except FileNotFoundError:
        return "unknown"
    key = (st.st_size, st.st_mtime_ns)
    if _probed.get(path) == key:
        return "ok"
    verdict = _probe(path, step)
    if verdict == "ok":
        _probed[path] = key
    return verdict


def _remember_loadable(path: Path) -> None:
    st = path.stat()
    _probed[path] = (st.st_size, st.st_mtime_ns)


def prune(folder: str | os.PathLike, keep_last: int, milestone_every: int | None) -> list[Path]:
    """Keep the newest `keep_last` checkpoints that load, plus milestones; return what was removed.

    A milestone step (a multiple of `milestone_every`) keeps its full-state
    file unless a weights-<step>.pt milestone stands in for it.

    A checkpoint that can never load (truncated, garbage) is removed and not
    counted, so unreadable newer files cannot push a good one out. A file that
    could not be read for another reason (an I/O error, a name that does not
    match its step) is kept and not counted. Stale temp files of killed saves
    are removed too. Every deletion goes through `storage.remove`.
    """
    removed = []
    kept_good = 0
    has_weights = {step for step, _ in list_weights(folder)}
    for step, path in reversed(list_checkpoints(folder)):
        milestone = bool(milestone_every) and step > 0 and step % milestone_every == 0 and step not in has_weights
        verdict = _loads(path, step)
        if verdict == "corrupt":
            warnings.warn(f"Removing {path.name}: it is not a loadable checkpoint (a save that did not finish).", stacklevel=2)
        elif verdict == "unknown" or milestone:
            continue
        elif kept_good < keep_last:
            kept_good += 1
            continue
        if storage.remove(path):
            removed.append(path)
        _probed.pop(path, None)
    storage.clean_stale_temp_files(folder)
    return removed


def size_line(path: Path, keep_last: int | None = None) -> str:
    """'Checkpoint size: 0.92 GiB per save; 11.20 GiB free in <folder> (Google Drive).', plus a warning
    when `keep_last` more checkpoints (the rotation's peak) will not fit."""
    folder, size = path.parent, path.stat().st_size
    free = storage.free_bytes(folder)
    where = " (Google Drive)" if storage.on_drive(folder) else ""
    line = f"Checkpoint size: {human_size(size)} per save; {human_size(free)} free in {folder}{where}."
    if keep_last and free < keep_last * size:
        line += (f" Warning: keep_last={keep_last} needs {human_size(keep_last * size)} more; "
                 "free some space or lower keep_last, or a later save will stop.")
    return line


def save_checkpoint(
    folder: str | os.PathLike,
    step: int,
    state: dict[str, Any],
    keep_last: int = 3,
    milestone_every: int | None = None,
    report: bool = False,
) -> Path:
    """Write `state` plus step and RNG to `folder/ckpt-<step>.pt` atomically, then prune old files.

    `state` holds plain state dicts: {"model": m.state_dict(), "optimizer": ..., "config": asdict(cfg)}.
    Stale temp files go first, then the free space is checked: NoSpaceError
    (one sentence, nothing written) when the checkpoint cannot fit. `report`
    prints the checkpoint's size next to the free space (the first save of a run).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    payload = dict(state)
    payload["step"] = int(step)
    payload.setdefault("rng", capture_rng())
    storage.clean_stale_temp_files(folder)
    path = checkpoint_path(folder, step)
    expected = estimate_size(payload)
    storage.check_free_space(folder, expected, f"the checkpoint of step {step} ({path.name})")
    atomic_save(payload, path, expected)
    _remember_loadable(path)
    if report:
        print(size_line(path), flush=True)
    prune(folder, keep_last, milestone_every)
    return path


def _half(obj: Any) -> Any:
    """Floating tensors to float16 (those beyond its range stay float32); everything else unchanged."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu")
        if t.is_floating_point() and t.dtype != torch.float16:
            if t.numel() == 0 or bool(t.abs().max() <= HALF_MAX) or not bool(torch.isfinite(t).all()):
                return t.to(torch.float16)
        return t
    if isinstance(obj, dict):
        return {k: _half(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_half(v) for v in obj)
    return obj


def save_weights(folder: str | os.PathLike, step: int, state: dict[str, Any], half: bool = True) -> Path:
    """Write a milestone that holds only what inference needs: `folder/weights-<step>.pt`, never pruned.

    `state` uses the keys of the full checkpoint that the loader reads (e.g.
    {"model": sd, "config": cfg} or {"nets": {"genA2B": sd, "genB2A": sd}, "config": cfg});
    with `half` its floating tensors are stored as float16, half the size of
    float32 weights and no optimizer state. Load with `load_checkpoint`.
    """
    folder = Path(folder)
    payload = _half(dict(state)) if half else dict(state)
    payload["step"] = int(step)
    payload["precision"] = "float16" if half else "as saved"
    storage.clean_stale_temp_files(folder)
    path = weights_path(folder, step)
    expected = estimate_size(payload)
    storage.check_free_space(folder, expected, f"the weights of step {step} ({path.name})")
    return atomic_save(payload, path, expected)


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=True)


def load_latest(folder: str | os.PathLike, map_location: Any = "cpu", weights: bool = False) -> dict[str, Any] | None:
    """Newest checkpoint that loads; a truncated or corrupt file is skipped with a warning.

    `weights=True` also considers the inference-only milestones (for loaders,
    not for resuming: those files hold no optimizer state); at the same step the
    full checkpoint wins. Stale temp files of killed saves are removed.
    """
    storage.clean_stale_temp_files(folder)
    found = [(step, 1, path) for step, path in list_checkpoints(folder)]
    if weights:
        found += [(step, 0, path) for step, path in list_weights(folder)]
    for step, _, path in sorted(found, reverse=True):
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
    modulo, so it costs nothing. The first save prints the checkpoint's size and
    the free space (`say=None` silences it). Pass `weights` to `save` (a dict or
    a function returning one) to make milestones inference-only and half precision.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        every_steps: int = 1000,
        every_minutes: float = 10.0,
        keep_last: int = 3,
        milestone_every: int | None = None,
        say: Callable[[str], None] | None = print,
    ):
        if keep_last < 1:
            raise ValueError(f"keep_last must be at least 1 (the checkpoint to resume from), got {keep_last}")
        self.folder = Path(folder)
        self.every_steps = every_steps
        self.every_seconds = every_minutes * 60 if every_minutes else None
        self.keep_last = keep_last
        self.milestone_every = milestone_every or None
        self.say = say
        self._last_save_time = time.monotonic()
        self._reported = False

    def due(self, step: int) -> bool:
        if self.every_steps and step % self.every_steps == 0:
            return True
        return self.every_seconds is not None and time.monotonic() - self._last_save_time >= self.every_seconds

    def is_milestone(self, step: int) -> bool:
        return bool(self.milestone_every) and step > 0 and step % self.milestone_every == 0

    def save(self, step: int, state: dict[str, Any], weights: dict[str, Any] | Callable[[], dict[str, Any]] | None = None) -> Path:
        """Full-state checkpoint (pruned to keep_last); at a milestone step also the half-precision `weights`."""
        if weights is not None and self.is_milestone(step):
            save_weights(self.folder, step, weights() if callable(weights) else weights)
        path = save_checkpoint(self.folder, step, state, self.keep_last, self.milestone_every)
        if not self._reported and self.say is not None:
            self.say(size_line(path, self.keep_last))
        self._reported = True
        self._last_save_time = time.monotonic()
        return path

    def latest(self, map_location: Any = "cpu") -> dict[str, Any] | None:
        return load_latest(self.folder, map_location)
