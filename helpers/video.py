"""Read any phone video upright, frame by frame, and write one back with its sound, through PyAV.

Phones store portrait clips as landscape pixels plus a rotation tag (the
display matrix); OpenCV's plain `VideoCapture.read()` ignores it, which is how
the seed got sideways frames. We apply it to every frame. PyAV's
`frame.rotation` is the counter-clockwise angle the player applies (an iPhone
portrait clip reads -90); tests/test_video.py checks that sign against
OpenCV's own auto-orientation and a face detector.

Writing keeps what the seed lost when it stitched frames in QuickTime: every
frame at its own time (variable frame rate stays in time), the original audio
(copied, or re-encoded to AAC when MP4 cannot hold it), and a metadata tag
saying the video was altered.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np


class VideoError(ValueError):
    """The file is missing, empty or not a video; the message names the file."""


@dataclass
class VideoInfo:
    path: Path
    width: int  # as displayed, after rotation
    height: int
    fps: float  # average frame rate
    frame_count: int
    duration: float  # seconds
    rotation: int  # degrees counter-clockwise that the player applies
    has_audio: bool
    audio_duration: float | None = None  # seconds, None without audio


@dataclass
class Frame:
    index: int
    time: float  # presentation time in seconds (variable frame rate stays in time)
    image: np.ndarray  # RGB uint8, upright
    duration: float | None = None  # how long the frame is shown, seconds (None if the file does not say)


def _open(path: str | os.PathLike):
    import av

    path = Path(path)
    if not path.exists():
        raise VideoError(f"Video file not found: {path}")
    if path.is_file() and path.stat().st_size == 0:
        raise VideoError(f"Video file is empty: {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise VideoError(f"Not a readable video: {path} ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise VideoError(f"No video stream in {path}")
    return container


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, multiples of 90)."""
    k = (int(round(rotation / 90)) % 4)
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def _stream_seconds(stream, container) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return 0.0


def _count_packets(path) -> int:
    """Frame count for containers that do not store it (MKV, WebM): count packets, no decoding."""
    container = _open(path)
    try:
        return sum(1 for p in container.demux(video=0) if p.size)
    finally:
        container.close()


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, rate, frame count, duration, rotation and audio of a video, without decoding it all."""
    import av

    container = _open(path)
    try:
        stream = container.streams.video[0]
        rotation = 0
        first = None
        try:
            for first in container.decode(stream):
                rotation = int(getattr(first, "rotation", 0) or 0)
                break
        except av.error.FFmpegError as exc:
            raise VideoError(f"Cannot decode the video in {path} ({exc})") from exc
        if first is None:
            raise VideoError(f"No decodable frames in {path}")
        w, h = first.width, first.height
        if rotation % 180:
            w, h = h, w
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        duration = _stream_seconds(stream, container)
        count = stream.frames or _count_packets(path)
        audio = container.streams.audio
        audio_duration = _stream_seconds(audio[0], container) if audio else None
        return VideoInfo(Path(path), w, h, fps, count, duration, rotation, bool(audio), audio_duration)
    finally:
        container.close()


def iter_frames(path: str | os.PathLike, every: int = 1, max_frames: int | None = None) -> Iterator[Frame]:
    """Yield every `every`-th frame as an upright RGB array with its index, time and duration."""
    import av

    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yielded = 0
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index % every:
                    continue
                image = upright(frame.to_ndarray(format="rgb24"), int(getattr(frame, "rotation", 0) or 0))
                tb = frame.time_base or stream.time_base
                duration = float(frame.duration * tb) if frame.duration and tb else None
                yield Frame(index, float(frame.time or 0.0), image, duration)
                yielded += 1
                if max_frames is not None and yielded >= max_frames:
                    break
        except av.error.FFmpegError as exc:
            raise VideoError(f"Cannot decode frame {yielded} of {path} ({exc})") from exc
    finally:
        container.close()


# --- writing -----------------------------------------------------------------------------------

ALTERED_TAG = "altered by AI: polyjuice"
VIDEO_CODECS = ("libx264", "h264", "libopenh264", "mpeg4")  # first one PyAV can encode wins
MP4_AUDIO = {"aac", "mp3", "mp3float", "alac", "ac3", "eac3"}  # copied as they are; others become AAC


def pick_video_codec(preferred: str | None = None) -> str:
    """The first H.264 encoder PyAV's ffmpeg has (its wheels ship libx264), else MPEG-4 with a warning."""
    import av

    for name in ([preferred] if preferred else []) + list(VIDEO_CODECS):
        try:
            av.codec.Codec(name, "w")
        except Exception:
            continue
        wanted = preferred or VIDEO_CODECS[0]
        if name != wanted:
            print(f"Note: the video encoder {wanted} is not in this PyAV build; writing with {name} instead.",
                  file=sys.stderr)
        return name
    raise VideoError("This PyAV build has no video encoder for MP4 (tried " + ", ".join(VIDEO_CODECS) + ")")


