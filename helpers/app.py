"""A small web app around a trained face model: your webcam live, a photo, a video (Gradio 6).

    app = build(translator)            # in a notebook; a run folder works too
    app.launch()                       # inline in the output (in Colab through its port proxy)

    python -m helpers.app --model workspace/checkpoints/ugatit     # from a shell (that folder is the default)

The webcam tab streams one JPEG per round trip (`gr.Image(streaming=True)`
with `.stream(stream_every=..., time_limit=...)`) through the same frame
pipeline as the notebook's live view (helpers.live.LiveFrames), and shows the
fps and the model's name; every frame carries the "AI-generated" label. The
video tab renders with helpers.render.render_video. A swap model passes
helpers.rules first. `app.launch()` stays inline: a public share link is
opt-in (share=True), with one sentence on what it means.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path

from .env import LessonStop
from .live import LiveFrames, checked_model

GRADIO_MISSING = "The web app needs Gradio, which this environment lacks: pip install 'gradio>=6,<7' (Colab has it already)."
SHARE_NOTE = ("share=True: the app gets a public gradio.live address for up to a week; anyone who has it can use your model "
              "and your runtime, and Colab's FAQ restricts driving a free Colab runtime primarily through a web UI.")
WEBCAM_HINT = "Press the camera's button, then Record: your frames come back transformed here."
CAMERA_REFUSED = "The browser refused the camera: allow it (the camera icon in the address bar), then reload the page."

# Gradio's webcam only logs a refused camera to the console; this puts one sentence on the page instead.
CAMERA_NOTE_JS = """
<script>
(() => {
  const media = navigator.mediaDevices;
  if (!media || !media.getUserMedia) return;
  const ask = media.getUserMedia.bind(media);
  const note = (text) => { const el = document.getElementById('camera-note'); if (el) el.textContent = text; };
  media.getUserMedia = async (constraints) => {
    try { const stream = await ask(constraints); note(''); return stream; }
    catch (error) { note(error.name === 'NotAllowedError' ? SENTENCE : `The camera did not start (${error.name}).`); throw error; }
  };
})();
</script>
""".replace("SENTENCE", json.dumps(CAMERA_REFUSED))


def gradio():
    """The gradio module, or one sentence saying how to get it."""
    try:
        import gradio as gr
    except ImportError:
        raise LessonStop(GRADIO_MISSING) from None
    return gr


class Session:
    """The model the app runs and its pipelines; a new model can be loaded from a run folder."""

    def __init__(self, model, detector, detect_every: int, device):
        self.detector, self.detect_every, self.device = detector, detect_every, device
        self.lock = threading.Lock()
        self.use(model)

    def use(self, model) -> None:
        live = LiveFrames(model, self.detector, self.detect_every, self.device)
        photo = LiveFrames(model, self.detector, 1, self.device)  # a photo is detected, never tracked
        with self.lock:
            self.model, self.live, self.photo = model, live, photo

    @property
    def title(self) -> str:
        return f"## Polyjuice live · {self.live.name}\nEvery picture this app makes carries the *AI-generated* label."

    def frame(self, rgb):
        if rgb is None:
            return None, WEBCAM_HINT
        with self.lock:
            result = self.live(rgb)
        return result.frame, result.status

    def picture(self, rgb):
        if rgb is None:
            return None, "Upload a photo with a face."
        with self.lock:
            self.photo.reset()
            result = self.photo(rgb)
        return result.frame, result.message or f"Transformed with {self.photo.name}."

    def video(self, path, seconds: float):
        from .render import render_video

        if not path:
            return None, "Upload a video, then press Render."
        dst = Path(tempfile.mkdtemp(prefix="polyjuice-app-")) / (Path(path).stem + "_live.mp4")
        try:
            report = render_video(path, dst, self.model, detector=self.detector, device=self.device,
                                  max_seconds=float(seconds), progress=False)
        except (ValueError, OSError, LessonStop) as exc:  # VideoError is a ValueError: a file that is not a video
            return None, str(exc)
        return str(dst), str(report)

    def load(self, folder: str):
        try:
            self.use(checked_model(folder.strip(), self.device, "the face swap app"))
        except LessonStop as exc:
            return self.title, str(exc)
        return self.title, f"Loaded {self.live.name} from {folder}."


def build(model, detector="auto", detect_every: int = 10, device=None, stream_every: float = 1 / 15,
          time_limit: float = 300, video_seconds: float = 10):
    """The app (a gradio.Blocks) for `model`: a face model, a run folder or a function of faces.

    stream_every: seconds between the webcam's frames (the fastest the page sends);
    time_limit: seconds one webcam stream may run before Record must be pressed again.
    """
    model = checked_model(model, device, "the face swap app")
    gr = gradio()
    session = Session(model, detector, detect_every, device)
    with gr.Blocks(title="Polyjuice live", delete_cache=(60, 120)) as app:  # webcam frames are files: keep two minutes
        title = gr.Markdown(session.title)
        with gr.Tab("Webcam"):
            with gr.Row():
                camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="your camera", elem_id="camera")
                shown = gr.Image(label="transformed", format="jpeg", elem_id="live-frame")
            status = gr.Markdown(WEBCAM_HINT, elem_id="live-status")
            gr.HTML('<div id="camera-note" role="alert" style="color: #c00; font-weight: bold"></div>')
            camera.stream(session.frame, camera, [shown, status], stream_every=stream_every, time_limit=time_limit,
                          concurrency_limit=1, show_progress="hidden")
        with gr.Tab("Photo"):
            with gr.Row():
                photo = gr.Image(sources=["upload", "clipboard"], type="numpy", label="a photo", elem_id="photo")
                photo_out = gr.Image(label="transformed", format="jpeg", elem_id="photo-result")
            photo_status = gr.Markdown(elem_id="photo-status")
            photo.upload(session.picture, photo, [photo_out, photo_status])
        with gr.Tab("Video"):
            with gr.Row():
                video = gr.Video(sources=["upload"], label="a video", elem_id="video")
                video_out = gr.Video(label="rendered, with its sound", elem_id="video-result")
            seconds = gr.Slider(1, 120, value=video_seconds, step=1, label="seconds to render (a CPU renders a few frames a second)")
            render = gr.Button("Render")
            video_status = gr.Markdown(elem_id="video-status")
            render.click(session.video, [video, seconds], [video_out, video_status])
        with gr.Accordion("Another model", open=False):
            folder = gr.Textbox(label="run folder (lesson 03 or 04)", elem_id="model-folder")
            load = gr.Button("Load", elem_id="model-load")
            model_status = gr.Markdown(elem_id="model-status")
            load.click(session.load, folder, [title, model_status])
    app.session = session
    _inline_by_default(app)
    return app


def _inline_by_default(app) -> None:
    """app.launch() keeps the app in the notebook (Gradio would make a public link in Colab); share=True says what it means."""
    launch = app.launch

    def launch_inline(*args, share: bool = False, head: str | None = None, **kwargs):
        if share:
            print(SHARE_NOTE)
        return launch(*args, share=share, head=CAMERA_NOTE_JS + (head or ""), **kwargs)

    launch_inline.__doc__ = launch.__doc__
    app.launch = launch_inline


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.app", description="Your webcam, a photo or a video through a trained face model.")
    parser.add_argument("--model", default=None, help="a run folder of lesson 03 (swap) or 04 (U-GAT-IT), or a checkpoint file "
                        "(default: lesson 04's run, <workspace>/checkpoints/ugatit)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the best one here)")
    parser.add_argument("--detector", default="auto", help="auto, mtcnn or haar")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 serves the whole network")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="a public gradio.live link (read what it means first)")
    args = parser.parse_args(argv)
    if args.model is None:  # lesson 04's makeup: your own face translated
        from .env import workspace_root

        args.model = workspace_root("local") / "checkpoints" / "ugatit"
    try:
        app = build(args.model, detector=args.detector, device=args.device)
    except LessonStop as exc:
        print(exc, file=sys.stderr)
        return 2
    app.launch(server_name=args.host, server_port=args.port, share=args.share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
