"""Issue 14's video rows: browser and phone-app exports, cut-off uploads, bad arguments and failed renders.

Every input is made here: PyAV writes the WebM/MKV exports and the cut-off MP4.
"""

import av
import numpy as np
import pytest

import helpers.video.write as video_write
from helpers.render import render_video, track_faces
from helpers.video import VideoError, VideoWriter, iter_frames, probe, write_clip


def no_faces(images):
    return [[] for _ in images]


def invert(faces):
    return 255 - faces


def gradients(n, size=(64, 48)):
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    return [np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 8 * i % 256)], -1).astype(np.uint8) for i in range(n)]


def encoder_or_skip(*names):
    for name in names:
        try:
            av.codec.Codec(name, "w")
        except Exception:
            pytest.skip(f"this PyAV build has no {name} encoder")


def decoded_sound(path):
    """(codec name, seconds of decoded samples, loudest frequency in Hz) of the first audio stream."""
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        rate = stream.codec_context.sample_rate
        wave = np.concatenate([f.to_ndarray().reshape(f.to_ndarray().shape[0], -1)[0] for f in c.decode(stream)])
        name = stream.codec_context.name
    spectrum = np.abs(np.fft.rfft(wave))
    return name, len(wave) / rate, np.argmax(spectrum) * rate / len(wave)


@pytest.mark.parametrize("name,vcodec,acodec,fmt", [
    ("browser.webm", "libvpx-vp9", "libopus", "webm"),
    ("old_browser.webm", "libvpx", "vorbis", "webm"),
    ("phone_app.mkv", "libx264", "libopus", "matroska"),
])
def test_webm_and_mkv_with_opus_or_vorbis_render_with_their_sound_as_aac(tmp_path, name, vcodec, acodec, fmt):
    encoder_or_skip(vcodec, acodec)
    fps = 25
    src = write_clip(tmp_path / name, gradients(30), fps=fps, tone_hz=440, audio_codec=acodec,
                     container_format=fmt, video_codec=vcodec)
    src_codec, src_seconds, _ = decoded_sound(src)
    assert src_codec in ("opus", "libopus", "vorbis", "libvorbis")  # the test input really is what browsers write
    dst = tmp_path / "out.mp4"
    report = render_video(src, dst, invert, detector=no_faces, progress=False)

    out = probe(dst)
    assert report.frames == out.frame_count == 30
    assert out.has_audio
    assert out.audio_duration == pytest.approx(probe(src).audio_duration, abs=1 / fps)
    codec, seconds, pitch = decoded_sound(dst)
    assert codec == "aac"
    assert seconds == pytest.approx(src_seconds, abs=1 / fps)
    assert pitch == pytest.approx(440, abs=5)  # the same sound, not noise or silence


@pytest.fixture
def faststart_clip(tmp_path):
    """A 72-frame MP4 with sound, index at the front (as uploads and our own renders are written)."""
    plain = write_clip(tmp_path / "plain.mp4", gradients(72), fps=24, tone_hz=440)
    src = tmp_path / "whole.mp4"
    with VideoWriter(src, 64, 48, 24, audio_from=plain) as w:
        for f in iter_frames(plain):
            w.write(f.image, f.time, f.duration)
    return src


@pytest.fixture
def browser_clip(tmp_path):
    """The same 72 frames as a WebM with Opus sound: MKV and WebM headers hold a duration but no frame count."""
    encoder_or_skip("libvpx-vp9", "libopus")
    return write_clip(tmp_path / "whole.webm", gradients(72), fps=24, tone_hz=440, audio_codec="libopus",
                      container_format="webm", video_codec="libvpx-vp9")


@pytest.mark.parametrize("clip", ["faststart_clip", "browser_clip"])
def test_a_cut_off_upload_renders_as_far_as_it_goes_and_says_so(tmp_path, request, clip):
    whole = request.getfixturevalue(clip)
    data = whole.read_bytes()
    cut = tmp_path / f"cut{whole.suffix}"
    cut.write_bytes(data[: len(data) // 2])  # the upload stopped half-way
    assert probe(cut).duration == pytest.approx(3.0, abs=0.05)  # the header still promises everything
    there = len(list(iter_frames(cut)))
    assert 0 < there < 72

    with pytest.warns(UserWarning, match=f"{there} of the 72 frames.*cut off"):
        report = render_video(cut, tmp_path / "out.mp4", invert, detector=no_faces, progress=False)
    assert report.cut_off and (report.frames, report.expected) == (there, 72)
    assert f"{there} of the 72 frames" in str(report)
    out = probe(report.dst)
    assert out.frame_count == there
    assert out.audio_duration == pytest.approx(there / 24, abs=0.1)  # the sound stops with the picture


def test_an_mp4_cut_before_its_index_is_named_as_possibly_incomplete(tmp_path):
    whole = write_clip(tmp_path / "whole.mp4", gradients(24), fps=24)  # index at the end, as cameras write
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:-2000])
    with pytest.raises(VideoError, match="incomplete"):
        render_video(cut, tmp_path / "out.mp4", invert, detector=no_faces, progress=False)
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("clip", ["faststart_clip", "browser_clip"])
def test_a_whole_file_raises_no_cut_off_warning(tmp_path, request, clip, recwarn):
    faststart_clip = request.getfixturevalue(clip)
    report = render_video(faststart_clip, tmp_path / "out.mp4", invert, detector=no_faces, progress=False)
    short = render_video(faststart_clip, tmp_path / "start.mp4", invert, detector=no_faces, progress=False,
                         max_frames=10)
    assert (report.frames, report.expected, report.cut_off) == (72, 72, False)
    assert (short.frames, short.expected, short.cut_off) == (10, 10, False)
    assert not [w for w in recwarn if "cut off" in str(w.message)]


