"""A run folder that holds another model: continue it in one visible line, or stop with one sentence.

Both training lessons call `match_saved_run` before they build their trainer,
so "this folder already holds a different network" reads the same in both.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from ..checkpoint import load_latest
from .distributed import is_main


def saved_config(folder: str | os.PathLike) -> dict | None:
    """The config dict saved with the newest readable checkpoint in `folder`, or None when there is none."""
    state = load_latest(folder, map_location="cpu")
    return None if state is None else dict(state.get("config") or {})


def differences(saved: dict, cfg, fields) -> dict[str, tuple]:
    """{field: (saved, asked)} for each of `fields` the saved run has and the asked config sets otherwise."""
    return {k: (saved[k], getattr(cfg, k)) for k in fields if k in saved and saved[k] != getattr(cfg, k)}


def match_saved_run(folder: str | os.PathLike, cfg, fields, keep: str = "saved", say=print):
    """The config to train with in `folder`: `cfg`, or `cfg` with the saved run's `fields` when the folder holds another model.

    keep="saved" continues the saved model and says so in one line naming what
    differs; keep="asked" stops with one sentence instead. Either way the way
    out is named: another RUN_NAME, or move the folder away.
    """
    if keep not in ("saved", "asked"):
        raise ValueError(f"keep must be 'saved' (continue the model in the folder) or 'asked' (stop), not {keep!r}")
    missing = [k for k in fields if not hasattr(cfg, k)]
    if missing:
        raise ValueError(f"The config has no field {missing[0]!r}: fields must name fields of {type(cfg).__name__}.")
    saved = saved_config(folder)
    clash = {} if saved is None else differences(saved, cfg, fields)
    if not clash:
        return cfg
    what = ", ".join(f"{k} {old!r} (you asked for {new!r})" for k, (old, new) in clash.items())
    way_out = "set another RUN_NAME or move that folder away"
    if keep == "asked":
        raise ValueError(f"{Path(folder)} holds another model, {what}: to train the one you asked for, {way_out}.")
    if say is not None and is_main():
        say(f"{Path(folder)} holds another model, {what}: continuing the saved one (to train yours, {way_out}).")
    return replace(cfg, **{k: old for k, (old, _) in clash.items()})
