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

from .storage import remove


class VideoError(ValueError):
    """The file is missing, empty or not a video; the message names the file."""


def check_count(name: str, value, allow_none: bool = False) -> None:
    """A whole number >= 1 (or None where that means "all"); else a ValueError that says what to pass."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        extra = " or None for all" if allow_none else ""
        raise ValueError(f"{name} must be a whole number >= 1{extra}; got {value!r}")


def check_number(name: str, value, low: float = 0.0, strict: bool = True, allow_none: bool = False) -> None:
    """A finite number above `low` (or at least `low` when strict=False); else a ValueError that says so."""
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and np.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        bound = f"> {low:g}" if strict else f">= {low:g}"
        extra = " (or None)" if allow_none else ""
        raise ValueError(f"{name} must be a finite number {bound}{extra}; got {value!r}")


def check_crf(crf) -> None:
    """H.264 quality: 0 (lossless) to 51 (worst)."""
    if isinstance(crf, bool) or not isinstance(crf, (int, np.integer)) or not 0 <= crf <= 51:
        raise ValueError(f"crf must be a whole number from 0 (lossless) to 51 (worst); 18 looks like the source. Got {crf!r}")


def check_output_path(path: str | os.PathLike, what: str = "dst") -> Path:
    """An output file name we can write: not a folder, and its folder is not a file. Checked before any work."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} is a folder: {path}. Give a file name inside it, e.g. {path / 'out.mp4'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{what} cannot be written: {parent} is a file, not a folder")
            break
    return path


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
        raise VideoError(f"Not a readable video: {path} ({exc}). If it is one, the copy may be incomplete "
                         "(an interrupted upload or download): copy it again.") from exc
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

    check_count("every", every)
    check_count("max_frames", max_frames, allow_none=True)
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


def _decoded(container, stream):
    """The decoded frames from the current position on (a seam the tests use to count decoding work)."""
    return container.decode(stream)


def frames_at(path: str | os.PathLike, times=None, *, indices=None) -> list[Frame]:
    """The frames shown at `times` (seconds) or at frame `indices`, found by seeking.

    Only the frames from the key frame before each wanted one are decoded, and
    only the wanted ones are kept, so showing three frames of an hour of 1080p
    needs the memory of three frames, not of the whole video (tens of GB).
    Indices are turned into times with the average frame rate, which is exact
    for constant-rate video; a returned frame's `index` is estimated the same
    way. A time past the end gives the last frame.
    """
    import av

    if (times is None) == (indices is None):
        raise ValueError("pass either times (seconds) or indices (frame numbers), e.g. frames_at(path, [0.0, 1.5])")
    wanted = list(np.atleast_1d(indices if indices is not None else times))
    for value in wanted:
        if indices is not None:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"frame indices must be whole numbers >= 0; got {value!r}")
        else:
            check_number("a frame time (seconds)", value, 0.0, strict=False)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        tb = stream.time_base
        start = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
        if indices is not None:  # frame i starts at i / fps: take the frame showing half a frame later
            targets = [start + (int(i) + 0.5) / fps for i in wanted]
        else:
            targets = [start + float(t) + 1e-6 for t in wanted]
        found = {}
        for target in sorted(set(targets)):
            found[target] = _frame_before(container, stream, target, path)
        frames = []
        for target in targets:
            frame = found[target]
            time = float(frame.time or 0.0)
            image = upright(frame.to_ndarray(format="rgb24"), int(getattr(frame, "rotation", 0) or 0))
            ftb = frame.time_base or tb
            duration = float(frame.duration * ftb) if frame.duration and ftb else None
            frames.append(Frame(int(round((time - start) * fps)), time, image, duration))
        return frames
    except av.error.FFmpegError as exc:
        raise VideoError(f"Cannot seek or decode in {path} ({exc})") from exc
    finally:
        container.close()


def _frame_before(container, stream, target: float, path):
    """The last frame that starts at or before `target` seconds: seek to the key frame before, decode forward."""
    for seek_to in (target, 0.0):  # a file whose index points past the target: start from the beginning
        container.seek(max(0, int(seek_to / stream.time_base)) if stream.time_base else 0, stream=stream,
                       backward=True, any_frame=False)
        previous = None
        for frame in _decoded(container, stream):
            if frame.time is not None and frame.time > target:
                if seek_to == 0.0 and previous is None:
                    return frame  # the video starts after `target`: its first frame is what is shown
                break
            previous = frame
        if previous is not None:
            return previous
    raise VideoError(f"No decodable frames in {path}")