@pytest.fixture
def small_clip(tmp_path):
    return write_clip(tmp_path / "small.mp4", gradients(6), fps=10, tone_hz=300)


@pytest.mark.parametrize("option,value,match", [
    ("size", 0, "size"), ("size", -5, "size"),
    ("max_frames", 0, "max_frames"), ("max_frames", -1, "max_frames"),
    ("max_seconds", -1, "max_seconds"), ("max_seconds", 0, "max_seconds"), ("max_seconds", float("nan"), "max_seconds"),
    ("batch_size", 0, "batch_size"), ("batch_size", 2.5, "batch_size"),
    ("crf", 99, "crf"), ("target", "biggest", "target"), ("target", (10, 10, 5, 5), "target"),
    ("min_cutoff", 0, "min_cutoff"), ("beta", -1, "beta"), ("erode", 0.7, "erode"), ("feather", -0.1, "feather"),
    ("detect_max_side", 0, "detect_max_side"), ("label_text", "", "label_text"), ("mask", "square", "mask"),
])
def test_bad_arguments_fail_at_once_with_one_clear_error(tmp_path, small_clip, option, value, match):
    calls = []

    def detector(images):
        calls.append(len(images))
        return no_faces(images)

    dst = tmp_path / "renders" / "out.mp4"
    with pytest.raises(ValueError, match=match):
        render_video(small_clip, dst, invert, detector=detector, progress=False, **{option: value})
    assert calls == [] and not dst.parent.exists()  # no work done, nothing written


def test_a_render_with_no_frame_in_range_writes_no_empty_mp4(tmp_path):
    late = write_clip(tmp_path / "late.mkv", gradients(3), times=[0.5, 0.6, 0.7])  # the picture starts at 0.5 s
    with pytest.raises(VideoError, match="max_seconds=0.2"):
        render_video(late, tmp_path / "out.mp4", invert, detector=no_faces, progress=False, max_seconds=0.2)
    assert files_in(tmp_path) == ["late.mkv"]


def test_a_folder_as_preview_fails_before_rendering(tmp_path, small_clip):
    (tmp_path / "gifs").mkdir()
    with pytest.raises(ValueError, match="preview is a folder"):
        render_video(small_clip, tmp_path / "out.mp4", invert, detector=no_faces, progress=False, preview=tmp_path / "gifs")
    assert not (tmp_path / "out.mp4").exists()


def test_a_face_function_that_is_not_callable_is_named(tmp_path, small_clip):
    with pytest.raises(TypeError, match="face_fn"):
        render_video(small_clip, tmp_path / "out.mp4", "swap", detector=no_faces, progress=False)


def test_a_folder_as_dst_fails_before_rendering_and_leaves_nothing(tmp_path, small_clip):
    folder = tmp_path / "renders"
    folder.mkdir()
    calls = []
    with pytest.raises(ValueError, match="is a folder"):
        render_video(small_clip, folder, invert, detector=lambda ims: calls.append(1) or no_faces(ims), progress=False)
    assert calls == [] and list(folder.iterdir()) == []


def test_the_source_itself_is_refused_as_dst(small_clip):
    before = small_clip.read_bytes()
    with pytest.raises(ValueError, match="source video itself"):
        render_video(small_clip, small_clip, invert, detector=no_faces, progress=False)
    assert small_clip.read_bytes() == before


def files_in(folder):
    return sorted(p.name for p in folder.rglob("*"))


def test_a_failure_mid_render_leaves_no_temp_file_and_keeps_the_old_dst(tmp_path, small_clip):
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"the render from yesterday")
    seen = []

    def detector(images):  # the first batch (3 frames) is written, the second one crashes
        seen.extend(images)
        if len(seen) <= 3:
            return no_faces(images)
        raise RuntimeError("the detector crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        render_video(small_clip, dst, invert, detector=detector, batch_size=3, progress=False)
    assert len(seen) == 4  # it did fail mid-render, after writing frames
    assert files_in(tmp_path) == ["out.mp4", "small.mp4"]
    assert dst.read_bytes() == b"the render from yesterday"


def test_a_failure_while_finishing_the_file_leaves_no_temp_file(tmp_path, small_clip, monkeypatch):
    def full_disk(a, b):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(video_write.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        render_video(small_clip, tmp_path / "out.mp4", invert, detector=no_faces, progress=False)
    assert files_in(tmp_path) == ["small.mp4"]


def test_interrupting_while_finishing_the_file_leaves_no_temp_file(tmp_path, small_clip, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(video_write._AudioCarry, "close", interrupted)
    with pytest.raises(KeyboardInterrupt):
        render_video(small_clip, tmp_path / "out.mp4", invert, detector=no_faces, progress=False)
    assert files_in(tmp_path) == ["small.mp4"]


def test_track_faces_shows_progress_and_checks_its_arguments(tmp_path, small_clip, capsys):
    times, raw, smooth = track_faces(small_clip, no_faces, batch_size=4)
    assert len(times) == 6 and np.isnan(raw).all()
    err = capsys.readouterr().err
    assert "track faces in small.mp4" in err and "6/6" in err
    for bad in ({"batch_size": 0}, {"max_frames": 0}, {"target": "middle"}, {"beta": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            track_faces(small_clip, no_faces, **bad)
