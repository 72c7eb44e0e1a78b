"""The per-frame pipeline of lesson 05: find the face, steady it, run the model, blend it back, write.

    report = render_video("selfie.mp4", ws.renders / "swapped.mp4",
                          lambda faces: swapper.swap(faces, to="A"))

Frames are handled in small batches so the model sees several faces at once
on the GPU. Every frame is written at its own time with the source's audio;
a frame without the target face is written as it came in (plus the label).
Swapped videos carry a visible "AI-generated" label unless `label=False` is
passed, and always an "altered by AI" metadata tag.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .blend import COLOR_METHODS, MASKS, check_blend_options
from .pipeline import FramePipeline, TargetFace, draw_label, label_box, make_detect_fn  # noqa: F401  (label_box, draw_label: here too)
from .pipeline import run_model as _run_model  # noqa: F401  (tests/test_facemodel.py)
from .smooth import OneEuroFilter, check_target
from .video import (ALTERED_TAG, VideoError, VideoWriter, check_count, check_crf, check_number, check_output_path, iter_frames,
                    probe)

STAGES = ("decode", "detect", "track", "align", "model", "blend", "encode")


@dataclass
class RenderReport:
    src: Path
    dst: Path
    frames: int = 0  # frames written
    swapped: int = 0  # frames where the target face was replaced
    no_face: int = 0  # frames written untouched (no target face found)
    seconds: float = 0.0  # wall clock of the whole render
    timings: dict = field(default_factory=lambda: {s: 0.0 for s in STAGES})  # seconds per stage
    times: list = field(default_factory=list)  # frame times (s)
    raw_boxes: list = field(default_factory=list)  # target box per frame as detected (NaN when none)
    boxes: list = field(default_factory=list)  # the same after smoothing
    preview: Path | None = None
    interrupted: bool = False
    expected: int = 0  # frames the file's header promises for the part asked for
    cut_off: bool = False  # the file ended before that (an interrupted copy or upload)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        split = ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items())
        stop = " (interrupted: kept what was written)" if self.interrupted else ""
        if self.cut_off:
            stop += f" (the file is cut off: {self.frames} of the {self.expected} frames its header promises)"
        return (f"{self.dst.name}: {self.frames} frames, face replaced in {self.swapped}, "
                f"untouched {self.no_face}; {self.seconds:.1f}s = {self.fps:.1f} fps ({split}){stop}")


# --- tracking a face through the video ----------------------------------------------------------

def track_faces(src, detector="mtcnn", device=None, target="largest", batch_size: int = 8, max_side: int | None = 640,
                max_frames: int | None = None, min_cutoff: float = 1.0, beta: float = 1.0, progress: bool = True):
    """Times, raw and smoothed target boxes for every frame of a video (NaN rows where there is no face).

    For seeing what smoothing does (lesson 05's jitter plot) without rendering.
    A minute of video takes minutes on a CPU, so a progress bar shows how far it is.
    """
    check_count("batch_size", batch_size)
    check_count("max_frames", max_frames, allow_none=True)
    check_count("max_side", max_side, allow_none=True)
    info = probe(src)  # a bad file fails here, naming it, before the detector loads
    detect = make_detect_fn(detector, device, max_side)
    follow = TargetFace(target, True, min_cutoff, beta)
    times, raw, smooth = [], [], []
    total = info.frame_count if max_frames is None else min(max_frames, info.frame_count)
    bar = _progress(total, Path(src).name, "track faces in") if progress else None
    try:
        for chunk in _chunks(iter_frames(src, max_frames=max_frames), batch_size):
            for frame, faces in zip(chunk, detect([f.image for f in chunk])):
                face, steady = follow(faces, frame.time, frame.image.shape)
                times.append(frame.time)
                raw.append(face.box if face is not None else np.full(4, np.nan))
                smooth.append(steady.box if steady is not None else np.full(4, np.nan))
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return np.array(times), np.array(raw, np.float64).reshape(-1, 4), np.array(smooth, np.float64).reshape(-1, 4)


def _chunks(iterable, n: int):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _timed(iterator, timings: dict, key: str):
    """Iterate, adding the time spent inside the iterator (decoding) to timings[key]."""
    while True:
        t0 = time.perf_counter()
        try:
            item = next(iterator)
        except StopIteration:
            return
        finally:
            timings[key] += time.perf_counter() - t0
        yield item


# --- the render ------------------------------------------------------------------------------

def render_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    face_fn: Callable[[np.ndarray], np.ndarray],
    *,
    detector="mtcnn",
    device=None,
    align_fn: Callable | None = None,
    size: int = 256,
    batch_size: int = 16,
    target="largest",
    smooth: bool = True,
    min_cutoff: float = 1.0,
    beta: float = 1.0,
    mask: str = "hull",
    color: str | None = "lab",
    seamless: bool = False,
    erode: float = 0.04,
    feather: float = 0.05,
    detect_max_side: int | None = 640,
    detect_every: int = 10,
    label: bool = True,
    label_text: str = "AI-generated",
    side_by_side: bool = False,
    max_seconds: float | None = None,
    max_frames: int | None = None,
    preview: bool | str | os.PathLike = False,
    crf: int = 18,
    progress: bool = True,
) -> RenderReport:
    """Replace the target face in every frame of `src` with face_fn's output and write `dst` (MP4, audio kept).

    face_fn: uint8 (N, size, size, 3) aligned faces -> the same shape (swap or translation).
    detector: 'mtcnn' / 'haar' / 'auto' (helpers.faces), a detector object or a function.
    detect_every: run the detector at least every this many frames and follow the face
        in between (helpers.pipeline); 1 detects on every frame.
    batch_size: frames whose faces go through the model together; 16 makes the classic 64 px swap
        model ~15 % cheaper per face than 8 on a CPU (bench/bench_inference.py).
    target: which face to follow when there are several ('largest', 'center', index or box).
    smooth, min_cutoff, beta: one-euro smoothing of box and landmarks (helpers.smooth).
    mask, color, seamless, erode, feather: how the face is blended back (helpers.blend); color "none" = None.
    label: visible "AI-generated" label; turning it off must be explicit (label=False).
    side_by_side: write original | result next to each other.
    max_seconds / max_frames: render only the start (the audio is cut to match).
    preview: also write a short GIF (True: next to dst; or a path).
    """
    start = time.perf_counter()
    src, dst = Path(src), Path(dst)
    color = None if color == "none" else color  # the notebook's drop-down spells "no colour transfer" as text
    _check_render_args(src, dst, face_fn, size=size, batch_size=batch_size, target=target, min_cutoff=min_cutoff,
                       beta=beta, mask=mask, color=color, erode=erode, feather=feather, detect_max_side=detect_max_side,
                       max_seconds=max_seconds, max_frames=max_frames, crf=crf, label=label, label_text=label_text,
                       preview=preview)
    check_count("detect_every", detect_every)
    info = probe(src)  # a missing, empty or broken file fails here, naming the file, before any work
    if not info.width or not info.height:
        raise ValueError(f"{src} has no picture size")
    pipe = FramePipeline(face_fn, detector, detect_every, device, label=False, size=size, target=target, smooth=smooth,
                         min_cutoff=min_cutoff, beta=beta, mask=mask, color=color, seamless=seamless, erode=erode,
                         feather=feather, detect_max_side=detect_max_side, align_fn=align_fn, fps=info.fps)
    report = RenderReport(src, dst)
    timings = report.timings
    out_w = info.width * (2 if side_by_side else 1)
    total = info.frame_count if max_frames is None else min(max_frames, info.frame_count)
    if max_seconds is not None:
        total = min(total, int(np.ceil(max_seconds * info.fps)))
    report.expected = total
    bar = _progress(total, src.name) if progress else None
    tag = f"{ALTERED_TAG} ({'face replaced' if label else 'face replaced; visible label turned off'})"
    writer = VideoWriter(dst, out_w, info.height, info.fps, audio_from=src if info.has_audio else None,
                         metadata={"comment": tag, "description": tag}, crf=crf)

    def render_chunk(chunk):
        return _render_chunk(pipe, chunk, report)

    def compose(frame, image):
        if side_by_side:
            image = np.hstack([frame.image, image])
        return _label_result(image, label_text, info.width, side_by_side) if label else image

    try:
        try:
            frames = _timed(iter_frames(src, max_frames=max_frames), timings, "decode")
            trimmed = _write_frames(frames, writer, report, render_chunk, compose, batch_size, max_seconds, bar)
            if not trimmed:
                report.cut_off, promised = _ended_early(report.frames, total, writer.end, info, max_seconds, max_frames)
                report.expected = promised if report.cut_off else total
            trimmed = trimmed or report.cut_off or (max_frames is not None and max_frames < info.frame_count)
        except KeyboardInterrupt:
            report.interrupted = trimmed = True
        finally:
            if bar is not None:
                bar.close()
        if report.frames == 0:  # an MP4 without a picture is never published
            if report.interrupted:
                raise KeyboardInterrupt
            limit = f" before max_seconds={max_seconds:g} (its first frame comes later)" if max_seconds else ""
            raise VideoError(f"No frame of {src} to render{limit}; nothing was written")
        t0 = time.perf_counter()
        writer.close(audio_end=writer.end if trimmed else None)
        timings["encode"] += time.perf_counter() - t0
    except BaseException:
        writer.abort()  # no temporary file stays, nothing half-written appears at dst
        raise
    if report.cut_off:
        warnings.warn(f"{src.name} ends after {report.frames} of the {report.expected} frames its header promises "
                      f"({writer.end:.2f} of {info.duration:.2f} s): the file is cut off, probably an interrupted copy "
                      f"or upload. Rendered what is there; copy the whole file again for the rest.", stacklevel=2)
    report.seconds = time.perf_counter() - start
    if preview:
        gif = Path(preview) if not isinstance(preview, bool) else dst.with_suffix(".gif")
        report.preview = make_gif(dst, gif, width=min(out_w, 720 if side_by_side else 400))
    return report


def _write_frames(frames, writer, report, render_chunk, compose, batch_size, max_seconds, bar) -> bool:
    """Render and write batch after batch; True when max_seconds cut the video short."""
    trimmed = False
    for chunk in _chunks(frames, batch_size):
        if max_seconds is not None:
            keep = [f for f in chunk if f.time < max_seconds - 1e-9]
            trimmed = len(keep) < len(chunk)
            chunk = keep
        if not chunk:
            break
        results = render_chunk(chunk)
        t0 = time.perf_counter()
        for frame, image in zip(chunk, results):
            writer.write(compose(frame, image), frame.time, frame.duration)
        report.timings["encode"] += time.perf_counter() - t0
        report.frames += len(chunk)
        if bar is not None:
            bar.update(len(chunk))
        if trimmed:
            break
    return trimmed


def _ended_early(frames: int, expected: int, end: float, info, max_seconds, max_frames) -> tuple[bool, int]:
    """Did the file stop before its header said it would? (cut off, frames it should have had)

    MP4 headers count their frames: fewer frames *and* less time means cut off
    (a phone clip trimmed without re-encoding may decode fewer frames than its
    sample table counts, yet it lasts as long as it says). MKV and WebM count
    nothing, so probe counts the packets that are there; then only the
    duration in the header can tell, and it must be short by a clear margin
    (the header's duration may include a slightly longer sound track).
    """
    span = info.duration if info.duration > 0 else float("inf")
    if max_seconds is not None:
        span = min(span, max_seconds)
    if max_frames is not None:
        span = min(span, max_frames / info.fps)
    if not np.isfinite(span):
        return frames < expected, expected
    promised = max(expected, int(round(span * info.fps)))
    if frames < expected:
        return end < span - 1.5 / info.fps, promised
    return end < span - max(1.0, 3 / info.fps), promised


def _check_render_args(src: Path, dst: Path, face_fn, *, size, batch_size, target, min_cutoff, beta, mask, color,
                       erode, feather, detect_max_side, max_seconds, max_frames, crf, label, label_text, preview) -> None:
    """Every argument checked before any work, each with a message that says what to pass instead."""
    if not callable(face_fn):
        raise TypeError(f"face_fn must be a function: uint8 faces (N, size, size, 3) -> the same; got {type(face_fn).__name__}")
    if mask not in MASKS or color not in COLOR_METHODS:
        raise ValueError(f"mask must be one of {MASKS} and color one of {COLOR_METHODS}; got {mask!r}, {color!r}")
    check_blend_options(size, erode, feather)
    check_count("batch_size", batch_size)
    check_count("max_frames", max_frames, allow_none=True)
    check_number("max_seconds", max_seconds, allow_none=True)
    check_count("detect_max_side", detect_max_side, allow_none=True)
    check_target(target)
    OneEuroFilter(min_cutoff, beta)  # checks both
    check_crf(crf)
    if label and (not isinstance(label_text, str) or not label_text.strip()):
        raise ValueError(f"label_text must be a non-empty string such as 'AI-generated'; got {label_text!r}")
    check_output_path(dst)
    if preview is not None and not isinstance(preview, bool):
        check_output_path(preview, "preview")
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise ValueError(f"dst is the source video itself ({src}); write the render to another file")


def _label_result(image: np.ndarray, text: str, width: int, side_by_side: bool) -> np.ndarray:
    if not side_by_side:
        return draw_label(image, text)
    out = image.copy()
    out[:, width:] = draw_label(image[:, width:], text)
    return out


def _render_chunk(pipe: FramePipeline, chunk, report: RenderReport) -> list[np.ndarray]:
    """The frames of one batch through the pipeline (the model sees their faces at once); notes boxes and times."""
    outs = pipe.process_batch([f.image for f in chunk], [f.time for f in chunk])
    for frame, out in zip(chunk, outs):
        report.times.append(frame.time)
        report.raw_boxes.append(np.asarray(out.found.box, np.float64) if out.found is not None else np.full(4, np.nan))
        report.boxes.append(np.asarray(out.face.box, np.float64) if out.face is not None else np.full(4, np.nan))
        for stage, seconds in out.timings.items():
            if stage in report.timings:
                report.timings[stage] += seconds
    report.swapped += sum(out.face is not None for out in outs)
    report.no_face += sum(out.face is None for out in outs)
    return [out.frame for out in outs]


def _progress(total: int, name: str, verb: str = "render"):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=f"{verb} {name}", unit="frame")


# --- previews ------------------------------------------------------------------------------

def make_gif(video: str | os.PathLike, gif: str | os.PathLike, seconds: float = 3.0, fps: float = 10.0, width: int = 360) -> Path:
    """A small looping GIF of the start of a video, for showing in a notebook."""
    from PIL import Image

    check_number("seconds", seconds)
    check_number("fps", fps)
    check_count("width", width)
    gif = check_output_path(gif, "gif")

    images, next_time = [], 0.0
    for frame in iter_frames(video):
        if frame.time >= seconds:
            break
        if frame.time + 1e-6 < next_time:
            continue
        next_time += 1.0 / fps
        h, w = frame.image.shape[:2]
        small = cv2.resize(frame.image, (width, max(2, int(round(h * width / w)))), interpolation=cv2.INTER_AREA)
        images.append(Image.fromarray(small))
    if not images:
        raise ValueError(f"{video} has no frames to preview")
    gif = Path(gif)
    gif.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(gif, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return gif


def side_by_side(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two frames next to each other (b resized to a's height)."""
    if b.shape[0] != a.shape[0]:
        b = cv2.resize(b, (int(round(b.shape[1] * a.shape[0] / b.shape[0])), a.shape[0]))
    return np.hstack([a, b])
