"""Small test and demo clips: still images as a video, with a phone's rotation tag or a tone if asked."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from .checks import check_number
from .write import pick_video_codec


AUDIO_RATES = {"aac": 44100, "libopus": 48000, "opus": 48000, "vorbis": 44100, "libvorbis": 44100, "mp3": 44100}


def write_clip(
    path: str | os.PathLike,
    images,
    fps: float = 25.0,
    times=None,
    rotation: int = 0,
    tone_hz: float | None = None,
    audio_codec: str = "aac",
    container_format: str | None = None,
    video_codec: str | None = None,
) -> Path:
    """Write still RGB images as a small clip, optionally with a sine tone and a phone's rotation tag.

    `images` are stored as given; `rotation` (degrees counter-clockwise) is
    what a player must apply to show them, like a phone's portrait clip.
    `times` (seconds) gives a variable frame rate. Any encoder of this PyAV
    build works, e.g. video_codec="libvpx-vp9", audio_codec="libopus" and
    container_format="webm" for what a browser records. A key frame every
    second, as phones write. For tests and demos.
    """
    import av

    path = Path(path)
    images = [np.ascontiguousarray(im) for im in images]
    if not images:
        raise ValueError("write_clip needs at least one image")
    if any(im.dtype != np.uint8 or im.ndim != 3 or im.shape != images[0].shape or im.shape[2] != 3 for im in images):
        raise ValueError("write_clip needs RGB uint8 images (height, width, 3), all of the same size")
    check_number("fps", fps)
    times = list(times) if times is not None else [i / fps for i in range(len(images))]
    if len(times) != len(images) or any(b <= a for a, b in zip(times, times[1:])):
        raise ValueError(f"times must give one increasing time per image ({len(images)} images, {len(times)} times)")
    end = times[-1] + (times[-1] - times[-2] if len(times) > 1 else 1 / fps)
    h, w = images[0].shape[:2]
    tb = Fraction(1, 90000)
    if video_codec is None:
        video_codec = "libx264" if "libx264" in av.codecs_available else pick_video_codec()
    with av.open(str(path), "w", format=container_format) as out:
        video = out.add_stream(video_codec, rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.codec_context.time_base = tb
        video.codec_context.max_b_frames = 0  # exact durations in MP4 (see VideoWriter)
        video.codec_context.gop_size = max(1, int(round(fps)))
        if rotation:
            video.set_display_rotation(rotation)
        audio = None
        if tone_hz:
            rate = AUDIO_RATES.get(audio_codec, 16000)
            audio = out.add_stream(audio_codec, rate=rate)
            audio.layout = "stereo" if audio.codec_context.name == "vorbis" else "mono"  # ffmpeg's Vorbis: stereo only
            audio.format = av.codec.Codec(audio_codec, "w").audio_formats[0].name
            if audio.codec_context.name == "vorbis":
                audio.codec_context.options = {"strict": "experimental"}  # ffmpeg's own Vorbis encoder
            audio.codec_context.open()  # now it knows the frame size it insists on (Opus: 20 ms)
        for image, t, t_next in zip(images, times, times[1:] + [end]):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = int(round(t / tb)), tb
            frame.duration = int(round((t_next - t) / tb))
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None:
            _write_tone(out, audio, tone_hz, rate, int(round(end * rate)))
    return path


def _write_tone(out, audio, tone_hz: float, rate: int, n: int) -> None:
    """`n` samples of a sine tone, in the frame size and sample format the encoder wants."""
    import av

    wave = (0.3 * np.sin(2 * np.pi * tone_hz * np.arange(n) / rate)).astype(np.float32)
    to_codec = av.AudioResampler(format=audio.format.name, layout=audio.layout.name, rate=rate)
    step = audio.codec_context.frame_size or 1024
    for s in range(0, n, step):
        chunk = av.AudioFrame.from_ndarray(wave[None, s:s + step], format="fltp", layout="mono")
        chunk.sample_rate = rate
        for frame in to_codec.resample(chunk):
            frame.pts, frame.time_base = s, Fraction(1, rate)
            for packet in audio.encode(frame):
                out.mux(packet)
    for packet in audio.encode(None):
        out.mux(packet)
