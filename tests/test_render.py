"""helpers.render / helpers.smooth: a rendered video is upright, in time, with its sound, labelled, and steady."""

import dataclasses

import cv2
import numpy as np
import pytest

from conftest import haar_faces
from helpers.render import draw_label, label_box, render_video, track_faces
from helpers.smooth import FaceTracker, OneEuroFilter, box_jitter
from helpers.video import VideoError, iter_frames, metadata, probe, write_clip


def rgb(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def invert(faces):
    return 255 - faces  # an obvious "model": every replaced face turns into its negative


def no_face_frames(n, size=(256, 300)):
    """Smooth coloured gradients with a moving bar: nothing a face detector could take for a face."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(n):
        im = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 40 + 10 * i)], -1).astype(np.uint8)
        im[:, 10 + 12 * i: 30 + 12 * i] = (230, 200, 40)
        frames.append(im)
    return frames


@pytest.fixture(scope="module")
def detector():
    from helpers.faces import make_detector

    return make_detector("mtcnn")


@pytest.fixture(scope="module")
def portrait(samples):
    return cv2.resize(rgb(samples["grace_hopper.jpg"]), (256, 300), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, portrait, detector):
    """A variable-frame-rate clip with sound: 6 frames with a face, then 6 without; rendered once."""
    folder = tmp_path_factory.mktemp("mixed")
    times = [0.0, 0.04, 0.08, 0.2, 0.24, 0.28, 0.4, 0.5, 0.54, 0.58, 0.7, 0.74]
    src = write_clip(folder / "mixed.mp4", [portrait] * 6 + no_face_frames(6), times=times, tone_hz=440)
    dst = folder / "rendered.mp4"
    report = render_video(src, dst, invert, detector=detector, batch_size=4, progress=False)
    plain = folder / "plain.mp4"
    render_video(src, plain, invert, detector=detector, batch_size=4, progress=False, label=False)
    return src, dst, plain, report, times


def test_rotated_phone_clip_is_rendered_upright(tmp_path, portrait, detector):
    stored = np.rot90(portrait, k=1)  # an iPhone's sideways pixels ...
    src = write_clip(tmp_path / "phone.mp4", [stored] * 4, fps=10, rotation=-90)  # ... and its rotation tag
    dst = tmp_path / "out.mp4"
    batches = []
    report = render_video(src, dst, lambda faces: batches.append(len(faces)) or faces, detector=detector,
                          batch_size=4, progress=False)
    assert report.swapped == 4 and batches == [4]  # an upright face in every frame, one batch for the model
    out = [f.image for f in iter_frames(dst)]
    assert out[0].shape == portrait.shape and probe(dst).rotation == 0
    assert all(len(haar_faces(im)) == 1 for im in out)  # and so does an independent one, in the output


def test_frame_count_times_and_duration_match_the_input(mixed):
    src, dst, _, report, times = mixed
    assert report.frames == len(times)
    got = [f.time for f in iter_frames(dst)]
    assert np.allclose(got, times, atol=1e-3)  # variable frame rate kept in time
    assert probe(dst).frame_count == probe(src).frame_count
    assert probe(dst).duration == pytest.approx(probe(src).duration, abs=0.002)


def test_audio_stream_is_kept_with_the_same_duration(mixed):
    src, dst, *_ = mixed
    assert probe(dst).has_audio
    assert probe(dst).audio_duration == pytest.approx(probe(src).audio_duration, abs=0.03)


def test_frames_without_a_face_pass_through_untouched(mixed):
    src, dst, plain, report, _ = mixed
    assert (report.swapped, report.no_face) == (6, 6)
    before = [f.image.astype(int) for f in iter_frames(src)]
    labelled = [f.image.astype(int) for f in iter_frames(dst)]
    unlabelled = [f.image.astype(int) for f in iter_frames(plain)]
    x0, y0, x1, y1 = label_box(before[0].shape)
    outside = np.ones(before[0].shape[:2], bool)
    outside[max(0, y0 - 16):y1 + 16, max(0, x0 - 16):x1 + 16] = False  # the label and its codec block edge
    for i in range(6):  # the face frames did change, so the comparison below can fail
        x0, y0, x1, y1 = np.round(report.boxes[i]).astype(int)
        assert np.abs(labelled[i] - before[i])[y0:y1, x0:x1].mean() > 20
    for i in range(6, 12):  # only codec loss (the input was decoded and encoded once more)
        for out in (unlabelled[i][outside], labelled[i][outside]):
            diff = np.abs(out - before[i][outside])
            assert diff.mean() < 2.5 and np.percentile(diff, 99) < 12


def test_label_is_on_by_default_and_off_only_when_asked(mixed):
    src, dst, plain, *_ = mixed
    frames = {p: [f.image for f in iter_frames(p)] for p in (src, dst, plain)}
    x0, y0, x1, y1 = label_box(frames[src][0].shape)
    for i in (0, 8):  # with and without a face
        region = {p: frames[p][i][y0:y1, x0:x1].astype(int) for p in frames}
        labelled = draw_label(frames[src][i])[y0:y1, x0:x1].astype(int)
        distance = lambda a, b: np.abs(a - b).mean()  # noqa: E731
        assert distance(region[dst], labelled) < distance(region[dst], region[src]) / 3
        assert distance(region[plain], region[src]) < distance(region[plain], labelled) / 3


def test_every_render_carries_the_altered_by_ai_tag(mixed):
    _, dst, plain, *_ = mixed
    for path in (dst, plain):
        tags = metadata(path)
        assert "altered by AI: polyjuice" in tags["comment"] and "altered by AI" in tags["description"]
    assert "label turned off" in metadata(plain)["comment"]


def test_only_the_target_face_is_replaced_when_several_are_present(tmp_path, samples, detector):
    group = cv2.resize(rgb(samples["multi_face.jpg"]), (600, 400), interpolation=cv2.INTER_AREA)
    src = write_clip(tmp_path / "group.mp4", [group] * 3, fps=10)
    dst = tmp_path / "out.mp4"
    report = render_video(src, dst, invert, detector=detector, target="largest", progress=False)
    before = next(iter_frames(src)).image.astype(int)
    after = next(iter_frames(dst)).image.astype(int)
    faces = detector.detect(before.astype(np.uint8))
    assert len(faces) == 5 and report.swapped == 3

    def change(face):
        x0, y0, x1, y1 = face.box.astype(int)
        return np.abs(after - before)[y0:y1, x0:x1].mean()

    changed = [change(f) > 15 for f in faces]  # faces come largest first
    assert changed == [True, False, False, False, False]


def test_side_by_side_and_gif_preview(tmp_path, portrait, detector):
    src = write_clip(tmp_path / "still.mp4", [portrait] * 3, fps=10)
    report = render_video(src, tmp_path / "sbs.mp4", invert, detector=detector, side_by_side=True,
                          preview=True, progress=False)
    out = next(iter_frames(tmp_path / "sbs.mp4")).image.astype(int)
    before = next(iter_frames(src)).image.astype(int)
    assert out.shape == (300, 512, 3)
    assert np.abs(out[:, :256] - before).mean() < 2  # left: the original
    assert np.abs(out[:, 256:] - before).mean() > 5  # right: the result
    assert report.preview.exists() and report.preview.suffix == ".gif"


@pytest.mark.parametrize("kind", ["missing", "empty", "text"])
def test_bad_source_gives_one_clear_error_and_no_output(tmp_path, kind):
    src = tmp_path / f"{kind}.mov"
    if kind == "empty":
        src.write_bytes(b"")
    elif kind == "text":
        src.write_text("not a video")
    dst = tmp_path / "out.mp4"
    with pytest.raises(VideoError, match=str(src)):
        render_video(src, dst, invert, detector=lambda images: [[] for _ in images], progress=False)
    assert not dst.exists()


def test_a_model_that_returns_the_wrong_shape_is_named_and_leaves_no_file(tmp_path, portrait, detector):
    src = write_clip(tmp_path / "still.mp4", [portrait] * 2, fps=10)
    with pytest.raises(ValueError, match="face_fn returned shape"):
        render_video(src, tmp_path / "out.mp4", lambda faces: faces[:, :64, :64], detector=detector, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["still.mp4"]


def test_an_interrupted_render_keeps_what_it_wrote(tmp_path):
    src = write_clip(tmp_path / "long.mp4", no_face_frames(12, (64, 48)), fps=10, tone_hz=330)
    seen = []

    def detect_then_stop(images):  # the user presses stop during the second batch (frames 4 to 7)
        seen.extend(images)
        if len(seen) > 4:
            raise KeyboardInterrupt
        return [[] for _ in images]

    report = render_video(src, tmp_path / "part.mp4", invert, detector=detect_then_stop, batch_size=4, progress=False)
    out = probe(tmp_path / "part.mp4")
    assert report.interrupted and report.frames == out.frame_count == 4
    assert out.audio_duration == pytest.approx(0.4, abs=0.05)  # the sound stops with the picture


def test_smoothing_lowers_box_jitter_on_the_sample_video(samples, detector):
    times, raw, smooth = track_faces(samples["man.mp4"], detector)
    assert len(times) == 72 and not np.isnan(raw).any()
    assert box_jitter(smooth) < 0.5 * box_jitter(raw)
    size = (raw[:, 2] - raw[:, 0]).mean()
    assert np.abs(smooth - raw).mean() < 0.05 * size  # steadier, without trailing behind the face


def test_one_euro_filter_is_steady_when_still_and_follows_a_move():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=1.0)
    still = [f(np.array([5.0]) + rng.normal(0, 0.05, 1), t / 30) for t in range(60)]
    assert np.std(still[10:]) < 0.6 * 0.05  # less than the noise put in
    moved = [f(np.array([8.0]), 2 + t / 30) for t in range(30)]
    assert abs(moved[-1][0] - 8.0) < 0.05  # after a second it has caught up


@dataclasses.dataclass
class FakeFace:
    box: np.ndarray
    score: float = 1.0
    landmarks: np.ndarray | None = None


def test_tracker_keeps_the_chosen_face_when_another_grows_bigger():
    tracker = FaceTracker("largest", max_gap=0.5)
    a = lambda x: FakeFace(np.array([x, 50, x + 100, 150], np.float32))  # noqa: E731  the target, drifting right
    b = lambda s: FakeFace(np.array([400, 50, 400 + s, 50 + s], np.float32))  # noqa: E731  another face, growing
    picked = [tracker([b(60 + 10 * i), a(100 + 3 * i)], i / 25).box[0] for i in range(20)]
    assert picked == [100 + 3 * i for i in range(20)]  # b is larger from frame 5 on: still a
    assert tracker([b(200)], 20 / 25) is None  # a leaves: no jump to b ...
    assert tracker([b(200)], 2.0).box[0] == 400  # ... until it has been gone for longer than max_gap
