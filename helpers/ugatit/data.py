"""The two face domains: sample faces when notebook 02 has not run, held-out faces, and a resumable batch stream."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from ..data import load_faces
from ..faces.sample_faces import SAMPLE_FRAMES, SAMPLE_VIDEOS, ensure_sample_faces  # noqa: F401  (SAMPLE_VIDEOS: helpers.facemodel)
from ..train import split_holdout


def ensure_faces(faces_root: str | os.PathLike, names: Sequence[str], samples_dir: str | os.PathLike | None = None, frames: int = SAMPLE_FRAMES) -> dict:
    """Make the face folders a QUICK run needs from the sample videos when notebook 02 has not run.

    The same cropping as lessons 03 and 05 (`helpers.faces.ensure_sample_faces`);
    "selfie" and "drag" come from notebooks 01 and 02. Returns {name: report or "present"}.
    """
    return ensure_sample_faces(faces_root, names, samples_dir, frames=frames)


def describe_faces(faces_root: str | os.PathLike, reports: dict) -> str:
    """One line per face folder: how many faces it holds, and the crop report when it was cropped just now."""
    from ..data import list_faces

    lines = []
    for name, report in reports.items():
        lines.append(f"{name}: {len(list_faces(Path(faces_root) / name))} faces" + ("" if report == "present" else f" (cropped now)\n{report}"))
    return "\n".join(lines)


def domain_examples(faces_root: str | os.PathLike, domain_a: Sequence[str], domain_b: Sequence[str], per_folder: int = 3, size: int = 128) -> tuple[list, list]:
    """A few faces of each domain to look at: `per_folder` from every folder of A, as many from B's first folder."""
    faces_root = Path(faces_root)
    some_a = [f for name in domain_a for f in load_faces(faces_root / name, size, limit=per_folder)]
    some_b = list(load_faces(faces_root / domain_b[0], size, limit=len(some_a)))
    return some_a, some_b


def load_domain(faces_root: Path, names: Sequence[str], crop_from: int, img_size: int, holdout: float, seed: int):
    """Training faces (uint8 N,3,L,L tensor at the pre-crop size) and held-out faces (uint8 N,S,S,3 at img_size)."""
    faces = np.concatenate([load_faces(faces_root / n, crop_from) for n in names])
    if len(faces) < 2:
        raise ValueError(f"Too few faces in {list(names)} ({len(faces)}): crop more in notebook 02.")
    keep, hold_idx = (t.numpy() for t in split_holdout(len(faces), holdout, seed))
    held = np.stack([cv2.resize(f, (img_size, img_size), interpolation=cv2.INTER_AREA) for f in faces[hold_idx]]) if len(hold_idx) else np.zeros((0, img_size, img_size, 3), np.uint8)
    train = torch.from_numpy(faces[keep]).permute(0, 3, 1, 2).contiguous()
    return train, held


def _mix(*values: int) -> int:
    """A seed for a torch.Generator from a few integers (stable across runs and machines)."""
    h = 0x243F6A8885A308D3
    for v in values:
        h = (h ^ (int(v) & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3 & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


class FaceStream:
    """Batches of one domain: shuffled epochs, random flip, random crop - the official augmentation.

    The batch of step s is a pure function of (seed, stream, s): a resumed run
    draws exactly the batches an uninterrupted one would, with no loader state
    to save. Images stay uint8 (on the device when they fit) until the crop.
    """

    def __init__(self, images: torch.Tensor, img_size: int, batch_size: int, seed: int, stream: int, flip: bool = True, device: torch.device | str = "cpu"):
        self.n, self.size, self.batch_size, self.seed, self.stream, self.flip = len(images), img_size, batch_size, seed, stream, flip
        device = torch.device(device)
        fits = device.type != "cpu" and images.numel() < 2**30
        self.images = images.to(device) if fits else images
        self.device = device
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            g = torch.Generator().manual_seed(_mix(self.seed, self.stream, epoch))
            self._perms[epoch] = torch.randperm(self.n, generator=g)
        return self._perms[epoch]

    def indices(self, step: int) -> list[int]:
        pos = [(step - 1) * self.batch_size + i for i in range(self.batch_size)]
        return [int(self._perm(p // self.n)[p % self.n]) for p in pos]

    def batch(self, step: int, channels_last: bool = False) -> torch.Tensor:
        """Float batch in [-1, 1], (B, 3, img_size, img_size), on the device."""
        g = torch.Generator().manual_seed(_mix(self.seed, self.stream, step, 1))
        side = self.images.shape[-1]
        flips = (torch.rand(self.batch_size, generator=g) < 0.5).tolist()
        offsets = torch.randint(0, side - self.size + 1, (self.batch_size, 2), generator=g).tolist()
        crops = []
        for i, flip, (y, x) in zip(self.indices(step), flips, offsets):
            img = self.images[i]
            if self.flip and flip:
                img = img.flip(-1)
            crops.append(img[:, y:y + self.size, x:x + self.size])
        out = torch.stack(crops).to(self.device, non_blocking=True).float().div_(127.5).sub_(1)
        return out.contiguous(memory_format=torch.channels_last) if channels_last else out


def to_tensor(images: np.ndarray, device) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1] on `device`."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def to_uint8_images(t: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3)."""
    return ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
