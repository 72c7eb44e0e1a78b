"""The set-up check learners run first: one line per thing a workshop needs, and what to do when it is missing.

    from helpers.checkup import checkup
    checkup(ws)                    # in a notebook, after ws = setup()
    python -m helpers.checkup      # on your own computer, from the course folder

A room of thirty laptops fails in a few known ways (no GPU, Drive declined,
a full disk, no camera, the swap lesson opened on a hosted Colab runtime).
Five minutes of this at the start costs less than finding them mid-lesson.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch

from .env import SWITCH_TO_GPU, Workspace, setup
from .rules import managed_colab
from .storage import free_bytes, human_size, on_drive

ENOUGH_SPACE = 6 * 2**30  # lessons 03 and 04's default runs keep about 5.6 GiB of checkpoints together (README)
TOO_LITTLE_SPACE = 1 * 2**30  # below this even the laptop presets' checkpoints may not fit
MARKS = {"ok": "✓", "warn": "!", "no": "✗"}


@dataclass
class Check:
    """One item of the check: its name, how it went ('ok', 'warn', 'no') and the sentence to print."""

    item: str
    level: str
    says: str

    def __str__(self) -> str:
        return f"{MARKS[self.level]} {self.item}: {self.says}"


def check_runtime(platform: str) -> Check:
    """Where this runs, and whether lesson 03 and lesson 05's swap mode may run here (helpers.rules)."""
    if managed_colab():
        return Check("runtime", "warn", "a hosted Colab runtime: lessons 01, 02, 04 and 05 in translate mode run here; "
                     "lesson 03 and lesson 05's swap mode run only on your own computer (local Jupyter, or "
                     "Colab's Connect ▸ Connect to a local runtime).")
    return Check("runtime", "ok", f"{platform}, on your own computer or server: every lesson may run here, the face swap included.")


def check_device(device: torch.device | str, platform: str) -> Check:
    """The GPU and its memory, or a CPU with the presets it runs and how to get a GPU."""
    device = torch.device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return Check("device", "ok", f"GPU {props.name} with {props.total_memory / 2**30:.0f} GiB: every preset runs.")
    if device.type == "mps":
        return Check("device", "ok", "Apple GPU (MPS): every preset runs, slower than a CUDA GPU.")
    switch = f" For the full presets in Colab: {SWITCH_TO_GPU}, then run the notebook again." if platform == "colab" else ""
    return Check("device", "warn", f"CPU only ({os.cpu_count()} cores): the quick and laptop presets run; the full presets want a GPU.{switch}")


def check_workspace(ws: Workspace) -> Check:
    """Where the work goes, and whether it outlives the session."""
    if not ws.persistent:
        return Check("workspace", "warn", f"{ws.root} is deleted when the Colab session ends: run the set-up again "
                     "and allow Google Drive, or download what you want to keep.")
    where = "on Google Drive: it outlives the session" if on_drive(ws.root) else "on this computer's disk"
    return Check("workspace", "ok", f"{ws.root}, {where}.")


def check_space(ws: Workspace) -> Check:
    """Free space where the checkpoints go (on Drive: the quota left)."""
    free = free_bytes(ws.root)
    trash = " Empty Drive's trash too: deleted files count for 30 days." if on_drive(ws.root) else ""
    if free < TOO_LITTLE_SPACE:
        return Check("free space", "no", f"{human_size(free)} free in {ws.root}: too little to save a checkpoint; "
                     f"free at least {human_size(ENOUGH_SPACE)}.{trash}")
    if free < ENOUGH_SPACE:
        return Check("free space", "warn", f"{human_size(free)} free: enough for the quick and laptop presets; the "
                     f"default runs of lessons 03 and 04 keep about 5.6 GiB together.{trash}")
    return Check("free space", "ok", f"{human_size(free)} free: enough for every lesson.")


def count_cameras(platform: str) -> int | None:
    """Cameras this session can use: the browser's in Colab, OpenCV's elsewhere; None when it cannot tell."""
    if platform == "colab":
        try:
            from google.colab.output import eval_js  # the page's camera list; no permission prompt needed to count

            return int(eval_js("navigator.mediaDevices.enumerateDevices()"
                               ".then(ds => ds.filter(d => d.kind == 'videoinput').length)"))
        except Exception:
            return None
    import cv2

    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # builds without the logging module
        pass
    camera = cv2.VideoCapture(0)
    try:
        return int(camera.isOpened())
    finally:
        camera.release()


def check_camera(platform: str, count: Callable[[str], int | None] | None = None) -> Check:
    """A camera for the live try-on; every other part of the course runs without one."""
    found = (count or count_cameras)(platform)
    if found is None:
        return Check("camera", "warn", "could not tell from here; the live try-on asks the browser for it when it starts.")
    if found == 0:
        return Check("camera", "warn", "none found: the live try-on needs one (check that no other app holds it and "
                     "that the browser may use it); everything else runs without.")
    return Check("camera", "ok", f"{found} found; the browser asks once for permission when the live try-on starts.")


def checkup(ws: Workspace | None = None, out: Callable[[str], object] | None = print,
            cameras: Callable[[str], int | None] | None = None) -> list[Check]:
    """Run every check, print one line per item (unless `out` is None) and return them."""
    ws = ws or setup(quiet=True)
    checks = [check_runtime(ws.platform), check_device(ws.device, ws.platform), check_workspace(ws),
              check_space(ws), check_camera(ws.platform, cameras)]
    if out is not None:
        for check in checks:
            out(str(check))
    return checks


if __name__ == "__main__":
    checkup()
