"""Curate a face folder by hand: a paged grid of thumbnails, one click rejects or restores a face.

Filters catch blur, tiny faces and duplicates, not a wrong person, a hand over
the mouth or a bad alignment; your eyes do. Every click is written to the
folder's faces.csv at once ("rejected:by_hand" or "kept"), so decisions
survive a crashed kernel and a re-run of the crop, and the trainers
(helpers.data.list_faces) use only the kept faces.

    grid = CurationGrid(ws.faces / "woman")
    grid            # shows the widget in Jupyter and Colab
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import ipywidgets as widgets
import numpy as np

from .faces import face_rows, set_status

BY_HAND = "rejected:by_hand"


def thumbnail_jpeg(path: Path, side: int) -> bytes:
    """A small JPEG of a face image, so a page of thumbnails stays light for the browser."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        bgr = np.full((side, side, 3), 128, np.uint8)  # a grey square for a missing file
    bgr = cv2.resize(bgr, (side, side), interpolation=cv2.INTER_AREA)
    ok, jpg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return jpg.tobytes()


def toggled(status: str) -> str:
    """The status after a click: kept faces are rejected by hand, rejected faces (any reason) are restored."""
    return BY_HAND if status == "kept" else "kept"


class CurationGrid:
    """Paged thumbnails of a face folder with a keep/reject button under each face.

    Drive it from Python too: `grid.buttons[i].click()` clicks the i-th face
    of the current page, `grid.next_button.click()` turns the page.
    """

    def __init__(self, folder: str | os.PathLike, page_size: int = 24, columns: int = 6, thumb: int = 96,
                 show: str = "all"):
        if show not in ("all", "kept", "rejected"):
            raise ValueError(f"show must be 'all', 'kept' or 'rejected', got {show!r}")
        self.folder = Path(folder)
        if not (self.folder / "faces.csv").exists():
            raise FileNotFoundError(f"No faces.csv in {self.folder}: crop faces into it first (crop_video / crop_folder).")
        self.page_size, self.thumb, self.page = int(page_size), int(thumb), 0
        self.filter = widgets.ToggleButtons(options=["all", "kept", "rejected"], value=show, description="show")
        self.prev_button = widgets.Button(description="◀ previous", layout=widgets.Layout(width="110px"))
        self.next_button = widgets.Button(description="next ▶", layout=widgets.Layout(width="110px"))
        self.info = widgets.HTML()
        self.grid = widgets.GridBox(layout=widgets.Layout(grid_template_columns=f"repeat({columns}, {thumb + 12}px)",
                                                          grid_gap="4px"))
        self.buttons: list[widgets.Button] = []
        self.prev_button.on_click(lambda _: self.turn(-1))
        self.next_button.on_click(lambda _: self.turn(+1))
        self.filter.observe(self._on_filter, names="value")
        self.widget = widgets.VBox([self.filter, widgets.HBox([self.prev_button, self.next_button, self.info]), self.grid])
        self.reload()

    # -- state ------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read faces.csv again (e.g. after another crop run) and redraw."""
        self.rows = face_rows(self.folder)
        self.render()

    def visible(self) -> list[dict]:
        """The rows the current filter shows, in faces.csv order."""
        if self.filter.value == "kept":
            return [r for r in self.rows if r["status"] == "kept"]
        if self.filter.value == "rejected":
            return [r for r in self.rows if r["status"] != "kept"]
        return self.rows

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.visible()) // self.page_size))

    def turn(self, step: int) -> None:
        self.page = min(max(0, self.page + step), self.pages - 1)
        self.render()

    def toggle(self, face: str) -> str:
        """Reject a kept face or restore a rejected one; save to faces.csv at once; return the new status."""
        row = next(r for r in self.rows if r["face"] == face)
        row["status"] = set_status(self.folder, face, toggled(row["status"]))["status"]
        return row["status"]

    # -- drawing ----------------------------------------------------------------------------
    def _on_filter(self, change) -> None:
        self.page = 0
        self.render()

    def _style(self, button: widgets.Button, status: str) -> None:
        kept = status == "kept"
        button.description = "✓ kept" if kept else "✗ " + status.split(":", 1)[-1].replace("_", " ")
        button.button_style = "success" if kept else "danger"
        button.tooltip = "click to reject" if kept else "click to restore"

    def _tile(self, row: dict) -> widgets.VBox:
        image = widgets.Image(value=thumbnail_jpeg(self.folder / row["face"], self.thumb), format="jpeg",
                              width=self.thumb, height=self.thumb)
        button = widgets.Button(layout=widgets.Layout(width=f"{self.thumb}px"))
        self._style(button, row["status"])

        def on_click(_, face=row["face"], b=button):
            self._style(b, self.toggle(face))
            self._count()

        button.on_click(on_click)
        self.buttons.append(button)
        return widgets.VBox([image, button], layout=widgets.Layout(align_items="center"))

    def _count(self) -> None:
        kept = sum(r["status"] == "kept" for r in self.rows)
        by_hand = sum(r["status"] == BY_HAND for r in self.rows)
        self.info.value = (f"&nbsp; page {self.page + 1}/{self.pages} &nbsp;·&nbsp; kept <b>{kept}</b>, "
                           f"rejected {len(self.rows) - kept} (by hand {by_hand})")

    def render(self) -> None:
        self.page = min(self.page, self.pages - 1)
        start = self.page * self.page_size
        self.buttons = []
        self.grid.children = [self._tile(r) for r in self.visible()[start:start + self.page_size]]
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.pages - 1
        self._count()

    def _ipython_display_(self):
        from IPython.display import display

        from .viz import enable_colab_widgets

        enable_colab_widgets()  # Colab needs it for ipywidgets 8 only
        display(self.widget)