# --- writing -----------------------------------------------------------------------------------

ALTERED_TAG = "altered by AI: polyjuice"
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
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
            self.next_sample = None  # pts of the next chunk, in samples
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
        rate = self.out_stream.codec_context.sample_rate
        for f in self.resampler.resample(frame):
            if self.next_sample is None:  # the sound may start a little after the picture: keep that offset
                self.next_sample = max(0, int(round(f.pts * f.time_base * rate))) if f.pts is not None and f.time_base else 0
            # WebM/MKV store times in milliseconds, so decoded Opus/Vorbis stamps are off by a sample now
            # and then; the fifo refuses such gaps. The samples themselves are contiguous: count them instead.
            f.pts = None
            self.fifo.write(f)
        size = self.out_stream.codec_context.frame_size or 1024
        while self.fifo.samples >= size or (frame is None and self.fifo.samples):
            chunk = self.fifo.read(min(size, self.fifo.samples))
            chunk.pts, chunk.time_base = self.next_sample, Fraction(1, rate)
            self.next_sample += chunk.samples
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

        check_count("width", width)
        check_count("height", height)
        check_number("rate (frames per second)", rate, allow_none=True)
        check_crf(crf)
        if preset not in X264_PRESETS:
            raise ValueError(f"preset must be one of {X264_PRESETS}; got {preset!r}")
        if audio_from is not None and not Path(audio_from).is_file():
            raise VideoError(f"audio_from is not a file: {audio_from}")
        self.path = check_output_path(path, "the video file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.part{self.path.suffix or '.mp4'}")
        self.width, self.height = int(width), int(height)
        self.rate = Fraction(rate).limit_denominator(1001) if rate else Fraction(30)
        self.time_base = time_base
        self.audio = None
        self.container = av.open(str(self.tmp), "w", format="mp4", options={"movflags": "+faststart"})
        try:
            self._setup(metadata, crf, preset, codec, time_base, rotation, audio_from)
        except BaseException:
            self.abort()  # never leave the temporary file behind
            raise
        self.frames = 0
        self.end = 0.0  # time the last frame stops being shown
        self.last_pts = -1
        self.durations = {}  # pts -> duration of frames still inside the encoder

    def _setup(self, metadata, crf, preset, codec, time_base, rotation, audio_from) -> None:
        import av

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
        # a key frame every two seconds, so frames_at() can seek into a long render cheaply
        self.stream.codec_context.gop_size = max(1, int(round(2 * float(self.rate))))
        if self.codec == "libx264":
            self.stream.options = {"crf": str(crf), "preset": preset}
        else:
            self.stream.bit_rate = 8 * self.width * self.height  # ~ generous for MPEG-4 part 2
        if audio_from is not None:
            try:
                with av.open(str(audio_from)) as probe_src:
                    has_audio = bool(probe_src.streams.audio)
            except (av.error.FFmpegError, OSError) as exc:
                raise VideoError(f"Cannot read the sound of {audio_from} ({exc})") from exc
            if has_audio:
                self.audio = _AudioCarry(Path(audio_from), self.container)

    def write(self, image: np.ndarray, time: float | None = None, duration: float | None = None) -> None:
        """Encode one RGB uint8 frame shown at `time` seconds (default: right after the previous one)."""
        import av

        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            what = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"frames must be RGB uint8 arrays (height, width, 3); got a {what}")
        check_number("time", time, -np.inf, allow_none=True)
        check_number("duration", duration, 0.0, strict=False, allow_none=True)
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
        try:
            for packet in self.stream.encode(None):
                self._mux_video(packet)
            if self.audio is not None:
                self.audio.until(float("inf") if audio_end is None else audio_end)
                self.audio.close()
                self.audio = None
            self.container.close()
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()  # a half-written file never appears under the real name, and no temporary file stays
            raise
        return self.path

    def abort(self) -> None:
        """Close without publishing: the temporary file is removed."""
        for close in ((self.audio.input.close,) if self.audio is not None else ()) + (self.container.close,):
            try:
                close()
            except Exception:
                pass
        remove(self.tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


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


def metadata(path: str | os.PathLike) -> dict:
    """The container's metadata tags (where the 'altered by AI' tag lives)."""
    container = _open(path)
    try:
        return dict(container.metadata)
    finally:
        container.close()

