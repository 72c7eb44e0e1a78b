"""Pictures for the lessons: image grids and loss curves; widgets that work in Colab (ipywidgets 7) and Jupyter (8)."""

from __future__ import annotations

import csv
import math
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np


def to_uint8(image) -> np.ndarray:
    """RGB uint8 HxWxC from a uint8 array or a float tensor/array in [-1, 1] (CHW or HWC)."""
    if hasattr(image, "detach"):
        image = image.detach().float().cpu().numpy()
    image = np.asarray(image)
    if image.dtype != np.uint8:
        if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
            image = image.transpose(1, 2, 0)
        image = ((np.clip(image, -1, 1) + 1) * 127.5).round().astype(np.uint8)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    return image


def image_grid(images: Sequence, ncol: int | None = None, pad: int = 2, background: int = 255) -> np.ndarray:
    """Tile images (any mix of sizes is resized to the first one's) into one RGB uint8 array."""
    import cv2

    tiles = [to_uint8(im) for im in images]
    if not tiles:
        raise ValueError("image_grid needs at least one image")
    h, w = tiles[0].shape[:2]
    tiles = [t if t.shape[:2] == (h, w) else cv2.resize(t, (w, h), interpolation=cv2.INTER_AREA) for t in tiles]
    ncol = ncol or math.ceil(math.sqrt(len(tiles)))
    nrow = math.ceil(len(tiles) / ncol)
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, 3), background, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, ncol)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = t
    return grid


def show(images: Sequence, titles: Sequence[str] | None = None, ncol: int | None = None, size: float = 2.5, save: str | os.PathLike | None = None):
    """Show images side by side with titles (a matplotlib figure); optionally save it as PNG."""
    import matplotlib.pyplot as plt

    ncol = ncol or min(len(images), 6)
    nrow = math.ceil(len(images) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(size * ncol, size * nrow), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, im in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(to_uint8(im))
        if titles is not None and i < len(titles):
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    if save:
        fig.savefig(save, dpi=100)
    return fig


def read_log(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A CSV log (header row, numeric columns) as column name -> array."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) if r[k] not in ("", None) else np.nan for r in rows]) for k in rows[0]}


def plot_curves(path: str | os.PathLike, columns: Sequence[str], x: str = "step", logy: bool = False, save: str | os.PathLike | None = None, title: str | None = None):
    """Plot columns of a CSV log against `x` (log scale like the seed's loss plots when `logy`)."""
    import matplotlib.pyplot as plt

    log = read_log(path)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for col in columns:
        if col in log:
            ax.plot(log[x], log[col], label=col)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.legend()
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    if save:
        fig.savefig(Path(save), dpi=100)
    return fig


# ---------------------------------------------------------------- widgets in Colab
#
# The course's widgets use only what ipywidgets 7.7.1 (Colab) and 8 share: Button.on_click and .click(),
# Image.value as bytes, HTML.value, Dropdown options as (label, value) pairs, GridBox and Layout. What
# differs is handled where it is used: FileUpload.value (helpers.upload.uploaded_files) and settings that
# exist only in 8, such as description_allow_html, which 7 ignores silently (we use HTML widgets instead;
# tests/test_curate.py checks every setting is a real trait). Live pictures during training use plain
# IPython display handles (helpers.train.LiveView), which need no widgets at all.

_colab_widgets_enabled = False


def ipywidgets_major() -> int:
    """The major version of the installed ipywidgets (7 in Colab as shipped, 8 elsewhere today)."""
    import ipywidgets

    return int(str(ipywidgets.__version__).split(".")[0])


def enable_colab_widgets() -> bool:
    """Switch on Colab's custom widget manager where it is needed: in Colab, with ipywidgets 8 or newer.

    Colab draws the core widgets of ipywidgets 7 (it ships 7.7.1) itself, tqdm
    bars included; only 8 needs the custom manager, without which widgets and
    progress bars stay blank (colabtools #3020, #3023). Elsewhere, and with 7,
    this does nothing. Returns whether the manager is on. Safe to call often.
    """
    global _colab_widgets_enabled
    if _colab_widgets_enabled:
        return True
    if "google.colab" not in sys.modules or ipywidgets_major() < 8:
        return False
    try:
        from google.colab import output

        output.enable_custom_widget_manager()
    except (ImportError, AttributeError):
        return False
    _colab_widgets_enabled = True
    return True
