"""The swap's pictures: the preview grid of reconstructions and swaps, and the loss plot."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .models.autoencoder import FaceSwapAutoencoder
from .train import autocast

PREVIEW_COLUMNS = ("A", "A->A", "A->B", "B", "B->B", "B->A")


def _strip(width: int, labels: list[tuple[int, str]]) -> np.ndarray:
    """A white 16 px strip with small black labels centred on the given x positions."""
    import cv2

    strip = np.full((16, width, 3), 255, np.uint8)
    for x, text in labels:
        (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)
        cv2.putText(strip, text, (max(0, x - w // 2), 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


@torch.no_grad()
def preview_grid(model: FaceSwapAutoencoder, faces_a: torch.Tensor, faces_b: torch.Tensor, dtype=None, step: int | None = None) -> np.ndarray:
    """Rows of A, A->A, A->B, B, B->B, B->A for fixed faces: reconstructions and swaps side by side."""
    from .viz import image_grid

    device = faces_a.device
    was_training = model.training
    model.eval()
    with autocast(device, dtype):
        xa, xb = faces_a.float() / 255, faces_b.float() / 255
        ca, cb = model.encoder(xa), model.encoder(xb)
        cols = [xa, model.decoders["A"](ca), model.decoders["B"](ca), xb, model.decoders["B"](cb), model.decoders["A"](cb)]
    model.train(was_training)
    cols = [(c.float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy() for c in cols]
    rows = min(len(faces_a), len(faces_b))
    pad, size = 2, cols[0].shape[1]
    grid = image_grid([c[i] for i in range(rows) for c in cols], ncol=6, pad=pad)
    head = _strip(grid.shape[1], [(pad + j * (size + pad) + size // 2, t) for j, t in enumerate(PREVIEW_COLUMNS)])
    parts = [head, grid]
    if step is not None:
        parts.append(_strip(grid.shape[1], [(grid.shape[1] // 2, f"step {step}")]))
    return np.concatenate(parts)


def plot_log(folder: str | os.PathLike, save: bool = True):
    """Train and held-out L1 per identity, log scale, like the seed's loss plots; swap success beside it when logged."""
    import matplotlib.pyplot as plt

    from .viz import read_log

    folder = Path(folder)
    log, ids = read_log(folder / "log.csv"), _identity_log(folder)
    fig, axes = plt.subplots(1, 2 if ids else 1, figsize=(12 if ids else 7, 3.5), squeeze=False)
    ax = axes[0, 0]
    for col in ("train_A", "train_B", "heldout_A", "heldout_B"):
        if col in log:
            ax.plot(log["step"], log[col], label=col)
    ax.set(yscale="log", xlabel="step", title="L1 per identity (train: warped input)")
    ax.legend()
    ax.grid(alpha=0.3)
    if ids:
        plot_identity(ids, axes[0, 1])
    fig.tight_layout()
    if save:
        fig.savefig(folder / "loss.png", dpi=100)
    return fig


def _identity_log(folder: Path) -> dict:
    from .viz import read_log

    path = folder / "identity.csv"
    return read_log(path) if path.is_file() else {}


def plot_identity(log: dict, ax=None, x: str = "step"):
    """Swap success against steps (or minutes): the share of held-out swaps a recognizer takes for the target."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for key, label in (("taken_A2B", "A->B taken for B"), ("taken_B2A", "B->A taken for A")):
        if key in log:
            ax.plot(log[x], 100 * log[key], marker="o", label=label)
    ax.set(ylim=(-3, 103), xlabel=x, ylabel="% of held-out faces", title="Swap success (independent recognizer)")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax
