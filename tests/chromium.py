"""Headless Chromium with a fake camera, for the browser tests (tests/test_app.py, tests/test_live.py).

Debian's `chromium` and `chromium-driver` (make test installs them as root),
driven by selenium through /usr/bin/chromedriver: nothing is downloaded. The
fake camera plays a Y4M file made from a sample clip; Chrome reads only the
`C420` colour tag (ffmpeg writes `C420mpeg2`).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1600"]


def browser_or_skip() -> str:
    """The Chromium binary, or a skip that says how to get it."""
    pytest.importorskip("selenium", reason="selenium is missing: pip install -e '.[dev]'")
    binary = next((b for b in CHROMIUM if Path(b).exists()), None) or shutil.which("chromium")
    if not binary or not Path(CHROMEDRIVER).exists():
        pytest.skip("no headless Chromium here: apt-get install chromium chromium-driver (make test does it as root)")
    return binary


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 24) -> Path:
    """RGB frames as a Y4M clip Chrome's fake camera plays (4:2:0, header tag C420)."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420\n".encode())
        for rgb in frames:
            f.write(b"FRAME\n" + cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


@contextlib.contextmanager
def chromium(camera: Path | None = None, allow_camera: bool = True):
    """A selenium driver for headless Chromium; `camera` is the Y4M its fake camera plays.

    allow_camera=False: the page asks and the browser refuses, as when a person clicks Block.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser_or_skip()
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in FLAGS + [f"--user-data-dir={profile}", "--use-fake-device-for-media-stream"]:
        options.add_argument(flag)
    if allow_camera:
        options.add_argument("--use-fake-ui-for-media-stream")
    else:
        options.add_argument("--deny-permission-prompts")
    if camera is not None:
        options.add_argument(f"--use-file-for-fake-video-capture={camera}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def text_of(driver, css: str) -> str:
    """The text of the first element `css` finds, '' when none (read in the page: no stale element references)."""
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", css)


def attribute_of(driver, css: str, name: str) -> str | None:
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;",
                                 css, name)


def press(driver, text: str | None = None, label: str | None = None) -> bool:
    """Click the first button whose text holds `text` (and whose aria-label is `label`); False when there is none yet."""
    return driver.execute_script("""
        for (const b of document.querySelectorAll('button')) {
          if ((!arguments[0] || b.innerText.includes(arguments[0])) && (!arguments[1] || b.getAttribute('aria-label') === arguments[1])) {
            b.click(); return true;
          }
        }
        return false;""", text, label)


def wait_for(condition, timeout: float = 20.0, every: float = 0.1, what: str = "the page"):
    """Poll until condition() is truthy; return it, or fail saying what never came."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


# ---------------------------------------------------------------- what the tests feed and check

def tiny_ugatit_run(folder: Path) -> Path:
    """An untrained light U-GAT-IT at 32 px in a run folder: lesson 04's kind of model, made in a second."""
    import torch

    from helpers.checkpoint import save_checkpoint
    from helpers.models.ugatit import build_networks, official_state

    torch.manual_seed(0)
    arch = dict(img_size=32, light=True, ch=4, n_res=1)
    nets = build_networks(arch["img_size"], arch["light"], arch["ch"], arch["n_res"])
    save_checkpoint(folder, 3, {"nets": official_state(nets), "config": {**arch, "iterations": 10}})
    return folder


def clip_frames(video: Path, count: int = 24) -> list[np.ndarray]:
    from helpers.video import iter_frames

    return [f.image for f in iter_frames(video, max_frames=count)]


def two_faces(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The half of each frame around the face, twice side by side: the same person twice in view."""
    from helpers.faces import make_detector

    w = frames[0].shape[1]
    x0, _, x1, _ = make_detector("auto").detect(frames[0])[0].box
    left = int(np.clip((x0 + x1) / 2 - w / 4, 0, w / 2))
    return [np.ascontiguousarray(np.hstack([f[:, left: left + w // 2]] * 2)) for f in frames]


def no_face(frames: list[np.ndarray]) -> list[np.ndarray]:
    """A wall: the frames' colours without any structure."""
    return [np.full_like(f, f.reshape(-1, 3).mean(0).astype(np.uint8)) for f in frames]


def face_change(shown: np.ndarray, frames: list[np.ndarray]) -> tuple[float, float]:
    """(mean change inside the face, mean change elsewhere) of a shown frame against the camera frame it came from.

    The source is the clip frame (or its mirror image: selfie views flip) nearest
    to what was shown; the face is where the detector finds it there; the
    "AI-generated" label is left out of "elsewhere".
    """
    from helpers.faces import make_detector
    from helpers.pipeline import label_box

    candidates = frames + [np.ascontiguousarray(f[:, ::-1]) for f in frames]
    shown = shown.astype(np.int16)
    source = min(candidates, key=lambda f: np.abs(shown - f).mean())
    faces = make_detector("auto").detect(source)
    assert faces, "no face in the camera frame the shown frame came from"
    x0, y0, x1, y1 = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])).box
    grow_x, grow_y = 0.25 * (x1 - x0), 0.25 * (y1 - y0)
    inside = np.zeros(shown.shape[:2], bool)
    inside[max(0, int(y0 - grow_y)): int(y1 + grow_y), max(0, int(x0 - grow_x)): int(x1 + grow_x)] = True
    elsewhere = ~inside
    lx0, ly0, lx1, ly1 = label_box(shown.shape)
    elsewhere[ly0:ly1, lx0:lx1] = False
    change = np.abs(shown - source).mean(axis=2)
    core = np.zeros_like(inside)  # the face's own middle, where the model's output is pasted at full strength
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 4, (y1 - y0) / 4
    core[int(cy - ry): int(cy + ry), int(cx - rx): int(cx + rx)] = True
    return float(change[core].mean()), float(change[elsewhere].mean())