class _AudioCarry:
    """Moves the audio of `src` into the output as the video advances, so the file stays interleaved.

    MP4-friendly codecs are copied packet by packet (no quality loss); anything
    else is decoded and re-encoded to AAC. Packets after `end` seconds are
    dropped, so a render of the first two seconds keeps two seconds of sound.
    """

    def __init__(self, src: Path, out):
        import av

        self.input = av.open(str(src))
        self.in_stream = self.input.streams.audio[0]
        self.copy = self.in_stream.codec_context.name in MP4_AUDIO
        if self.copy:
            self.out_stream = out.add_stream_from_template(self.in_stream)
        else:
            rate = self.in_stream.codec_context.sample_rate or 44100
            self.out_stream = out.add_stream("aac", rate=rate)
            layout = self.in_stream.codec_context.layout
            self.out_stream.layout = "mono" if layout is not None and layout.nb_channels == 1 else "stereo"
            self.out_stream.format = "fltp"
            self.resampler = av.AudioResampler(format="fltp", layout=self.out_stream.layout, rate=rate)
            self.fifo = av.AudioFifo()
        self.out = out
        self.packets = self.input.demux(self.in_stream)
        self.pending = None  # a packet read ahead of the video
        self.done = False

    def _next_packet(self):
        if self.pending is not None:
            packet, self.pending = self.pending, None
            return packet
        for packet in self.packets:
            if packet.dts is not None:
                return packet
        self.done = True
        return None

    def until(self, seconds: float) -> None:
        """Write the audio that starts before `seconds`."""
        while not self.done:
            packet = self._next_packet()
            if packet is None:
                break
            start = float((packet.pts if packet.pts is not None else packet.dts) * packet.time_base)
            if start >= seconds:
                self.pending = packet
                break
            if self.copy:
                packet.stream = self.out_stream
                self.out.mux(packet)
            else:
                for frame in packet.decode():
                    self._encode(frame)

    def _encode(self, frame) -> None:
        frames = self.resampler.resample(frame) if frame is not None else self.resampler.resample(None)
        for f in frames:
            self.fifo.write(f)
        size = self.out_stream.codec_context.frame_size or 1024
        while self.fifo.samples >= size or (frame is None and self.fifo.samples):
            chunk = self.fifo.read(min(size, self.fifo.samples))
            for packet in self.out_stream.encode(chunk):
                self.out.mux(packet)

    def close(self) -> None:
        if not self.copy:
            self._encode(None)
            for packet in self.out_stream.encode(None):
                self.out.mux(packet)
        self.input.close()


