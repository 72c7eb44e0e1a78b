"""Bring your own face: an upload button whose files land in the workspace under safe names.

In Colab a learner has no easy way to put a selfie at the path `PHOTO` names.
An ipywidgets FileUpload works in Colab and in Jupyter, on ipywidgets 7 (what
Colab ships) and 8. The box stands in for the path parameter it replaces:

    PHOTO = UploadBox(ws.root / "uploads", kind="photo", default=PHOTO)
    PHOTO                     # shows the button
    ...                       # a later cell: Path(PHOTO) if PHOTO else sample

`PHOTO.path` (also `os.fspath(PHOTO)`, `str(PHOTO)`) is read when the later
cell runs: the file uploaded or picked last, else the default. Nobody clicks
in a headless run (papermill, the tests), so the lesson keeps its default.

The browser chooses the file name, so it is not trusted: directories are
stripped, `..` is refused, the extension must fit the kind, and a name
already taken by other content gets a suffix (`me.jpg`, `me-2.jpg`). Every
file is checked (decoded) before it is kept; one that is not a photo or a
video is refused with a sentence and never reaches the workspace.

Widgets carry a file through the notebook's websocket, which caps its size:
about 1 MB in Colab (ipywidgets issue #3452) and 10 MB in Jupyter. Bigger files
(most videos) go into the same folder another way (Google Drive, Colab's Files
panel); the box lists what is there, so they can be picked after a re-run.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
import unicodedata
from pathlib import Path

import ipywidgets as widgets

from .storage import atomic_write

PHOTO_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".jfif")
VIDEO_EXTS = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".3gp", ".mpg", ".mpeg")
KINDS = {"photo": PHOTO_EXTS, "video": VIDEO_EXTS}
MAX_STEM = 80


class UploadError(ValueError):
    """An uploaded file that is not kept; the message is one sentence saying why."""


# ---------------------------------------------------------------- the files in a FileUpload value

def uploaded_files(value) -> list[tuple[str, bytes]]:
    """(name, content) of every file in a FileUpload value, whichever ipywidgets made it.

    ipywidgets 7: {name: {"metadata": {"name": ...}, "content": bytes}};
    ipywidgets 8: ({"name": ..., "content": memoryview, ...}, ...).
    """
    if not value:
        return []
    if isinstance(value, dict):
        return [(str((entry.get("metadata") or {}).get("name", name)), bytes(entry["content"]))
                for name, entry in value.items()]
    return [(str(entry.get("name", "")), bytes(entry["content"])) for entry in value]


# ---------------------------------------------------------------- names and saving

def safe_name(name: str, kind: str = "photo") -> str:
    """A file name the browser sent, made safe to save: no folders, no `..`, plain characters, a known extension."""
    exts = KINDS[kind]
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", str(name)))[-1].strip()
    if base in ("", ".", ".."):
        raise UploadError(f"{name!r} has no file name to save it under: rename the file and upload it again.")
    stem, ext = os.path.splitext(base)
    ext = ext.lower()
    if ext not in exts:
        raise UploadError(f"{base} is not a {kind} file ({', '.join(exts)}): "
                          + ("save it as JPEG (on an iPhone: Settings > Camera > Formats > Most Compatible) and upload that."
                             if ext in (".heic", ".heif") else f"upload a {kind}."))
    stem = re.sub(r"[^\w\-.]+", "_", stem, flags=re.UNICODE)  # spaces, quotes, control characters...
    stem = re.sub(r"_+", "_", stem).strip("._-")[:MAX_STEM] or "upload"
    return stem + ext


def free_target(folder: Path, name: str, content: bytes) -> Path:
    """Where `content` goes in `folder`: `name`, the same file if it is already there, else `stem-2.ext`, `stem-3.ext`..."""
    stem, ext = os.path.splitext(name)
    target, n = folder / name, 1
    while target.exists():
        if target.is_file() and target.stat().st_size == len(content) and target.read_bytes() == content:
            return target
        n += 1
        target = folder / f"{stem}-{n}{ext}"
    return target


def check_content(path: Path, kind: str, shown_name: str) -> None:
    """Decode the file the way the lessons will; raise UploadError with the reason if they could not use it."""
    if path.stat().st_size == 0:
        raise UploadError(f"{shown_name} is empty (0 bytes): upload it again.")
    if kind == "photo":
        from .faces import ImageError, load_image

        try:
            load_image(path)
        except ImageError as exc:
            raise UploadError(f"{shown_name} is not a photo this course can read: {exc}.") from None
    else:
        from .video import VideoError, probe

        try:
            probe(path)
        except VideoError as exc:
            reason = str(exc).replace(str(path), shown_name)
            raise UploadError(f"{shown_name} is not a video this course can read: {reason}.") from None


def save_upload(folder: str | os.PathLike, name: str, content: bytes, kind: str = "photo") -> Path:
    """Check one uploaded file and keep it in `folder` under a safe, unused name; return where it is.

    The file is checked in the system's temp folder first, so a refused file
    never touches the workspace (on Drive a deleted file would sit in the trash),
    then written next to its target and renamed into place (helpers.storage): never half a file.
    """
    folder = Path(folder)
    final_name = safe_name(name, kind)
    with tempfile.TemporaryDirectory(prefix="polyjuice-upload-") as scratch:
        probe_path = Path(scratch) / final_name
        probe_path.write_bytes(content)
        check_content(probe_path, kind, final_name)
    folder.mkdir(parents=True, exist_ok=True)
    target = free_target(folder, final_name, content)
    if target.exists():
        return target
    return atomic_write(target, lambda f: f.write(content), expected_size=len(content), what=f"the upload {final_name}")


def preview_jpeg(path: Path, kind: str = "photo", side: int = 160) -> bytes | None:
    """A small upright JPEG of a photo, or of a video's first frame, for the box (None if it cannot be read)."""
    import cv2

    from .faces import load_image
    from .video import iter_frames

    try:
        rgb = load_image(path) if kind == "photo" else next(iter(iter_frames(path, max_frames=1))).image
    except Exception:  # a file copied in by hand can be anything; a preview never breaks the box
        return None
    scale = side / max(rgb.shape[:2])
    small = cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))[1].tobytes()


