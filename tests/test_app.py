"""The web app (helpers.app) in headless Chromium with a fake camera: frames in, transformed frames out.

One app serves every test; each test opens its own browser, whose fake camera
plays a Y4M made from the woman sample (or from it changed: two faces, none).
The model is an untrained light U-GAT-IT at 32 px, lesson 04's kind.
"""

import os
import socket
import subprocess
import sys
import urllib.request

import cv2
import numpy as np
import pytest

from chromium import (attribute_of, chromium, clip_frames, face_change, no_face, press, text_of, tiny_ugatit_run, two_faces, wait_for,
                      write_y4m)

pytest.importorskip("gradio", reason="gradio is missing: pip install -e '.[dev]'")

from helpers.app import CAMERA_REFUSED, build  # noqa: E402
from helpers.pipeline import NO_FACE  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_ugatit_run(tmp_path_factory.mktemp("app") / "ugatit")


@pytest.fixture(scope="module")
def frames(samples):
    return clip_frames(samples["woman.mp4"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(run_dir):
    app = build(run_dir, device="cpu")
    app.launch(server_port=free_port(), prevent_thread_lock=True, quiet=True)
    yield app
    app.close()


def camera_of(tmp_path, frames):
    return write_y4m(tmp_path / "camera.y4m", frames)


def by_css(driver, css):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, css)


def open_camera(driver, url: str, record=True):
    """Open the app at `url`, allow the webcam and press Record, as a person would."""
    driver.get(url)
    wait_for(lambda: press(driver, "Access Webcam"), what="the webcam button")
    if record:
        wait_for(lambda: press(driver, label="capture photo"), what="the Record button")


def status(driver) -> str:
    return text_of(driver, "#live-status")


def assert_stream_transformed(url: str, frames, tmp_path):
    """The fake camera's face comes back changed, the rest of the picture not, with the fps and the model's name."""
    with chromium(camera_of(tmp_path, frames)) as driver:
        open_camera(driver, url)
        line = wait_for(lambda: "fps ·" in status(driver) and status(driver), what="the fps under the stream")
        src = wait_for(lambda: attribute_of(driver, "#live-frame img", "src"), what="a frame")
    assert "U-GAT-IT A2B (step 3)" in line
    shown = cv2.cvtColor(cv2.imdecode(np.frombuffer(urllib.request.urlopen(src).read(), np.uint8), cv2.IMREAD_COLOR),
                         cv2.COLOR_BGR2RGB)
    inside, elsewhere = face_change(shown, frames)
    assert inside > 25, f"the face barely changed ({inside:.1f} grey levels)"
    assert elsewhere < 8, f"outside the face the picture changed by {elsewhere:.1f} grey levels"


def test_the_webcam_stream_comes_back_with_the_face_transformed_and_the_fps(app, frames, tmp_path):
    assert_stream_transformed(app.local_url, frames, tmp_path)


@pytest.mark.colab_mirror
def test_the_app_streams_the_webcam_with_colabs_gradio(mirror, run_dir, frames, tmp_path):
    """`python -m helpers.app` served by the Colab mirror's interpreter (Colab's Gradio pin), driven from a browser here."""
    from helpers import colab_mirror

    assert mirror["after"]["gradio"] == colab_mirror.colab_pins()["gradio"]  # the set-up cell left Colab's Gradio alone
    port = free_port()
    log = tmp_path / "app.log"
    with log.open("w") as out:
        server = subprocess.Popen([str(colab_mirror.python()), "-m", "helpers.app", "--model", str(run_dir), "--device", "cpu",
                                   "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for(lambda: server.poll() is not None or _answers(url), what="the app in the mirror", timeout=180)
        assert server.poll() is None, log.read_text()[-3000:]
        assert_stream_transformed(url, frames, tmp_path)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as page:
            return page.status == 200
    except OSError:
        return False


@pytest.mark.parametrize("scene, message", [(no_face, NO_FACE), (two_faces, "2 faces in view: only the largest is transformed.")],
                         ids=["no face", "two faces"])
def test_a_camera_without_one_face_says_so_under_the_stream(app, frames, tmp_path, scene, message):
    with chromium(camera_of(tmp_path, scene(frames))) as driver:
        open_camera(driver, app.local_url)
        line = wait_for(lambda: "fps ·" in status(driver) and status(driver), what="the stream's status")
    assert line.endswith(message) and "U-GAT-IT" in line


def test_a_refused_camera_and_a_model_folder_that_does_not_exist_are_one_sentence_each(app, frames, tmp_path):
    missing = tmp_path / "no-such-run"
    with chromium(camera_of(tmp_path, frames), allow_camera=False) as driver:
        open_camera(driver, app.local_url, record=False)
        note = wait_for(lambda: text_of(driver, "#camera-note"), what="the camera note")
        wait_for(lambda: press(driver, "Another model"), what="the model box")
        wait_for(lambda: by_css(driver, "#model-folder textarea, #model-folder input"), what="the folder field")[0].send_keys(str(missing))
        press(driver, "Load")
        wait_for(lambda: missing.name in text_of(driver, "#model-status"), what="the model's status")
        said, title = text_of(driver, "#model-status .prose").strip(), text_of(driver, "h2")
    assert note == CAMERA_REFUSED
    assert said.startswith("No ") and str(missing) in said and "\n" not in said
    assert "U-GAT-IT A2B (step 3)" in title  # the app keeps the model it had


def test_the_command_line_starts_from_lesson_04s_run_and_names_it_in_one_line_when_missing(tmp_path):
    env = {**os.environ, "POLYJUICE_WORKSPACE": str(tmp_path / "ws")}
    done = subprocess.run([sys.executable, "-m", "helpers.app", "--device", "cpu"], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and str(tmp_path / "ws" / "checkpoints" / "ugatit") in done.stderr


def test_a_photo_and_a_video_go_through_the_same_model(app, frames, tmp_path):
    from helpers.video import probe, write_clip

    photo, said = app.session.picture(frames[0])
    assert said == "Transformed with U-GAT-IT A2B (step 3)."
    assert face_change(photo, frames)[0] > 25
    clip = write_clip(tmp_path / "me.mp4", frames[:12], fps=12)
    path, report = app.session.video(str(clip), 1)
    assert probe(path).frame_count == 12 and "face replaced in" in report
    (tmp_path / "notes.mp4").write_text("not a video")
    path, said = app.session.video(str(tmp_path / "notes.mp4"), 1)
    assert path is None and "notes.mp4" in said


def test_launch_stays_in_the_notebook_unless_a_share_link_is_asked_for(capsys):
    from helpers.app import SHARE_NOTE, _inline_by_default

    class Blocks:  # what Gradio's launch receives
        def launch(self, **kwargs):
            return kwargs

    blocks = Blocks()
    _inline_by_default(blocks)
    assert blocks.launch()["share"] is False and capsys.readouterr().out == ""
    assert blocks.launch(share=True)["share"] is True
    assert capsys.readouterr().out.strip() == SHARE_NOTE
    assert "getUserMedia" in blocks.launch()["head"]  # the refused-camera sentence rides along
