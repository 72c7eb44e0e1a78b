"""The page side of the notebook's live view in Colab: camera, Start/Stop, the transformed frame, the fps.

Python drives it with `google.colab.output.eval_js`, one call per frame:
`view.next(shown)` puts the last result on the page and resolves with the
next camera frame as a JPEG data URL (or {stop: true} once Stop was pressed).
Nothing leaves the page until Start is pressed, and Stop releases the camera.
"""

from __future__ import annotations

import json

PAGE_HTML = """
<div id="{uid}" style="font-family: sans-serif; max-width: {width}px">
  <div style="margin-bottom: 6px">
    <button class="pj-start">Start camera</button>
    <button class="pj-stop" disabled>Stop</button>
    <span class="pj-status" style="margin-left: 8px">{title}: press Start (the camera turns on only then).</span>
  </div>
  <img class="pj-out" alt="transformed camera frame" style="width: 100%; background: #222; min-height: 60px">
  <video class="pj-cam" playsinline muted style="display: none"></video>
</div>
"""

PAGE_JS = """
(() => {
  const root = document.getElementById(UID);
  const [startButton, stopButton] = [root.querySelector('.pj-start'), root.querySelector('.pj-stop')];
  const status = root.querySelector('.pj-status'), out = root.querySelector('.pj-out');
  const video = root.querySelector('.pj-cam'), canvas = document.createElement('canvas');
  let stream = null, stopped = false;
  const say = (text) => { status.textContent = text; };

  function release() {
    stopped = true;
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    startButton.disabled = stopButton.disabled = true;
  }

  function cameraError(error) {
    if (!navigator.mediaDevices) return 'This page cannot reach a camera (it needs https or localhost).';
    if (error.name === 'NotAllowedError') {
      return 'The browser refused the camera: allow it (the camera icon in the address bar), then run the cell again.';
    }
    if (error.name === 'NotFoundError') return 'No camera found: plug one in, then run the cell again.';
    return `The camera did not start (${error.name}: ${error.message}).`;
  }

  stopButton.onclick = () => { release(); say('Stopped: run the cell again to restart.'); };

  const view = {
    // Resolves when Start was pressed and the camera runs: {width, height}, or {error: one sentence}.
    start: (width, height) => new Promise((resolve) => {
      startButton.onclick = async () => {
        startButton.disabled = true;
        say('Asking for the camera...');
        try {
          if (!navigator.mediaDevices) throw new Error('no mediaDevices');
          stream = await navigator.mediaDevices.getUserMedia({video: {width: {ideal: width}, height: {ideal: height}}, audio: false});
          video.srcObject = stream;
          await video.play();
        } catch (error) {
          release();
          const sentence = cameraError(error);
          say(sentence);
          resolve({error: sentence});
          return;
        }
        stopButton.disabled = false;
        say('Camera on: the first frame is on its way...');
        resolve({width: video.videoWidth, height: video.videoHeight});
      };
    }),
    // Shows the last result, then resolves with the next camera frame (mirrored, like a selfie view).
    next: async (shown) => {
      if (shown) { out.src = shown.image; say(shown.status); }
      if (stopped || !stream) return {stop: true};
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      const context = canvas.getContext('2d');
      context.setTransform(-1, 0, 0, 1, canvas.width, 0);
      context.drawImage(video, 0, 0);
      return {frame: canvas.toDataURL('image/jpeg', QUALITY)};
    },
    // The last result stays on the page; the camera is released.
    finish: (shown, sentence) => {
      if (shown) out.src = shown.image;
      release();
      say(sentence);
      return true;
    },
  };
  window.polyjuiceLive = window.polyjuiceLive || {};
  window.polyjuiceLive[UID] = view;
})();
"""


def page(uid: str, title: str, width: int = 640, quality: float = 0.8) -> tuple[str, str]:
    """(HTML, JavaScript) of one live view; `uid` names it in `window.polyjuiceLive`."""
    html = PAGE_HTML.format(uid=uid, width=width, title=_escape(title))
    js = PAGE_JS.replace("UID", json.dumps(uid)).replace("QUALITY", repr(float(quality)))
    return html, js


def call(uid: str, method: str, *args) -> str:
    """The JavaScript expression eval_js runs for one call of the view's `method`."""
    return f"window.polyjuiceLive[{json.dumps(uid)}].{method}({', '.join(json.dumps(a) for a in args)})"


def _escape(text: str) -> str:
    import html

    return html.escape(str(text))
