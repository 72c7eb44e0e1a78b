"""Watching a run: the live picture and line in the notebook, TensorBoard where it is installed."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np

from .distributed import is_main


class LiveView:
    """The newest picture and log line, updated in place in the notebook (plain IPython display
    handles: works with ipywidgets 7 and 8 alike, and does nothing outside Jupyter)."""

    def __init__(self, enabled: bool):
        self.handles = None
        if not enabled or not is_main():
            return
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        self.handles = (display(display_id=True), display(display_id=True))

    def picture(self, path: Path | None) -> None:
        if self.handles is not None and path is not None:
            from IPython.display import Image

            self.handles[0].update(Image(filename=str(path)))

    def text(self, line: str) -> None:
        if self.handles is not None:
            from IPython.display import Markdown

            self.handles[1].update(Markdown(line))


class TensorBoard:
    """Log rows and previews as TensorBoard events where the tensorboard package is installed (Colab has it)."""

    def __init__(self, folder: Path, start_step: int):
        self.writer = None
        if not is_main():
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: the CSV log is the record
            return
        # purge_step: events past the checkpoint we resume from are hidden, as the CSV rows are trimmed
        self.writer = SummaryWriter(str(folder / "tensorboard"), purge_step=start_step or None)

    def row(self, name: str, row: dict) -> None:
        if self.writer is None:
            return
        step = int(float(row["step"]))
        for key, value in row.items():
            if key == "step":
                continue
            with contextlib.suppress(TypeError, ValueError):
                value = float(value)
                if math.isfinite(value):
                    self.writer.add_scalar(f"{name}/{key}", value, step)

    def picture(self, tag: str, rgb: np.ndarray, step: int) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, rgb, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
