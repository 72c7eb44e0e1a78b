"""What we look at while U-GAT-IT learns: sample grids with CAM heatmaps and timelapse frames."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from ..train import pictures_in
from .data import to_uint8_images


def sample_grid(generate: Callable[[np.ndarray, str], dict], held_a: np.ndarray, held_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(grid, fakes A2B): rows input, CAM, identity, CAM, translation, CAM, cycle; A2B left, B2A right, labelled.

    `generate(images, direction)` is `Trainer.generate`: the current generators' outputs and heatmaps.
    """
    blocks, fakes = [], None
    for direction, held in (("A2B", held_a), ("B2A", held_b)):
        out = generate(held, direction)
        src, dst = direction[0], direction[2]
        rows = [to_uint8_images(out["real"])]
        for key in ("identity", "fake", "cycle"):
            rows.append(cam_overlay(out[key + "_cam"], to_uint8_images(out["real"] if key != "cycle" else out["fake"])))
            rows.append(to_uint8_images(out[key]))
        labels = [src, "CAM", f"{src}2{src}", "CAM", f"{src}2{dst}", "CAM", f"{src}2{dst}2{src}"]
        strips = [np.concatenate(list(r), axis=1) for r in rows]
        blocks.append(np.concatenate([_label_strip(label, strip.shape[0]) for label, strip in zip(labels, strips)], axis=0))
        blocks.append(np.concatenate(strips, axis=0))
        if direction == "A2B":
            fakes = to_uint8_images(out["fake"])
    gap = np.full((blocks[0].shape[0], 8, 3), 255, np.uint8)
    blocks[3] = _fit_width(blocks[3], blocks[1].shape[1])
    return np.concatenate([blocks[0], blocks[1], gap, blocks[2], blocks[3]], axis=1), fakes


def timelapse_frame(real: np.ndarray, fake: np.ndarray, step: int) -> np.ndarray:
    """The same held-out selfies over their translations, labelled with the step: one frame of the timelapse."""
    frame = np.concatenate([np.concatenate(list(real), 1), np.concatenate(list(fake), 1)], 0)
    frame = cv2.resize(frame, None, fx=max(1, 128 // real.shape[1]), fy=max(1, 128 // real.shape[1]), interpolation=cv2.INTER_NEAREST)
    label = np.full((22, frame.shape[1], 3), 255, np.uint8)
    cv2.putText(label, f"step {step:,}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([label, frame], 0)


def _label_strip(text: str, height: int, width: int = 52) -> np.ndarray:
    """A white tile with a short row label, for the left edge of a sample grid."""
    tile = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(tile, text, (3, height // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def _fit_width(img: np.ndarray, width: int) -> np.ndarray:
    if img.shape[1] == width:
        return img
    pad = np.full((img.shape[0], abs(width - img.shape[1]), 3), 255, np.uint8)
    return np.concatenate([img, pad], 1) if img.shape[1] < width else img[:, :width]


def cam_overlay(heatmap: torch.Tensor, images: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """CAM heatmaps (N, 1, h, w), or (N, h, w) as `translate(..., return_cam=True)` gives them, as a jet colour map blended over the images (N, H, W, 3) they explain."""
    heatmap = torch.as_tensor(heatmap)
    heatmap = heatmap[:, None] if heatmap.ndim == 3 else heatmap
    out = []
    for h, img in zip(heatmap.float().cpu().numpy()[:, 0], images):
        h = (h - h.min()) / (h.max() - h.min() + 1e-8)
        h = cv2.resize((h * 255).astype(np.uint8), img.shape[1::-1], interpolation=cv2.INTER_CUBIC)
        color = cv2.cvtColor(cv2.applyColorMap(h, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
        out.append((alpha * color + (1 - alpha) * img).round().astype(np.uint8))
    return np.stack(out)


def latest_sample(run_dir: str | os.PathLike) -> Path | None:
    found = pictures_in(Path(run_dir) / "samples")
    return found[-1] if found else None


def plot_kid(kid_path: str | os.PathLike, untranslated: float | None = None) -> list:
    """Print and plot every KID column of kid.csv (kid_inception or kid_onet_fallback); lower is better. Returns the figures.

    The dashed line is the untranslated selfies' KID (kid.csv's `_untranslated`
    column, or `untranslated`): fakes under it look more like the target than
    the input did."""
    from ..viz import plot_curves, read_log

    kid = read_log(kid_path) if Path(kid_path).exists() else {}
    figures = []
    for column in [c for c in kid if c.startswith("kid_") and not c.endswith(("_std", "_untranslated"))]:
        line = kid[column + "_untranslated"][-1] if column + "_untranslated" in kid else untranslated
        print(f"{column}: " + ", ".join(f"step {int(s)}: {v:.4f}" for s, v in zip(kid["step"], kid[column]))
              + (f" (untranslated selfies: {line:.4f})" if line is not None else ""))
        fig = plot_curves(kid_path, [column], title=f"KID ({column[4:].replace('_', ' ')} features), lower is better")
        if line is not None:
            fig.axes[0].axhline(line, color="grey", linestyle="--", label="untranslated selfies")
            fig.axes[0].legend()
        figures.append(fig)
    return figures


def rho_by_layer(generator: torch.nn.Module) -> dict:
    """The generator's AdaLIN ratios (residual blocks) and LIN ratios (up-sampling), as flat float arrays."""
    def rhos(prefix):
        values = [p.detach().flatten().float().cpu() for n, p in generator.named_parameters() if n.startswith(prefix) and n.endswith("rho")]
        return torch.cat(values).numpy() if values else np.zeros(0, np.float32)

    return {"AdaLIN (residual blocks)": rhos("UpBlock1"), "LIN (up-sampling)": rhos("UpBlock2")}


def plot_rho(generator: torch.nn.Module, step: int):
    """Histogram of rho (1 = instance norm, 0 = layer norm): how much of the source face each layer chose to keep."""
    import matplotlib.pyplot as plt

    groups = rho_by_layer(generator)
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.hist(list(groups.values()), bins=20, range=(0, 1), label=list(groups))
    ax.set_xlabel("rho: 1 = instance norm, 0 = layer norm")
    ax.set_title(f"rho of the generator after {step} steps")
    ax.legend()
    fig.tight_layout()
    return fig
