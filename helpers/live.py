"""Your camera through a trained face model, live in the notebook (lessons 04 and 05).

    from helpers.live import live_view
    report = live_view(translator)        # Start / Stop in the view; fps and the model's name on it

In Colab the browser's camera runs in the cell's output (helpers/live_js.py):
each frame goes to Python through `google.colab.output.eval_js`, through the
frame pipeline (helpers.pipeline: detect now and then, track, align, model,
blend, the "AI-generated" label) and back to the page. One round trip per
frame sets the pace, so the view shows the fps it really gets. In Jupyter
elsewhere the same model opens as the inline Gradio app (helpers.app): a
plain ipywidgets widget cannot reach the camera. A swap runs only where
helpers.rules allows it; a headless run (papermill, the tests) skips the
camera with one line.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import live_js
from .env import LessonStop

HEADLESS_LINE = "No browser watches this run (headless: papermill or the tests), so the live camera view is skipped."
RUNNERS = ("papermill", "nbclient", "nbconvert", "pytest", "helpers.course")


# ---------------------------------------------------------------- frames as the page sends them

def decode_jpeg(data_url: str) -> np.ndarray:
    """RGB uint8 from a data URL (or bare base64) of a JPEG or PNG, as a browser's canvas makes it."""
    payload = data_url.split(",", 1)[1] if data_url.startswith("data:") else data_url
    bgr = cv2.imdecode(np.frombuffer(base64.b64decode(payload), np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("The page sent a frame that is not an image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def encode_jpeg(rgb: np.ndarray, quality: int = 80) -> str:
    """A JPEG data URL of an RGB uint8 frame, for an <img> on the page."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"Could not encode a frame of shape {rgb.shape} as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


# ---------------------------------------------------------------- one frame in, one out, counted

def model_name(model) -> str:
    """What the view calls the model: a FaceModel's name, else a function's."""
    return str(getattr(model, "name", None) or getattr(model, "__name__", None) or type(model).__name__)


@dataclass
class LiveFrame:
    frame: np.ndarray  # RGB uint8, transformed and labelled
    status: str  # "12.3 fps · U-GAT-IT A2B (step 16)" plus the pipeline's message, if any
    message: str | None  # no face, several faces...: None when the face was transformed


class LiveFrames:
    """Camera frames through the frame pipeline, with the fps over the last `window` frames.

    Both the notebook's view and the web app (helpers.app) call it once per frame.
    """

    def __init__(self, model, detector="auto", detect_every: int = 10, device=None, window: int = 30, gap: float = 2.0):
        from .pipeline import FramePipeline

        self.pipe = FramePipeline(model, detector=detector, detect_every=detect_every, device=device)
        self.name = model_name(model)
        self.stamps: deque = deque(maxlen=window)
        self.gap = gap  # seconds without a frame after which a frame starts a new stream
        self.reset()

    @property
    def fps(self) -> float:
        if len(self.stamps) < 2:
            return 0.0
        return (len(self.stamps) - 1) / max(self.stamps[-1] - self.stamps[0], 1e-9)

    def reset(self) -> None:
        """A new stream: forget the tracked face and the clock."""
        self.pipe.reset()
        self.stamps.clear()
        self.timings: dict = {}  # seconds per stage, summed over the frames since the last reset
        self.frames = 0
        self.start = time.perf_counter()

    def __call__(self, rgb: np.ndarray) -> LiveFrame:
        if self.stamps and time.perf_counter() - self.stamps[-1] > self.gap:
            self.reset()  # Record pressed again, or the page came back: the face may be anywhere now
        out = self.pipe.process(np.ascontiguousarray(rgb), t=time.perf_counter() - self.start)
        self.stamps.append(time.perf_counter())
        self.frames += 1
        for stage, seconds in out.timings.items():
            self.timings[stage] = self.timings.get(stage, 0.0) + seconds
        fps = f"{self.fps:.1f} fps" if len(self.stamps) > 1 else "first frame"
        status = f"{fps} · {self.name}" + (f" · {out.message}" if out.message else "")
        return LiveFrame(out.frame, status, out.message)


# ---------------------------------------------------------------- where are we

def headless() -> bool:
    """True when no person watches: no Jupyter kernel, or a kernel a runner started (papermill, the tests, make demo).

    POLYJUICE_HEADLESS=1/0 forces the answer.
    """
    forced = os.environ.get("POLYJUICE_HEADLESS")
    if forced is not None:
        return forced.strip().lower() in ("1", "true", "yes")
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return True
    try:  # a person's kernel is started by Jupyter's server or Colab; a runner starts its own
        parent = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return any(runner in parent for runner in RUNNERS)


def in_colab() -> bool:
    try:
        from google.colab import output  # noqa: F401
    except ImportError:
        return False
    return True


def checked_model(model, device=None, what: str = "the live face swap"):
    """A face model ready for live use: a run folder is loaded, a swap passes helpers.rules first."""
    from .rules import require_swap_allowed

    if isinstance(model, (str, os.PathLike)):
        from .facemodel import load_face_model

        try:
            model = load_face_model(Path(model).expanduser(), device)
        except (FileNotFoundError, ValueError) as exc:
            raise LessonStop(str(exc)) from None
    if getattr(model, "kind", None) == "swap":
        require_swap_allowed(what)
    if not callable(model):
        raise TypeError(f"model must be a face model (helpers.facemodel), a run folder or a function of faces, "
                        f"not {type(model).__name__}")
    return model


# ---------------------------------------------------------------- the Colab view

@dataclass
class LiveReport:
    """What a live session did: frames, seconds, and where the time per frame went."""

    model: str
    frames: int = 0
    seconds: float = 0.0
    transfer: float = 0.0  # seconds in eval_js: page -> Python -> page, the browser's capture included
    work: float = 0.0  # seconds in Python: decode, pipeline, encode
    error: str | None = None
    timings: dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        if self.error:
            return self.error
        if not self.frames:
            return f"{self.model}: no frame went through."
        per = lambda s: 1000 * s / self.frames  # noqa: E731
        return (f"{self.model}: {self.frames} frames in {self.seconds:.1f} s = {self.fps:.1f} fps round trip "
                f"({per(self.transfer):.0f} ms/frame between page and Python, {per(self.work):.0f} ms/frame in Python)")


def colab_camera(live: LiveFrames, eval_js=None, show=None, width: int = 640, height: int = 360,
                 quality: float = 0.8, max_frames: int | None = None) -> LiveReport:
    """Run the camera view until Stop: page -> Python -> page, one eval_js round trip per frame.

    `eval_js` and `show(html, js)` default to Colab's; the tests pass a
    stand-in for google.colab.output that plays the page in headless Chromium.
    """
    if eval_js is None:
        from google.colab.output import eval_js
    if show is None:
        show = _show_in_output
    uid = f"pj-live-{uuid.uuid4().hex[:8]}"
    show(*live_js.page(uid, live.name, width, quality))
    report = LiveReport(live.name)
    started = eval_js(live_js.call(uid, "start", width, height))
    if started.get("error"):
        report.error = started["error"]
        print(report.error)
        return report
    live.reset()
    shown, start = None, time.perf_counter()
    try:
        while max_frames is None or report.frames < max_frames:
            t0 = time.perf_counter()
            reply = eval_js(live_js.call(uid, "next", shown))
            t1 = time.perf_counter()
            report.transfer += t1 - t0
            if reply.get("stop"):
                break
            result = live(decode_jpeg(reply["frame"]))
            shown = {"image": encode_jpeg(result.frame), "status": result.status}
            report.work += time.perf_counter() - t1
            report.frames += 1
    finally:
        report.seconds = time.perf_counter() - start
        report.timings = dict(live.timings)
        try:
            eval_js(live_js.call(uid, "finish", shown, str(report)))
        except Exception:  # the page went away (a closed tab, an interrupted cell): nothing to release
            pass
    print(report)
    return report


def _show_in_output(html: str, js: str) -> None:
    from IPython.display import HTML, Javascript, display

    display(HTML(html), Javascript(js))


# ---------------------------------------------------------------- the notebook's entry

def live_view(model, detector="auto", detect_every: int = 10, device=None, width: int = 640, height: int = 360):
    """Your camera through `model` (a face model or a run folder): Colab's output view, else the inline app.

    Returns the LiveReport (Colab), the Gradio app (elsewhere), or None in a headless run.
    """
    model = checked_model(model, device)
    if headless():
        print(HEADLESS_LINE)
        return None
    if in_colab():
        live = LiveFrames(model, detector=detector, detect_every=detect_every, device=device)
        return colab_camera(live, width=width, height=height)
    from .app import build

    app = build(model, detector=detector, detect_every=detect_every, device=device)
    app.launch()
    return app
