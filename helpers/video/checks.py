"""Argument checks shared by the video reader, the writer and the renderer: one clear sentence, before any work."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class VideoError(ValueError):
    """The file is missing, empty or not a video; the message names the file."""


def check_count(name: str, value, allow_none: bool = False) -> None:
    """A whole number >= 1 (or None where that means "all"); else a ValueError that says what to pass."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        extra = " or None for all" if allow_none else ""
        raise ValueError(f"{name} must be a whole number >= 1{extra}; got {value!r}")


def check_number(name: str, value, low: float = 0.0, strict: bool = True, allow_none: bool = False) -> None:
    """A finite number above `low` (or at least `low` when strict=False); else a ValueError that says so."""
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and np.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        bound = f"> {low:g}" if strict else f">= {low:g}"
        extra = " (or None)" if allow_none else ""
        raise ValueError(f"{name} must be a finite number {bound}{extra}; got {value!r}")


def check_crf(crf) -> None:
    """H.264 quality: 0 (lossless) to 51 (worst)."""
    if isinstance(crf, bool) or not isinstance(crf, (int, np.integer)) or not 0 <= crf <= 51:
        raise ValueError(f"crf must be a whole number from 0 (lossless) to 51 (worst); 18 looks like the source. Got {crf!r}")


def check_output_path(path: str | os.PathLike, what: str = "dst") -> Path:
    """An output file name we can write: not a folder, and its folder is not a file. Checked before any work."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} is a folder: {path}. Give a file name inside it, e.g. {path / 'out.mp4'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{what} cannot be written: {parent} is a file, not a folder")
            break
    return path
