"""helpers.video: phone clips come out upright, timing and sound survive a round trip, bad files fail clearly."""

import av
import cv2
import numpy as np
import pytest

from helpers.video import VideoError, VideoWriter, iter_frames, metadata, probe, write_clip


def rgb(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def haar_faces(image):
    """Frontal faces found by OpenCV's Haar cascade: an independent check of 'upright'."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))


@pytest.fixture(scope="module")
def portrait(samples):
    return cv2.resize(rgb(samples["grace_hopper.jpg"]), (256, 300), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("rotation", [-90, 90])
def test_phone_clip_with_rotation_tag_reads_upright(tmp_path, portrait, rotation):
    # a phone stores the portrait sideways and tags how to turn it for display:
    # -90 (turn clockwise) is what an iPhone held upright writes
    stored = np.rot90(portrait, k=-rotation // 90)
    assert len(haar_faces(stored)) == 0  # sideways, the face is not found: the test can fail
    path = write_clip(tmp_path / "phone.mp4", [stored] * 3, fps=10, rotation=rotation)

    info = probe(path)
    assert (info.width, info.height, info.rotation) == (256, 300, rotation)
    frame = next(iter_frames(path)).image
    assert frame.shape == portrait.shape
    assert np.abs(frame.astype(int) - portrait).mean() < 6  # only codec loss
    assert len(haar_faces(frame)) == 1
    # OpenCV's own auto-orientation (a separate implementation) agrees on the sign
    ok, bgr = cv2.VideoCapture(str(path)).read()
    assert ok and np.abs(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(int) - frame).mean() < 1


def test_variable_frame_rate_count_and_duration_survive_a_round_trip(tmp_path):
    times = [0.0, 0.1, 0.133, 0.3, 0.333, 0.5, 0.6, 0.633, 0.8, 0.9]
    images = [np.full((120, 160, 3), 20 * i, np.uint8) for i in range(len(times))]
    src = write_clip(tmp_path / "vfr.mkv", images, times=times)
    dst = tmp_path / "copy.mp4"
    info = probe(src)
    with VideoWriter(dst, info.width, info.height, info.fps) as w:
        for f in iter_frames(src):
            w.write(f.image, f.time, f.duration)
    got = [f.time for f in iter_frames(dst)]
    assert probe(dst).frame_count == len(times) == len(got)
    assert np.allclose(got, times, atol=1e-3)
    assert probe(dst).duration == pytest.approx(probe(src).duration, abs=0.002)


@pytest.mark.parametrize("name,codec", [("aac.mp4", "aac"), ("pcm.mkv", "pcm_s16le")])
def test_audio_is_kept_with_the_same_duration(tmp_path, name, codec):
    images = [np.full((120, 160, 3), 10 * i, np.uint8) for i in range(25)]
    src = write_clip(tmp_path / name, images, fps=25, tone_hz=440, audio_codec=codec)
    dst = tmp_path / "out.mp4"
    info = probe(src)
    with VideoWriter(dst, info.width, info.height, info.fps, audio_from=src) as w:
        for f in iter_frames(src):
            w.write(f.image, f.time, f.duration)
    out = probe(dst)
    assert out.has_audio and out.audio_duration == pytest.approx(info.audio_duration, abs=0.03)
    with av.open(str(dst)) as c:  # MP4 cannot hold PCM well: it becomes AAC; AAC is copied
        assert c.streams.audio[0].codec_context.name == "aac"
        rate = c.streams.audio[0].codec_context.sample_rate
        samples = sum(f.samples for f in c.decode(audio=0))
    assert samples / rate == pytest.approx(1.0, abs=0.05)  # one second of sound, decodable


def test_writer_can_stop_the_sound_with_the_picture(tmp_path):
    images = [np.zeros((64, 64, 3), np.uint8)] * 50
    src = write_clip(tmp_path / "two_s.mp4", images, fps=25, tone_hz=300)
    dst = tmp_path / "first_second.mp4"
    w = VideoWriter(dst, 64, 64, 25, audio_from=src)
    for f in iter_frames(src, max_frames=25):
        w.write(f.image, f.time, f.duration)
    w.close(audio_end=w.end)
    out = probe(dst)
    assert out.frame_count == 25 and out.audio_duration == pytest.approx(1.0, abs=0.05)


def test_metadata_tags_are_written(tmp_path):
    dst = tmp_path / "tagged.mp4"
    with VideoWriter(dst, 64, 48, metadata={"comment": "altered by AI: polyjuice"}) as w:
        w.write(np.zeros((48, 64, 3), np.uint8))
    assert metadata(dst)["comment"] == "altered by AI: polyjuice"


def test_a_failed_write_leaves_no_file_that_looks_finished(tmp_path):
    dst = tmp_path / "broken.mp4"
    with pytest.raises(ValueError, match="expects 64x48"):
        with VideoWriter(dst, 64, 48) as w:
            w.write(np.zeros((48, 64, 3), np.uint8))
            w.write(np.zeros((10, 10, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_odd_sizes_are_padded_not_refused(tmp_path):
    dst = tmp_path / "odd.mp4"
    with VideoWriter(dst, 65, 49) as w:
        w.write(np.full((49, 65, 3), 128, np.uint8))
    assert next(iter_frames(dst)).image.shape[:2] == (50, 66)


def test_without_libx264_another_encoder_is_used_and_said(tmp_path, monkeypatch, capsys):
    import helpers.video as video

    monkeypatch.setattr(video, "VIDEO_CODECS", ("libx264-missing", "mpeg4"))
    dst = tmp_path / "fallback.mp4"
    with VideoWriter(dst, 64, 48, 10) as w:
        for i in range(3):
            w.write(np.full((48, 64, 3), 50 * i, np.uint8))
    assert "writing with mpeg4 instead" in capsys.readouterr().err
    assert probe(dst).frame_count == 3


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "folder"])
def test_bad_files_give_one_clear_error_naming_the_file(tmp_path, kind):
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is a shopping list, not a video\n")
    elif kind == "folder":
        path.mkdir()
    for read in (probe, lambda p: next(iter_frames(p))):
        with pytest.raises(VideoError) as err:
            read(path)
        assert str(path) in str(err.value)
