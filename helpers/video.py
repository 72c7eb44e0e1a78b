"""Read any phone video upright, frame by frame, through PyAV (ffmpeg from PyPI).

Phones store portrait clips as landscape pixels plus a rotation tag (the
display matrix); OpenCV's plain `VideoCapture.read()` ignores it, which is how
the seed got sideways frames. We apply it to every frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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


@dataclass
class Frame:
    index: int
    time: float  # presentation time in seconds (variable frame rate stays in time)
    image: np.ndarray  # RGB uint8, upright


def _open(path: str | os.PathLike):
    import av

    path = Path(path)
    if not path.exists():
        raise VideoError(f"Video file not found: {path}")
    if path.stat().st_size == 0:
        raise VideoError(f"Video file is empty: {path}")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise VideoError(f"Not a readable video: {path} ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise VideoError(f"No video stream in {path}")
    return container


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, multiples of 90)."""
    k = (int(round(rotation / 90)) % 4)
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def probe(path: str | os.PathLike) -> VideoInfo:
    """Size, rate, frame count, duration, rotation and audio of a video, without decoding it all."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rotation = 0
        first = None
        for first in container.decode(stream):
            rotation = int(getattr(first, "rotation", 0) or 0)
            break
        if first is None:
            raise VideoError(f"No decodable frames in {path}")
        w, h = first.width, first.height
        if rotation % 180:
            w, h = h, w
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = 0.0
        count = stream.frames or int(round(duration * fps))
        return VideoInfo(Path(path), w, h, fps, count, duration, rotation, bool(container.streams.audio))
    finally:
        container.close()


def iter_frames(path: str | os.PathLike, every: int = 1, max_frames: int | None = None) -> Iterator[Frame]:
    """Yield every `every`-th frame as an upright RGB array with its index and time."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yielded = 0
        for index, frame in enumerate(container.decode(stream)):
            if index % every:
                continue
            image = upright(frame.to_ndarray(format="rgb24"), int(getattr(frame, "rotation", 0) or 0))
            yield Frame(index, float(frame.time or 0.0), image)
            yielded += 1
            if max_frames is not None and yielded >= max_frames:
                break
    finally:
        container.close()
