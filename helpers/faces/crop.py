"""Cropping: detection -> filters -> aligned PNGs + faces.csv, for a video or a folder of photos.

    report = crop_video("woman.mp4", ws.faces / "woman", every=4)
    report = crop_folder(ws.raw / "selfie", ws.faces / "selfie", CropConfig(dedupe=4))

Each filter's rejection is a row of faces.csv with its reason; running a crop
again skips the sources already in the file.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from ..phash import hamming, phash  # one perceptual hash for the scraper and the cropper
from .align import DEFAULT_MARGIN, align_face, outside_fraction
from .detect import DETECTOR_NAMES, Detector, Face, detector_name, make_detector
from .images import ImageError, blur_score, image_files, load_image
from .index import INDEX, append_index, read_index

MULTI_POLICIES = ("largest", "all", "reject")


def _check_whole(name: str, value, low: int, meaning: str, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low} ({meaning}){' or None' if none_ok else ''}, got {value!r}.")


def _check_number(name: str, value, low: float, high: float, meaning: str, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and low <= float(value) <= high
    if not ok:
        span = f">= {low}" if high == math.inf else f"between {low} and {high}"
        raise ValueError(f"{name} must be a number {span} ({meaning}){' or None' if none_ok else ''}, got {value!r}.")


DEDUPE_AUTO = "auto"  # near-duplicates: 4 bits for photo folders, off for videos (see CropConfig.dedupe_for)
COUNT_MEANINGS = {"every": "1 = every frame, 2 = every other frame", "batch": "frames per detector call",
                  "max_frames": "frames to search at most", "limit": "photos to look at, at most"}


@dataclass
class CropConfig:
    """How faces are framed and which are kept: one object for crop_video and crop_folder (DESIGN.md: one per step).

    size, margin: side of the saved square in pixels and the room around the
    face (0 tight, 0.2 some hair, 0.5 the whole head). detector: a name
    ("mtcnn", "haar", "auto") or a Detector. Filters, each rejection a row of
    faces.csv with its reason: min_score (None: the detector's own
    threshold), min_face (box side in px), blur (least variance of the
    Laplacian; None keeps blurry faces), multi (several faces: keep the
    "largest", "all", or "reject" the picture), dedupe (near-duplicates of a
    kept face within this many bits of the 64-bit perceptual hash; None keeps
    them; "auto" is 4 for photos and None for videos, whose successive frames
    are near-duplicates by nature: thin those with `every`). refine: find the
    landmarks again on the upright crop, for a steadier alignment.
    Bad values fail here, before any file is written.
    """

    size: int = 256
    margin: float = DEFAULT_MARGIN
    detector: str | Detector = "mtcnn"
    min_face: float = 64
    blur: float | None = 20.0
    multi: str = "largest"
    dedupe: int | None | str = DEDUPE_AUTO
    min_score: float | None = None
    refine: bool = True

    def __post_init__(self):
        _check_whole("size", self.size, 8, "side of the square crops in pixels, e.g. 256")
        _check_number("margin", self.margin, 0, 2, "room around the face: 0 tight, 0.2 some hair, 0.5 the whole head")
        if not isinstance(self.detector, Detector) and self.detector not in DETECTOR_NAMES:
            raise ValueError(f"Unknown detector {self.detector!r}; choose from {list(DETECTOR_NAMES)} or pass a Detector.")
        _check_number("min_face", self.min_face, 0, math.inf, "smallest face box kept, in pixels; 0 keeps all")
        _check_number("blur", self.blur, 0, math.inf, "least sharpness kept; None or 0 keeps blurry faces too", none_ok=True)
        if self.multi not in MULTI_POLICIES:
            raise ValueError(f"multi must be one of {MULTI_POLICIES}, got {self.multi!r}.")
        if self.dedupe != DEDUPE_AUTO:
            _check_whole("dedupe", self.dedupe, 0, "near-duplicate threshold in bits of the 64-bit hash, e.g. 4, "
                         f"or {DEDUPE_AUTO!r}", none_ok=True)
        _check_number("min_score", self.min_score, -math.inf, math.inf, "least detector score kept", none_ok=True)

    def dedupe_for(self, kind: str) -> int | None:
        """The near-duplicate threshold for "video" or "photos" ("auto": off for videos, 4 bits for photos)."""
        if self.dedupe != DEDUPE_AUTO:
            return self.dedupe
        return None if kind == "video" else 4

    @classmethod
    def with_overrides(cls, config: "CropConfig | None", caller: str, **overrides) -> "CropConfig":
        """`config` (or the defaults) with keyword arguments on top, checked: what crop_video(..., blur=5) means."""
        if config is not None and not isinstance(config, CropConfig):
            raise TypeError(f"{caller}: the third argument is a CropConfig, got {type(config).__name__}; "
                            "pass settings by name (size=256) or as CropConfig(size=256).")
        unknown = sorted(set(overrides) - set(cls.__dataclass_fields__))
        if unknown:
            raise TypeError(f"{caller} got unknown arguments {unknown}; crop settings are {list(cls.__dataclass_fields__)}.")
        return replace(config or cls(), **overrides)


def _check_counts(**counts) -> None:
    """The whole-number arguments of one crop call (frame step, batch, limits), before any file is written."""
    for name, value in counts.items():
        _check_whole(name, value, 1, COUNT_MEANINGS[name], none_ok=name in ("max_frames", "limit"))


@dataclass
class CropReport:
    """What one crop run did. `skipped` names the unreadable inputs."""

    out_dir: Path
    sources: int = 0  # files or videos looked at in this run
    done_before: int = 0  # sources (or frames) already in faces.csv, not redone
    frames: int = 0  # images or video frames searched
    faces: int = 0  # faces detected
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    skipped: list = field(default_factory=list)  # (name, reason)
    seconds: float = 0.0

    def __str__(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in self.rejected.most_common()) or "none"
        lines = [
            f"{self.out_dir}: searched {self.frames} images/frames from {self.sources} source(s) in {self.seconds:.1f} s",
            f"  faces found {self.faces}, kept {self.kept}, rejected: {reasons}",
        ]
        if self.done_before:
            lines.append(f"  {self.done_before} already done in an earlier run (skipped)")
        if self.skipped:
            names = ", ".join(f"{n} ({r})" for n, r in self.skipped[:5]) + (" ..." if len(self.skipped) > 5 else "")
            lines.append(f"  unreadable, skipped: {len(self.skipped)}: {names}")
        return "\n".join(lines)


def _fmt(values, digits=2) -> str:
    return "" if values is None else json.dumps(np.round(np.asarray(values, np.float64), digits).flatten().tolist())


class _Cropper:
    """Shared state of one crop run: the detector, the filters, and the rows already in faces.csv."""

    def __init__(self, out_dir, config: CropConfig, kind: str, device, report):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.size, self.margin = int(config.size), float(config.margin)
        self.min_face, self.blur, self.multi, self.dedupe = config.min_face, config.blur, config.multi, config.dedupe_for(kind)
        min_score, refine, detector = config.min_score, config.refine, config.detector
        if isinstance(detector, Detector):
            self.detector = detector
        else:  # MTCNN looks for faces a bit smaller than the filter keeps, so small ones are seen and counted;
            # Haar's small windows are its main cost, so it only looks for faces we would keep
            detector = detector_name(detector, _caller_depth=3)  # _Cropper <- crop_video/crop_folder <- caller
            smallest = max(1, int(self.min_face)) if detector == "haar" else max(20, int(self.min_face * 0.6))
            self.detector = make_detector(detector, device=device, min_size=smallest)
        self.min_score = self.detector.min_score if min_score is None else float(min_score)
        self.refine = self.detector if refine else None
        self.report = report
        rows = read_index(self.out_dir)
        self.done = {(r["source"], r["frame"]) for r in rows}
        self.done_sources = {r["source"] for r in rows}
        self.hashes = [(int(r["phash"], 16), r["face"]) for r in rows if r["status"] == "kept" and r.get("phash")]

    def handle(self, image: np.ndarray, faces: list[Face], source: str, frame: int | str = "", t: float | str = "") -> list[dict]:
        """Filter, align and save the faces of one image; return their faces.csv rows."""
        self.report.frames += 1
        self.report.faces += len(faces)
        base = {"source": source, "frame": frame, "time": "" if t == "" else f"{t:.3f}", "detector": self.detector.name}
        if not faces:
            return [self._count(dict(base, face="", status="rejected:no_face"))]
        verdicts = self._first_verdicts(faces)
        stem = Path(source).name.replace(".", "_") + (f"_f{int(frame):06d}" if frame != "" else "")
        rows = []
        for i, (face, verdict) in enumerate(zip(faces, verdicts)):
            refine = self.refine if verdict == "kept" else None  # a second look only for faces we may keep
            aligned = align_face(image, face, self.size, self.margin, self.detector.box_geometry, refine)
            sharpness = blur_score(aligned.image)
            cut = outside_fraction(aligned.matrix, self.size, image.shape)
            digest = phash(aligned.image)
            if verdict == "kept" and self.blur and sharpness < self.blur:
                verdict = "rejected:blurry"
            if verdict == "kept" and self.dedupe is not None:
                twin = next((name for h, name in self.hashes if hamming(h, digest) <= self.dedupe), None)
                if twin is not None:
                    verdict = "rejected:duplicate"
            name = f"{stem}_{i}.png"
            ok, png = cv2.imencode(".png", cv2.cvtColor(aligned.image, cv2.COLOR_RGB2BGR))
            (self.out_dir / name).write_bytes(png.tobytes())
            if verdict == "kept":
                self.hashes.append((digest, name))
            rows.append(self._count(dict(
                base, face=name, index=i, score=f"{face.score:.4f}", size=f"{face.size:.1f}", box=_fmt(face.box, 1),
                landmarks=_fmt(face.landmarks, 1), matrix=_fmt(aligned.matrix, 6), blur=f"{sharpness:.1f}", outside=f"{cut:.2f}",
                phash=f"{digest:016x}", status=verdict)))
        return rows

    def _first_verdicts(self, faces: list[Face]) -> list[str]:
        """Score, size and several-faces decisions (cheap, before aligning)."""
        verdicts = []
        for face in faces:
            if face.score < self.min_score:
                verdicts.append("rejected:low_score")
            elif face.size < self.min_face:
                verdicts.append("rejected:too_small")
            else:
                verdicts.append("kept")
        candidates = [i for i, v in enumerate(verdicts) if v == "kept"]
        if len(candidates) > 1 and self.multi != "all":
            largest = max(candidates, key=lambda i: faces[i].size)
            for i in candidates:
                if self.multi == "reject":
                    verdicts[i] = "rejected:several_faces"
                elif i != largest:
                    verdicts[i] = "rejected:not_largest"
        return verdicts

    def _count(self, row: dict) -> dict:
        if row["status"] == "kept":
            self.report.kept += 1
        else:
            self.report.rejected[row["status"].split(":", 1)[1]] += 1
        return row


def _progress(iterable, total=None, desc="", enabled=True):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


def crop_video(video: str | os.PathLike, out_dir: str | os.PathLike, config: CropConfig | None = None, *,
               every: int = 1, max_frames: int | None = None, batch: int = 8, device=None, progress: bool = True,
               **overrides) -> CropReport:
    """Detect, align and save the faces of every `every`-th frame of a video; return a report.

    `config` says how faces are framed and filtered (CropConfig); keyword
    arguments override its fields (crop_video(v, out, blur=5)). Videos keep
    near-duplicates by default: successive frames are alike by nature, so thin
    them with `every`. Frames already in faces.csv are skipped, so an
    interrupted run continues where it stopped.
    """
    from ..video import iter_frames, probe

    config = CropConfig.with_overrides(config, "crop_video", **overrides)
    _check_counts(every=every, batch=batch, max_frames=max_frames)
    t0 = time.perf_counter()
    report = CropReport(Path(out_dir))
    cropper = _Cropper(out_dir, config, "video", device, report)
    video = Path(video)
    report.sources = 1
    info = probe(video)
    total = math.ceil(info.frame_count / every) if info.frame_count else None
    if max_frames is not None and total is not None:
        total = min(total, max_frames)
    pending = []

    def flush():
        found = cropper.detector.detect_batch([f.image for f in pending])
        rows = []
        for frame, faces in zip(pending, found):
            rows += cropper.handle(frame.image, faces, video.name, frame.index, frame.time)
        append_index(cropper.out_dir, rows)
        pending.clear()

    try:
        for frame in _progress(iter_frames(video, every=every, max_frames=max_frames), total, video.name, progress):
            if (video.name, str(frame.index)) in cropper.done:
                report.done_before += 1
                continue
            pending.append(frame)
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
    except KeyboardInterrupt:
        print(f"Interrupted: what was done so far is in {cropper.out_dir / INDEX}; run again to continue.")
    report.seconds = time.perf_counter() - t0
    return report


def crop_folder(in_dir: str | os.PathLike, out_dir: str | os.PathLike, config: CropConfig | None = None, *,
                limit: int | None = None, device=None, progress: bool = True, **overrides) -> CropReport:
    """Detect, align and save the faces of every photo in a folder; `config` and overrides as in crop_video.

    Photos drop near-duplicates by default (the same picture posted twice).
    Unreadable files (empty, not an image, truncated) are skipped, counted,
    named in the report and recorded as "rejected:unreadable" in faces.csv.
    Photos already in faces.csv are not redone.
    """
    config = CropConfig.with_overrides(config, "crop_folder", **overrides)
    _check_counts(limit=limit)
    t0 = time.perf_counter()
    report = CropReport(Path(out_dir))
    cropper = _Cropper(out_dir, config, "photos", device, report)
    files = image_files(in_dir)[:limit]
    try:
        for path in _progress(files, len(files), Path(in_dir).name, progress):
            if path.name in cropper.done_sources:
                report.done_before += 1
                continue
            report.sources += 1
            try:
                image = load_image(path)
            except ImageError as exc:
                report.skipped.append((path.name, str(exc)))
                append_index(cropper.out_dir, [cropper._count({"face": "", "source": path.name, "frame": "", "status": "rejected:unreadable"})])
                continue
            faces = cropper.detector.detect(image)
            append_index(cropper.out_dir, cropper.handle(image, faces, path.name))
    except KeyboardInterrupt:
        print(f"Interrupted: what was done so far is in {cropper.out_dir / INDEX}; run again to continue.")
    report.seconds = time.perf_counter() - t0
    return report

