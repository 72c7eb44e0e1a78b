"""helpers.video: phone clips come out upright, timing and sound survive a round trip, bad files fail clearly."""

import av
import cv2
import numpy as np
import pytest

from conftest import haar_faces
from helpers.video import VideoError, VideoWriter, iter_frames, metadata, probe, write_clip


def rgb(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


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
    import helpers.video.write as video_write

    monkeypatch.setattr(video_write, "VIDEO_CODECS", ("libx264-missing", "mpeg4"))
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


# --- frames_at: a few frames of a long video without decoding all of it --------------------------

def barcode(i, size=(96, 48)):
    """A frame whose index is written as 8 black/white stripes (bit 7 first): survives any codec."""
    w, h = size
    bits = [(i >> (7 - b)) & 1 for b in range(8)]
    return np.repeat(np.array(bits, np.uint8) * 255, w // 8)[None, :, None].repeat(h, 0).repeat(3, 2)


def read_barcode(image):
    w = image.shape[1] // 8
    bits = [int(image[:, b * w + 2:(b + 1) * w - 2].mean() > 127) for b in range(8)]
    return sum(bit << (7 - b) for b, bit in enumerate(bits))


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """Ten seconds at 24 fps (240 frames), a key frame every second, as phones write."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    return write_clip(path, [barcode(i) for i in range(240)], fps=24)


def count_decoding(monkeypatch):
    import helpers.video.read as video_read

    decoded = []
    real = video_read._decoded

    def counting(container, stream):
        for frame in real(container, stream):
            decoded.append(frame.time)
            yield frame

    monkeypatch.setattr(video_read, "_decoded", counting)
    return decoded


def test_frames_at_returns_the_frames_asked_for_by_index_and_by_time(long_clip, monkeypatch):
    from helpers.video import frames_at

    assert [read_barcode(f.image) for f in iter_frames(long_clip, max_frames=3)] == [0, 1, 2]  # the code reads back
    decoded = count_decoding(monkeypatch)
    wanted = [230, 3, 120, 119]  # any order, neighbours too
    frames = frames_at(long_clip, indices=wanted)
    assert [read_barcode(f.image) for f in frames] == wanted
    assert [f.index for f in frames] == wanted
    assert [f.time for f in frames] == pytest.approx([i / 24 for i in wanted], abs=1e-3)
    assert len(decoded) <= 4 * 25  # at most a key-frame interval each, not the 240 of the whole video

    decoded.clear()
    by_time = frames_at(long_clip, [0.0, 5.0, 5.02, 9.99, 60.0])  # 5.02 s is still frame 120; past the end: the last
    assert [read_barcode(f.image) for f in by_time] == [0, 120, 120, 239, 239]
    assert len(decoded) <= 5 * 25


def test_frames_at_follows_a_variable_frame_rate(tmp_path):
    from helpers.video import frames_at

    times = [0.0, 0.1, 0.133, 0.3, 0.333, 0.5]
    clip = write_clip(tmp_path / "vfr.mkv", [barcode(i) for i in range(6)], times=times)
    got = frames_at(clip, [0.05, 0.2, 0.31, 0.5])  # the frame on screen at each time
    assert [read_barcode(f.image) for f in got] == [0, 2, 3, 5]


def test_frames_at_reads_rotated_phone_clips_upright(tmp_path, portrait):
    from helpers.video import frames_at

    path = write_clip(tmp_path / "phone.mp4", [np.rot90(portrait, k=1)] * 3, fps=10, rotation=-90)
    assert frames_at(path, indices=[1])[0].image.shape == portrait.shape


@pytest.mark.parametrize("call,match", [
    (lambda f, p: f(p), "either times"),
    (lambda f, p: f(p, [1.0], indices=[1]), "either times"),
    (lambda f, p: f(p, [-1.0]), "time"),
    (lambda f, p: f(p, [float("nan")]), "time"),
    (lambda f, p: f(p, indices=[-2]), "indices"),
    (lambda f, p: f(p, indices=[1.5]), "indices"),
])
def test_frames_at_refuses_bad_requests(long_clip, call, match):
    from helpers.video import frames_at

    with pytest.raises(ValueError, match=match):
        call(frames_at, long_clip)


# --- argument checks: a clear error at once, not a traceback from inside ffmpeg --------------------

@pytest.mark.parametrize("kwargs,match", [
    (dict(every=0), "every"), (dict(every=-3), "every"), (dict(every=1.5), "every"),
    (dict(max_frames=0), "max_frames"), (dict(max_frames=-1), "max_frames"),
])
def test_iter_frames_checks_its_arguments(tmp_path, kwargs, match):
    clip = write_clip(tmp_path / "c.mp4", [np.zeros((48, 64, 3), np.uint8)] * 3, fps=10)
    with pytest.raises(ValueError, match=match):
        next(iter_frames(clip, **kwargs))


@pytest.mark.parametrize("kwargs,match", [
    (dict(width=0), "width"), (dict(height=-2), "height"), (dict(rate=-1), "rate"), (dict(rate=float("inf")), "rate"),
    (dict(crf=60), "crf"), (dict(preset="fastest"), "preset"), (dict(audio_from="no/such/file.mp4"), "audio_from"),
])
def test_video_writer_checks_its_arguments_and_leaves_no_file(tmp_path, kwargs, match):
    args = dict(path=tmp_path / "out.mp4", width=64, height=48) | kwargs
    with pytest.raises(ValueError, match=match):
        VideoWriter(**args)
    assert list(tmp_path.iterdir()) == []


def test_video_writer_refuses_a_folder_and_an_unreadable_sound_source(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        VideoWriter(tmp_path / "out", 64, 48)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    with pytest.raises(VideoError, match="notes.txt"):
        VideoWriter(tmp_path / "x.mp4", 64, 48, audio_from=notes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "out"]  # no temporary file left


@pytest.mark.parametrize("image,match", [
    (np.zeros((48, 64, 3), np.float32), "uint8"), (np.zeros((48, 64), np.uint8), "uint8"),
    (np.zeros((48, 64, 4), np.uint8), "uint8"), ([[0, 0, 0]], "uint8"),
])
def test_writing_a_frame_of_the_wrong_kind_is_named(tmp_path, image, match):
    with pytest.raises(ValueError, match=match):
        with VideoWriter(tmp_path / "out.mp4", 64, 48) as w:
            w.write(image)
    assert list(tmp_path.iterdir()) == []


def test_writing_at_an_impossible_time_is_named(tmp_path):
    with pytest.raises(ValueError, match="time"):
        with VideoWriter(tmp_path / "out.mp4", 64, 48) as w:
            w.write(np.zeros((48, 64, 3), np.uint8), time=float("nan"))
    with pytest.raises(ValueError, match="duration"):
        with VideoWriter(tmp_path / "out.mp4", 64, 48) as w:
            w.write(np.zeros((48, 64, 3), np.uint8), duration=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_write_clip_checks_its_images(tmp_path):
    with pytest.raises(ValueError, match="at least one image"):
        write_clip(tmp_path / "a.mp4", [])
    with pytest.raises(ValueError, match="same size"):
        write_clip(tmp_path / "b.mp4", [np.zeros((48, 64, 3), np.uint8), np.zeros((40, 64, 3), np.uint8)])
    with pytest.raises(ValueError, match="increasing"):
        write_clip(tmp_path / "c.mp4", [np.zeros((48, 64, 3), np.uint8)] * 2, times=[0.5, 0.1])
