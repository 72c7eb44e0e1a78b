"""Lesson 05's small helpers: what a tag-blind reader sees, the first-frame check, the zoom, the two plots."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers.env import LessonStop  # noqa: E402
from helpers.render import RenderReport, render_video  # noqa: E402
from helpers.render_show import face_zoom, first_faces, frame_as_stored, plot_timings, plot_track  # noqa: E402
from helpers.video import iter_frames, probe, write_clip  # noqa: E402


def left_half_white(h=48, w=64):
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 2] = 255
    return image


def test_a_phone_style_clip_reads_sideways_when_the_tag_is_ignored_and_upright_through_iter_frames(tmp_path):
    upright_image = left_half_white()  # white on the left when shown upright
    phone = write_clip(tmp_path / "phone.mp4", [np.rot90(upright_image, k=1)] * 2, fps=10, rotation=-90)
    stored = frame_as_stored(phone)
    shown = next(iter_frames(phone)).image
    assert stored.shape == (64, 48, 3) and shown.shape == (48, 64, 3)  # sideways vs upright
    assert abs(shown.astype(int) - upright_image).mean() < 10
    assert abs(stored.astype(int) - np.rot90(upright_image, k=1)).mean() < 10
    assert "rotation tag -90 degrees" in probe(phone).summary() and "64x48 as displayed" in probe(phone).summary()


def test_frame_as_stored_names_a_file_opencv_cannot_read(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(ValueError, match="notes.mp4"):
        frame_as_stored(text)


class FakeDetector:
    def __init__(self, faces):
        self.faces = faces

    def detect(self, image):
        return self.faces


def test_first_faces_stops_the_lesson_with_what_to_do_when_there_is_no_face():
    frame = np.zeros((32, 32, 3), np.uint8)
    assert first_faces(frame, FakeDetector(["a face"]), "man.mp4") == ["a face"]
    with pytest.raises(LessonStop, match="No face in the first frame of man.mp4: choose a VIDEO"):
        first_faces(frame, FakeDetector([]), "man.mp4")


def test_face_zoom_grows_the_box_and_stays_inside_the_frame():
    frame = np.arange(100 * 120).reshape(100, 120)
    zoom = face_zoom(np.array([40.0, 30.0, 60.0, 50.0]), pad=0.5)  # 20 px wide: 10 px more each side
    assert zoom(frame).shape == (40, 40) and zoom(frame)[0, 0] == frame[20, 30]
    assert face_zoom([0, 0, 100, 100])(frame).shape == (100, 120)  # clipped at the frame's edges, never wrapped


def test_the_track_and_timing_plots_draw_what_they_say():
    times = np.arange(5) / 10
    raw = np.array([[10, 20, 30, 40]] * 5, float)
    raw[2] = np.nan  # a frame without the face
    fig = plot_track(times, raw, raw + 1)
    x_axis = fig.axes[0]
    assert [line.get_label() for line in x_axis.lines] == ["detected", "one-euro smoothed"]
    assert np.allclose(x_axis.lines[0].get_ydata()[[0, 1]], 20) and np.isnan(x_axis.lines[0].get_ydata()[2])
    report = RenderReport("in.mp4", "out.mp4")
    report.timings.update(decode=1.0, model=3.0)
    bars = plot_timings(report).axes[0].patches
    widths = dict(zip(report.timings, [b.get_width() for b in bars]))
    assert len(bars) == len(report.timings) and widths["decode"] == 1.0 and widths["model"] == 3.0


def test_color_none_as_the_notebook_spells_it_means_no_colour_transfer(tmp_path):
    src = write_clip(tmp_path / "in.mp4", [left_half_white()] * 3, fps=10)

    def no_faces(images):
        return [[] for _ in images]

    spelled = render_video(src, tmp_path / "a.mp4", lambda f: f, detector=no_faces, color="none", progress=False)
    plain = render_video(src, tmp_path / "b.mp4", lambda f: f, detector=no_faces, color=None, progress=False)
    assert spelled.frames == plain.frames == 3
    for a, b in zip(iter_frames(spelled.dst), iter_frames(plain.dst)):
        assert np.array_equal(a.image, b.image)
