"""Read any phone video upright, frame by frame, at its own frame times, through PyAV.

Phones store portrait clips as landscape pixels plus a rotation tag (the
display matrix); OpenCV's plain `VideoCapture.read()` ignores it, which is how
the seed got sideways frames. We apply it to every frame. PyAV's
`frame.rotation` is the counter-clockwise angle the player applies (an iPhone
portrait clip reads -90); tests/test_video.py checks that sign against
OpenCV's own auto-orientation and a face detector.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .checks import VideoError, check_count, check_number


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

    def summary(self) -> str:
        """One line a lesson prints: size as displayed, frames, rate, duration, rotation tag and sound."""
        return (f"{self.path.name}: {self.width}x{self.height} as displayed, {self.frame_count} frames, "
                f"{self.fps:.2f} fps on average, {self.duration:.2f} s, rotation tag {self.rotation} degrees, "
                f"sound: {'yes' if self.has_audio else 'no'}")


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


def metadata(path: str | os.PathLike) -> dict:
    """The container's metadata tags (where the 'altered by AI' tag lives)."""
    container = _open(path)
    try:
        return dict(container.metadata)
    finally:
        container.close()
