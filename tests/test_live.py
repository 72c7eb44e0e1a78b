"""The notebook's live view: camera frames through the model and back, in headless Chromium with a fake camera.

Colab's part (the output frame and `google.colab.output.eval_js`) is played by
tests/colab_standin.py; helpers.live.colab_camera and the page's JavaScript
run unchanged. The model is an untrained light U-GAT-IT at 32 px (lesson 04's
kind): its faces differ from the camera's, which is what the tests look for.
"""

import threading

import numpy as np
import pytest

from chromium import attribute_of, chromium, clip_frames, face_change, text_of, tiny_ugatit_run, wait_for, write_y4m
from colab_standin import ColabStandIn
from helpers.env import LessonStop
from helpers.live import HEADLESS_LINE, LiveFrames, colab_camera, decode_jpeg, encode_jpeg, headless, live_view

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from helpers.facemodel import load_face_model

    return load_face_model(tiny_ugatit_run(tmp_path_factory.mktemp("live") / "ugatit"), "cpu")


@pytest.fixture(scope="module")
def frames(samples):
    return clip_frames(samples["woman.mp4"])


@pytest.fixture(scope="module")
def camera(frames, tmp_path_factory):
    return write_y4m(tmp_path_factory.mktemp("camera") / "woman.y4m", frames)


def run_view(model, camera, allow_camera=True, frames_wanted=6):
    """Start the view against the stand-in, press Start, let `frames_wanted` frames through, press Stop.

    Returns (report, the frame the page shows, the page's status line).
    """
    from selenium.webdriver.common.by import By

    colab, live, done = ColabStandIn(), LiveFrames(model), {}
    worker = threading.Thread(target=lambda: done.update(report=colab_camera(live, colab.eval_js, colab.show)), daemon=True)
    worker.start()
    try:
        with chromium(camera, allow_camera) as driver:
            driver.get(colab.url)
            wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".pj-start"), what="the view's Start button").pop().click()
            status = lambda: text_of(driver, ".pj-status")  # noqa: E731
            shown = None
            if allow_camera:
                wait_for(lambda: live.frames >= frames_wanted and "fps ·" in status(), what=f"{frames_wanted} frames")
                src = attribute_of(driver, ".pj-out", "src")
                shown, line = decode_jpeg(src), status()
                driver.find_element(By.CSS_SELECTOR, ".pj-stop").click()
            worker.join(20)
            assert not worker.is_alive(), "the Python side did not end after Stop"
            final = status()
    finally:
        colab.close()
    return done["report"], shown, (line if allow_camera else final), final


def test_the_colab_view_transforms_the_cameras_face_and_leaves_the_rest(model, camera, frames):
    report, shown, line, final = run_view(model, camera)
    assert report.error is None and report.frames >= 6 and report.fps > 0
    assert "fps · U-GAT-IT A2B (step 3)" in line  # the fps and the model's name, on the page
    assert "fps round trip" in final and "ms/frame between page and Python" in final
    inside, elsewhere = face_change(shown, frames)
    assert inside > 25, f"the face barely changed ({inside:.1f} grey levels)"
    assert elsewhere < 8, f"outside the face the picture changed by {elsewhere:.1f} grey levels"


def test_a_refused_camera_is_one_sentence_on_the_page_and_in_the_cell(model, camera, capsys):
    report, _, _, final = run_view(model, camera, allow_camera=False)
    assert report.frames == 0 and report.error.startswith("The browser refused the camera")
    assert final == report.error
    assert capsys.readouterr().out.strip() == report.error


def test_frames_round_trip_as_jpeg_data_urls():
    rgb = np.zeros((36, 64, 3), np.uint8)
    rgb[:, :32] = (200, 30, 30)
    back = decode_jpeg(encode_jpeg(rgb, quality=95))
    assert back.shape == rgb.shape
    assert np.abs(back[:, :28].mean((0, 1)) - (200, 30, 30)).max() < 4  # red stays red: RGB in, RGB out
    assert back[:, 36:].max() < 8


def test_every_frame_is_labelled_and_a_faceless_one_says_so(model, frames):
    from helpers.pipeline import label_box

    live = LiveFrames(model)
    wall = np.full_like(frames[0], 90)
    result = live(wall)
    x0, y0, x1, y1 = label_box(wall.shape)
    assert result.message and "face" in result.message and result.message in result.status
    assert np.abs(result.frame[y0:y1, x0:x1].astype(int) - 90).max() > 100  # the label is drawn on the wall too


def test_a_headless_run_skips_the_camera_with_one_line(model, monkeypatch, capsys):
    monkeypatch.delenv("POLYJUICE_HEADLESS", raising=False)
    assert headless()  # pytest is no notebook
    assert live_view(model) is None
    assert capsys.readouterr().out.strip() == HEADLESS_LINE


def test_a_missing_model_folder_stops_with_one_sentence(tmp_path):
    with pytest.raises(LessonStop) as stop:
        live_view(tmp_path / "no-such-run")
    assert "no-such-run" in str(stop.value) and "\n" not in str(stop.value)


def test_a_swap_on_a_managed_colab_runtime_stops_before_the_camera(tmp_path, monkeypatch):
    from helpers.checkpoint import save_checkpoint
    from helpers.models.autoencoder import FaceSwapAutoencoder, spec_for

    save_checkpoint(tmp_path / "swap", 1, {"model": FaceSwapAutoencoder(spec_for("tiny", 32)).state_dict(),
                                           "config": {"model": "tiny", "size": 32}})
    monkeypatch.setenv("POLYJUICE_MANAGED_COLAB", "1")
    with pytest.raises(LessonStop, match="Colab's FAQ disallows creating deepfakes"):
        live_view(tmp_path / "swap", device="cpu")
    monkeypatch.setenv("POLYJUICE_MANAGED_COLAB", "0")
    assert live_view(tmp_path / "swap", device="cpu") is None  # allowed off Colab: here headless, so skipped