# ---------------------------------------------------------------- the widget

class UploadBox:
    """An upload button plus a list of the files already in `folder`; `.path` is the one to use.

    kind: "photo" or "video" (what is accepted and how it is checked).
    default: the path to use while nothing is uploaded or picked (None or "": none).
    multiple: accept several files at once (a folder of photos); `.paths` lists them.
    Drive it from Python as a browser would: `box.upload.value = ...` (see tests/test_upload.py).
    """

    def __init__(self, folder: str | os.PathLike, kind: str = "photo", default=None, multiple: bool = False):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
        picked = ""
        if isinstance(default, UploadBox):  # the cell ran again: keep the earlier choice
            picked, default = default.picker.value, default.default
        self.folder, self.kind, self.multiple = Path(folder), kind, bool(multiple)
        self.default = Path(default).expanduser() if default not in (None, "") else None
        self.saved: list[Path] = []
        accept = ",".join(KINDS[kind]) + (",image/*" if kind == "photo" else ",video/*")
        label = f"upload {kind}s" if multiple else f"upload a {kind}"
        self.upload = widgets.FileUpload(accept=accept, multiple=self.multiple, description=label)
        self.picker = widgets.Dropdown(description="use", layout=widgets.Layout(width="420px"))
        self.status = widgets.HTML()  # what became of the last upload
        self.using = widgets.HTML()  # what the lesson will read
        self.preview = widgets.Image(format="jpeg", layout=widgets.Layout(display="none"))
        then = "everything in it is used" if self.multiple else "run this cell again and pick them in the list"
        self.hint = widgets.HTML(
            f"<small>Saved in {html.escape(str(self.folder))}. A notebook widget carries about 1 MB in Colab "
            f"and 10 MB in Jupyter: put bigger files (most videos) in that folder another way (Google Drive, "
            f"Colab's Files panel); {then}.</small>")
        self.upload.observe(self._on_upload, names="value")
        self.picker.observe(self._show_choice, names="value")
        top = self.upload if self.multiple else widgets.HBox([self.upload, self.picker])  # a folder needs no picker
        self.widget = widgets.VBox([top, self.status, self.using, self.preview, self.hint])
        self.refresh(select=picked)
        self._show_choice()

    # -- what the lesson reads ----------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        """The file picked or uploaded last, else the default (None if there is neither)."""
        return Path(self.picker.value) if self.picker.value else self.default

    @property
    def paths(self) -> list[Path]:
        """Every file of this kind in the folder (earlier uploads and files copied in by hand too), oldest first."""
        if not self.folder.is_dir():
            return []
        found = [p for p in self.folder.iterdir() if p.is_file() and not p.name.startswith(".")
                 and p.suffix.lower() in KINDS[self.kind]]
        return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))

    def __fspath__(self) -> str:
        if self.path is None:
            raise FileNotFoundError(f"Nothing uploaded and no default {self.kind}: upload one above, or set the parameter.")
        return str(self.path)

    def __str__(self) -> str:
        return "" if self.path is None else str(self.path)

    def __bool__(self) -> bool:
        return self.path is not None

    def __repr__(self) -> str:
        return f"UploadBox({self.kind}: {self.path})"

    # -- state --------------------------------------------------------------------------------
    def refresh(self, select: str | os.PathLike = "") -> None:
        """List the folder's files in the picker again (e.g. after copying one in by hand)."""
        default = f"the default: {self.default.name}" if self.default else "the lesson's default"
        options = [(default, "")] + [(p.name, str(p)) for p in reversed(self.paths)]
        self.picker.options = options
        self.picker.value = str(select) if str(select) in {v for _, v in options} else ""

    def save(self, files: list[tuple[str, bytes]]) -> list[Path]:
        """Keep each (name, content) that passes the checks; say what happened to each; use the last one kept."""
        kept, lines = [], []
        for name, content in files:
            try:
                path = save_upload(self.folder, name, content, self.kind)
            except UploadError as exc:
                lines.append(("✗", str(exc)))
                continue
            kept.append(path)
            lines.append(("✓", f"{name} saved as {path.name}" if path.name != name else f"{name} saved"))
        self.saved += kept
        if kept:
            self.refresh(select=kept[-1])
        self._say(lines)
        return kept

    # -- events and drawing -------------------------------------------------------------------
    def _on_upload(self, change) -> None:
        files = uploaded_files(change["new"])
        if files:
            self.save(files)
            self._clear()

    def _clear(self) -> None:
        """Empty the button, so that uploading the same file again is seen as a new upload."""
        if isinstance(self.upload.value, dict):  # ipywidgets 7: value is read-only for users
            self.upload.set_trait("value", {})
        else:
            self.upload.value = ()

    def _say(self, lines: list[tuple[str, str]]) -> None:
        self.status.value = "<br>".join(f"{mark} {html.escape(line)}" for mark, line in lines)
        self._show_choice()

    def _show_choice(self, change=None) -> None:
        """Say which file the lesson will read and show it (a video's first frame) upright, as the lesson will see it."""
        if self.multiple:
            self.using.value = f"{len(self.paths)} {self.kind}(s) in the folder"
            return
        self.using.value = f"using <b>{html.escape(self.path.name)}</b>" if self.path else "using the lesson's default"
        picture = preview_jpeg(self.path, self.kind) if self.path else None
        self.preview.value = picture or b""
        self.preview.layout.display = "" if picture else "none"

    def _ipython_display_(self):
        from IPython.display import display

        from .viz import enable_colab_widgets

        enable_colab_widgets()
        display(self.widget)
