"""The sample identities' faces, cropped once for every lesson that needs them.

Lessons 03, 04 and 05 train on faces that lesson 02 crops. When lesson 02
has not run in this workspace (a fresh Colab, QUICK mode), they call
`ensure_sample_faces` and get the same folders lesson 02 would write for
the sample videos.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

SAMPLE_VIDEOS = {"woman": "woman.mp4", "man": "man.mp4", "cartoon": "megamind.avi"}  # identity -> sample video
SAMPLE_FRAMES = 72  # frames searched per identity, at most


def sample_every(frame_count: int, frames: int = SAMPLE_FRAMES) -> int:
    """The frame step that searches at most `frames` frames, spread over the whole video.

    One policy for every identity: each gets about the same number of faces
    (a swap trained on 118 faces of A and 72 of B learns A better), and the
    faces come from the whole clip, so head turns late in a video are seen
    too. 72 is all of the shortest sample (man.mp4) and takes a few seconds
    per identity with MTCNN on a CPU.
    """
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be a whole number >= 1 (frames searched per identity), got {frames!r}.")
    return max(1, math.ceil(max(0, int(frame_count)) / frames))


def ensure_sample_faces(faces_root: str | os.PathLike, names: Sequence[str], samples_dir: str | os.PathLike | None = None,
                        frames: int = SAMPLE_FRAMES, detector="mtcnn", device=None, progress: bool = False) -> dict:
    """Make sure `faces_root/<name>` holds kept faces for each name; crop sample identities that are missing.

    Folders that already hold kept faces are left alone ("present"); the sample
    identities ("woman", "man", "cartoon") are cropped from their sample video
    (256 px, the crop defaults of lesson 02, see sample_every for the frames).
    Any other name ("selfie", "drag") comes from lessons 01 and 02 only: a clear
    FileNotFoundError says so. Returns {name: CropReport or "present"}.
    """
    from ..data import list_faces
    from ..samples import fetch_samples
    from ..video import probe
    from .crop import crop_video

    faces_root = Path(faces_root)
    samples_dir = Path(samples_dir) if samples_dir else faces_root.parent / "samples"
    sample_every(0, frames)  # check `frames` before any work
    done = {}
    for name in names:
        folder = faces_root / name
        if folder.is_dir() and list_faces(folder):
            done[name] = "present"
            continue
        if name not in SAMPLE_VIDEOS:
            raise FileNotFoundError(f"No faces in {folder}: run notebooks 01 and 02 for '{name}' first, "
                                    f"or use the sample identities {sorted(SAMPLE_VIDEOS)}.")
        video = fetch_samples(samples_dir, [SAMPLE_VIDEOS[name]], progress=progress)[SAMPLE_VIDEOS[name]]
        every = sample_every(probe(video).frame_count, frames)
        done[name] = crop_video(video, folder, size=256, every=every, detector=detector, device=device,
                                progress=progress)
    return done
