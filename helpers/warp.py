"""Random-warp augmentation, batched on the device: the trick that makes the autoencoder swap work.

Without it each decoder sees its own person's faces as input and target and
learns to copy pixels; the swap then returns the input ("nightmare fuel", as the
seed post found). With it the input is a randomly bent face and the target the
straight one, so the decoder must learn what that person's face looks like.

Everything is one `grid_sample` over the whole batch, so a GPU is never waiting
for per-image OpenCV work on the CPU. The few random numbers (a 5x5 jitter per
face plus rotation, zoom, shift and flip) are drawn from a CPU
`torch.Generator`, which makes the augmentation identical on every device and
lets a checkpoint store the generator's state for an exact resume.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

GRID_POINTS = 5  # the 2017 original jittered a 5x5 grid of control points
JITTER = 0.125  # std of a control point's jitter, in grid spacings (5 px on its 40 px grid)


def _uniform(n: int, generator: torch.Generator) -> torch.Tensor:
    """n numbers in [-1, 1) from the CPU generator."""
    return torch.rand(n, generator=generator) * 2 - 1


def random_affine(
    n: int,
    generator: torch.Generator,
    rotate: float = 10.0,
    zoom: float = 0.05,
    shift: float = 0.05,
    flip: bool = True,
) -> torch.Tensor:
    """(n, 2, 3) matrices for `F.affine_grid`: up to `rotate` degrees, 1 +- `zoom` scale,
    +- `shift` of the width, and a mirror half of the time. All zero gives the identity."""
    angle = _uniform(n, generator) * math.radians(rotate)
    scale = 1 + _uniform(n, generator) * zoom
    tx, ty = _uniform(n, generator) * shift * 2, _uniform(n, generator) * shift * 2  # [-1, 1] spans the image: 2 = width
    mirror = torch.rand(n, generator=generator) < 0.5
    sign = torch.where(mirror, -1.0, 1.0) if flip else torch.ones(n)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([
        torch.stack([cos * sign, -sin, tx], dim=1),
        torch.stack([sin * sign, cos, ty], dim=1),
    ], dim=1)
    return theta


def random_warp_points(n: int, generator: torch.Generator, strength: float = 1.0, points: int = GRID_POINTS) -> torch.Tensor:
    """(n, 2, points, points) offsets of a coarse grid of control points, in grid units ([-1, 1] = the frame).

    The border control points stay put, so the frame maps onto itself and the
    face cannot be pushed out of it; only the inside bends.
    """
    spacing = 2.0 / (points - 1)
    coarse = torch.randn(n, 2, points, points, generator=generator) * (strength * JITTER * spacing)
    coarse[:, :, 0, :] = coarse[:, :, -1, :] = coarse[:, :, :, 0] = coarse[:, :, :, -1] = 0
    return coarse


def upsample_field(coarse: torch.Tensor, size: int) -> torch.Tensor:
    """Control-point offsets (n, 2, p, p) -> per-pixel offsets (n, size, size, 2), smooth."""
    field = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)
    return field.permute(0, 2, 3, 1)


def augment(
    images: torch.Tensor,
    generator: torch.Generator,
    warp: float = 1.0,
    rotate: float = 10.0,
    zoom: float = 0.05,
    shift: float = 0.05,
    flip: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(warped input, target) float [0, 1] from uint8 or float NCHW faces on any device.

    The target gets the same rotate/zoom/shift/flip as the input but no warp,
    so the network is asked to undo the bending, not the framing.
    """
    n, _, h, w = images.shape
    if h != w:
        raise ValueError(f"augment expects square faces, got {h}x{w}")
    device = images.device
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    theta = random_affine(n, generator, rotate, zoom, shift, flip)
    coarse = random_warp_points(n, generator, warp)
    theta, coarse = theta.to(device, non_blocking=True), coarse.to(device, non_blocking=True)
    base = F.affine_grid(theta, [n, 3, h, w], align_corners=False)
    # offsets live in the output frame: rotate/scale them like the grid, A(p + d) + t = (A p + t) + A d
    offsets = upsample_field(coarse, h) @ theta[:, :, :2].transpose(1, 2).unsqueeze(1)
    grids = torch.cat([base + offsets, base])  # 'border' padding repeats the edge, like the original's warpAffine
    both = F.grid_sample(torch.cat([x, x]), grids, mode="bilinear", padding_mode="border", align_corners=False)
    return both[:n].clamp(0, 1), both[n:].clamp(0, 1)


def colour_shift(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(n, 3, 1, 1) per-channel shift that moves each source face's mean colour to its reference face's.

    Used on A's faces with B's batch (same shift on A's input and target), so
    decoder A also sees B's lighting and a swapped face comes out in the colours
    of the scene it is pasted into.
    """
    return reference.mean(dim=(2, 3), keepdim=True) - source.mean(dim=(2, 3), keepdim=True)


def match_colour(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Source faces ([0, 1] NCHW) with the mean colour of the reference faces in the same batch slots."""
    return (source + colour_shift(source, reference)).clamp(0, 1)