class VideoWriter:
    """Write RGB frames as an H.264 MP4 at the times you give, with another file's audio.

        with VideoWriter("out.mp4", 640, 360, audio_from="in.mp4") as w:
            for f in iter_frames("in.mp4"):
                w.write(f.image, f.time, f.duration)

    The file appears under its name only once it is complete (written to a
    temporary name first), so an interrupted render never leaves a broken
    MP4 that looks finished.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        rate: float = 30.0,
        audio_from: str | os.PathLike | None = None,
        metadata: dict | None = None,
        crf: int = 18,
        preset: str = "veryfast",
        codec: str | None = None,
        time_base: Fraction = Fraction(1, 90000),
        rotation: int = 0,
    ):
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.part{self.path.suffix or '.mp4'}")
        self.width, self.height = int(width), int(height)
        self.rate = Fraction(rate).limit_denominator(1001) if rate else Fraction(30)
        self.time_base = time_base
        self.container = av.open(str(self.tmp), "w", format="mp4", options={"movflags": "+faststart"})
        for key, value in (metadata or {}).items():
            self.container.metadata[key] = str(value)
        self.codec = pick_video_codec(codec)
        if self.codec == "mpeg4" and time_base.denominator > 65535:
            self.time_base = time_base = Fraction(1, 30000)  # MPEG-4 part 2 allows no finer clock
        self.stream = self.container.add_stream(self.codec, rate=self.rate)
        # H.264 in yuv420p needs even sizes; an odd edge is padded by one pixel
        self.stream.width, self.stream.height = self.width + self.width % 2, self.height + self.height % 2
        self.stream.pix_fmt = "yuv420p"
        if rotation:  # store a display matrix, as phones do (for making test clips)
            self.stream.set_display_rotation(rotation)
        self.stream.codec_context.time_base = time_base
        self.stream.time_base = time_base
        # no B-frames: decode order = display order, so MP4 needs no edit list and
        # keeps exact durations even with a variable frame rate
        self.stream.codec_context.max_b_frames = 0
        if self.codec == "libx264":
            self.stream.options = {"crf": str(crf), "preset": preset}
        else:
            self.stream.bit_rate = 8 * self.width * self.height  # ~ generous for MPEG-4 part 2
        self.audio = None
        if audio_from is not None:
            with av.open(str(audio_from)) as probe_src:
                has_audio = bool(probe_src.streams.audio)
            if has_audio:
                self.audio = _AudioCarry(Path(audio_from), self.container)
        self.frames = 0
        self.end = 0.0  # time the last frame stops being shown
        self.last_pts = -1
        self.durations = {}  # pts -> duration of frames still inside the encoder

    def write(self, image: np.ndarray, time: float | None = None, duration: float | None = None) -> None:
        """Encode one RGB uint8 frame shown at `time` seconds (default: right after the previous one)."""
        import av

        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame is {image.shape[1]}x{image.shape[0]}, writer expects {self.width}x{self.height}")
        if time is None:
            time = self.end
        duration = duration if duration else 1 / float(self.rate)
        if (self.stream.width, self.stream.height) != (self.width, self.height):
            image = np.pad(image, ((0, self.stream.height - self.height), (0, self.stream.width - self.width), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        pts = int(round(time / self.time_base))
        pts = max(pts, self.last_pts + 1)  # timestamps must increase, even after rounding
        frame.pts, frame.time_base = pts, self.time_base
        frame.duration = max(1, int(round(duration / self.time_base)))
        self.durations[pts] = frame.duration
        self.last_pts = pts
        if self.audio is not None:
            self.audio.until(time)  # interleave: the sound that belongs before this frame
        for packet in self.stream.encode(frame):
            self._mux_video(packet)
        self.frames += 1
        self.end = float(pts * self.time_base) + duration

    def _mux_video(self, packet) -> None:
        # encoders stamp every packet with 1/rate; put back each frame's own duration,
        # or the last frame of a variable-rate clip would last the wrong time
        duration = self.durations.pop(packet.pts, None)
        if duration is not None and packet.time_base == self.time_base:
            packet.duration = duration
        self.container.mux(packet)

    def close(self, audio_end: float | None = None) -> Path:
        """Flush the encoder, add the rest of the audio (up to `audio_end` seconds if given), publish the file.

        Pass `audio_end=writer.end` when you wrote only the start of a video,
        so the sound stops with the picture.
        """
        for packet in self.stream.encode(None):
            self._mux_video(packet)
        if self.audio is not None:
            self.audio.until(float("inf") if audio_end is None else audio_end)
            self.audio.close()
        self.container.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Close without publishing: the temporary file is removed."""
        try:
            if self.audio is not None:
                self.audio.input.close()
            self.container.close()
        except Exception:
            pass
        self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_clip(
    path: str | os.PathLike,
    images,
    fps: float = 25.0,
    times=None,
    rotation: int = 0,
    tone_hz: float | None = None,
    audio_codec: str = "aac",
    container_format: str | None = None,
) -> Path:
    """Write still RGB images as a small clip, optionally with a sine tone and a phone's rotation tag.

    `images` are stored as given; `rotation` (degrees counter-clockwise) is
    what a player must apply to show them, like a phone's portrait clip.
    `times` (seconds) gives a variable frame rate. For tests and demos.
    """
    import av

    path = Path(path)
    images = [np.ascontiguousarray(im) for im in images]
    times = list(times) if times is not None else [i / fps for i in range(len(images))]
    end = times[-1] + (times[-1] - times[-2] if len(times) > 1 else 1 / fps)
    h, w = images[0].shape[:2]
    tb = Fraction(1, 90000)
    with av.open(str(path), "w", format=container_format) as out:
        video = out.add_stream("libx264" if "libx264" in av.codecs_available else pick_video_codec(), rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.codec_context.time_base = tb
        video.codec_context.max_b_frames = 0  # exact durations in MP4 (see VideoWriter)
        if rotation:
            video.set_display_rotation(rotation)
        audio = None
        if tone_hz:
            rate = 44100 if audio_codec == "aac" else 16000
            audio = out.add_stream(audio_codec, rate=rate)
            audio.layout = "mono"
            audio.format = "fltp" if audio_codec == "aac" else "s16"
        for image, t, t_next in zip(images, times, times[1:] + [end]):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = int(round(t / tb)), tb
            frame.duration = int(round((t_next - t) / tb))
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None:
            n = int(round(end * rate))
            wave = 0.3 * np.sin(2 * np.pi * tone_hz * np.arange(n) / rate)
            step = 1024
            for s in range(0, n, step):
                chunk = wave[s:s + step][None]
                data = chunk.astype(np.float32) if audio.format.name == "fltp" else (chunk * 32767).astype(np.int16)
                af = av.AudioFrame.from_ndarray(data, format=audio.format.name, layout="mono")
                af.sample_rate, af.pts, af.time_base = rate, s, Fraction(1, rate)
                for packet in audio.encode(af):
                    out.mux(packet)
            for packet in audio.encode(None):
                out.mux(packet)
    return path


def metadata(path: str | os.PathLike) -> dict:
    """The container's metadata tags (where the 'altered by AI' tag lives)."""
    container = _open(path)
    try:
        return dict(container.metadata)
    finally:
        container.close()


def render_video(src, dst, face_fn, **options):
    """Swap or translate the face in every frame of `src` into `dst`; see helpers.render.render_video."""
    from .render import render_video as _render

    return _render(src, dst, face_fn, **options)
