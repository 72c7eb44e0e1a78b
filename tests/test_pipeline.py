"""helpers.pipeline: detect now and then, follow the face in between, and stay close to detecting every frame."""

import numpy as np
import pytest

from helpers.pipeline import NO_FACE, FramePipeline, draw_label, label_box
from helpers.video import iter_frames
from test_render import no_face_frames  # gradients and a moving bar: no face for any detector

pytestmark = pytest.mark.usefixtures("one_thread")


def invert(faces):
    return 255 - faces  # an obvious "model": a replaced face turns into its negative


@pytest.fixture(scope="module")
def detector():
    from helpers.faces import make_detector

    return make_detector("mtcnn")


@pytest.fixture(scope="module")
def clip(samples):
    return [f.image for f in iter_frames(samples["woman.mp4"], max_frames=30)]


def faces_of(outs):
    return [o.face for o in outs]


def test_tracked_faces_stay_close_to_detecting_every_frame(clip, detector):
    every = FramePipeline(invert, detector, detect_every=1, label=False).process_batch(clip)
    pipe = FramePipeline(invert, detector, detect_every=10, label=False)
    tracked = pipe.process_batch(clip)
    assert pipe.detections == 3 and sum(o.detected for o in tracked) == 3  # frames 0, 10, 20
    assert all(o.face is not None and o.faces == 1 and o.message is None for o in every + tracked)
    # landmarks within 5% of the face width on average, 12% at worst (the smoother lags a little either way)
    widths = np.array([f.box[2] - f.box[0] for f in faces_of(every)])
    gap = np.array([np.linalg.norm(a.landmarks - b.landmarks, axis=1).max() for a, b in zip(faces_of(every), faces_of(tracked))])
    assert (gap / widths).mean() < 0.05 and (gap / widths).max() < 0.12
    # the inverted face lands on the same pixels: mean difference of the frames under 3 grey levels
    diffs = [np.abs(a.frame.astype(int) - b.frame).mean() for a, b in zip(every, tracked)]
    assert np.mean(diffs) < 3
    assert np.abs(tracked[15].frame.astype(int) - clip[15]).mean() > 3  # and the face did change


def test_tracking_lets_go_when_the_face_leaves_and_finds_it_when_it_returns(clip, detector):
    frames = clip[:8] + no_face_frames(6, (640, 360)) + clip[8:16]
    pipe = FramePipeline(invert, detector, detect_every=30)
    outs = pipe.process_batch(frames)
    found = [o.face is not None for o in outs]
    assert found == [True] * 8 + [False] * 6 + [True] * 8
    assert all(o.message == NO_FACE and o.faces == 0 for o in outs[8:14])
    assert outs[8].detected and outs[14].detected  # lost at the cut, looked again at once when it came back
    assert not any(o.detected for o in outs[15:])  # then followed again without the detector


def test_every_frame_is_labelled_and_the_model_sees_one_batch(clip, detector):
    calls = []

    def model(faces):
        calls.append(len(faces))
        return faces

    frames = clip[:3] + no_face_frames(2, (640, 360))
    outs = FramePipeline(model, detector).process_batch(frames)
    assert calls == [3]
    x0, y0, x1, y1 = label_box(frames[0].shape)
    for frame, out in zip(frames, outs):
        assert out.frame.shape == frame.shape and out.frame.dtype == np.uint8
        labelled = draw_label(frame)[y0:y1, x0:x1].astype(int)
        assert np.abs(out.frame[y0:y1, x0:x1].astype(int) - labelled).mean() < 1
    assert set(outs[0].timings) == {"detect", "track", "align", "model", "blend", "label"}


def test_reset_forgets_the_face_and_detects_again(clip, detector):
    pipe = FramePipeline(invert, detector, detect_every=10)
    assert [pipe.process(f).detected for f in clip[:3]] == [True, False, False]
    pipe.reset()
    assert pipe.process(clip[3]).detected


def test_two_faces_say_which_one_is_transformed(samples, detector):
    import cv2

    group = cv2.cvtColor(cv2.imread(str(samples["multi_face.jpg"])), cv2.COLOR_BGR2RGB)
    out = FramePipeline(invert, detector).process(cv2.resize(group, (600, 400)))
    assert out.faces == 5 and out.face is not None and "only the largest is transformed" in out.message


def test_bad_frames_and_arguments_are_named():
    with pytest.raises(ValueError, match="RGB uint8"):
        FramePipeline(invert, lambda images: [[] for _ in images]).process(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="detect_every"):
        FramePipeline(invert, "mtcnn", detect_every=0)
    with pytest.raises(TypeError, match="model must be"):
        FramePipeline("not a model")
