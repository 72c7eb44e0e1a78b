"""The upload box, driven from Python as a browser drives it on the installed ipywidgets (7 in Colab, 8 elsewhere)."""

import datetime
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers.upload import UploadBox, UploadError, safe_name, save_upload, uploaded_files
from helpers.viz import ipywidgets_major


def jpeg(seed: int = 0, side: int = 48) -> bytes:
    """A small real JPEG (a noise picture: different seeds give different bytes)."""
    image = np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def browser_upload(upload, files):
    """What the browser does when files are chosen, in the shape of the installed ipywidgets: [(name, bytes), ...]."""
    if ipywidgets_major() >= 8:
        now = datetime.datetime.now(datetime.timezone.utc)
        upload.value = tuple({"name": name, "type": "", "size": len(content), "last_modified": now,
                              "content": memoryview(content)} for name, content in files)
    else:  # 7.x: the front end fills metadata and data, then bumps the counter, which rebuilds `value`
        upload.metadata = [{"name": name, "type": "", "size": len(content), "lastModified": 0} for name, content in files]
        upload.data = [content for _, content in files]
        upload._counter += 1


@pytest.fixture
def uploads(tmp_path):
    return tmp_path / "ws" / "uploads"


def test_value_shapes_of_ipywidgets_7_and_8():
    v7 = {"me.jpg": {"metadata": {"name": "me.jpg", "type": "image/jpeg", "size": 3, "lastModified": 0}, "content": b"abc"}}
    v8 = ({"name": "me.jpg", "type": "image/jpeg", "size": 3, "last_modified": None, "content": memoryview(b"abc")},)
    assert uploaded_files(v7) == uploaded_files(v8) == [("me.jpg", b"abc")]
    assert uploaded_files({}) == uploaded_files(()) == []


def test_nothing_uploaded_keeps_the_default(uploads, tmp_path):
    default = tmp_path / "sample.jpg"
    box = UploadBox(uploads, kind="photo", default=str(default))
    assert box.path == default and Path(box) == default and str(box) == str(default) and box

    empty = UploadBox(uploads, kind="photo", default="")  # the notebooks' PHOTO = "" means "the sample"
    assert not empty and empty.path is None
    assert (Path(empty) if empty else "sample") == "sample"  # what the next cell of the lesson does
    with pytest.raises(FileNotFoundError, match="upload one"):
        os.fspath(empty)
    browser_upload(empty.upload, [])  # an empty upload changes nothing
    assert empty.path is None and not uploads.exists()


def test_uploaded_photo_is_saved_and_used(uploads, tmp_path):
    box = UploadBox(uploads, kind="photo", default=str(tmp_path / "sample.jpg"))
    browser_upload(box.upload, [("My Selfie (1).JPG", jpeg())])
    saved = uploads / "My_Selfie_1.jpg"
    assert saved.read_bytes() == jpeg()
    assert box.path == saved and Path(box) == saved and str(box) == str(saved)
    assert "saved as My_Selfie_1.jpg" in box.status.value and "using <b>My_Selfie_1.jpg</b>" in box.using.value
    assert box.preview.value[:2] == b"\xff\xd8" and box.preview.layout.display == ""  # the photo is shown
    assert [name for name, _ in box.picker.options][1:] == ["My_Selfie_1.jpg"]
    assert not any(p.name.startswith(".") for p in uploads.iterdir())  # no temp file left

    box.picker.value = ""  # back to the default (missing here: no preview), then the same file again: still seen
    assert "using <b>sample.jpg</b>" in box.using.value and box.preview.layout.display == "none"
    browser_upload(box.upload, [("My Selfie (1).JPG", jpeg())])
    assert box.path == saved and len(list(uploads.iterdir())) == 1


def test_names_with_folders_and_dots_stay_inside_the_folder(uploads, tmp_path):
    box = UploadBox(uploads, kind="photo")
    browser_upload(box.upload, [("../../evil.jpg", jpeg(1)), ("..\\..\\win.png", cv2.imencode(".png", np.zeros((9, 9, 3), np.uint8))[1].tobytes()),
                                ("/etc/passwd.jpg", jpeg(2))])
    assert sorted(p.name for p in uploads.iterdir()) == ["evil.jpg", "passwd.jpg", "win.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"] and sorted(p.name for p in (tmp_path / "ws").iterdir()) == ["uploads"]
    for bad in ("..", "../", "", "photos/.."):
        with pytest.raises(UploadError, match="no file name"):
            safe_name(bad)
    assert safe_name(".hidden.jpg") == "hidden.jpg" and safe_name("a\x00b c.jpeg") == "a_b_c.jpeg"


def test_duplicate_names_get_a_suffix_and_copies_are_not_saved_twice(uploads):
    box = UploadBox(uploads, kind="photo")
    browser_upload(box.upload, [("me.jpg", jpeg(1))])
    browser_upload(box.upload, [("me.jpg", jpeg(2))])
    assert box.path == uploads / "me-2.jpg" and "me.jpg saved as me-2.jpg" in box.status.value
    browser_upload(box.upload, [("me.jpg", jpeg(1)), ("me.jpg", jpeg(3))])  # 8.x can carry one name twice
    assert sorted(p.name for p in uploads.iterdir()) == ["me-2.jpg", "me-3.jpg", "me.jpg"]
    assert (uploads / "me.jpg").read_bytes() == jpeg(1) and box.path == uploads / "me-3.jpg"


def test_files_that_are_not_photos_are_refused_with_a_sentence(uploads, tmp_path):
    default = tmp_path / "sample.jpg"
    box = UploadBox(uploads, kind="photo", default=default)
    browser_upload(box.upload, [("notes.txt", b"hello"), ("page.jpg", b"<html>403 Forbidden</html>"),
                                ("empty.png", b""), ("IMG_0001.HEIC", b"\x00\x00\x00\x18ftypheic")])
    status = box.status.value
    assert "notes.txt is not a photo file" in status
    assert "page.jpg is not a photo this course can read" in status
    assert "empty.png is empty (0 bytes)" in status
    assert "Most Compatible" in status  # the iPhone hint for HEIC
    assert box.path == default and not any(uploads.glob("*"))  # nothing kept, the default still used
    with pytest.raises(UploadError, match="not a photo this course can read"):
        save_upload(uploads, "cut.jpg", jpeg()[:200])


def test_a_good_file_next_to_a_bad_one_is_kept(uploads):
    box = UploadBox(uploads, kind="photo")
    browser_upload(box.upload, [("ok.jpg", jpeg()), ("bad.jpg", b"nope")])
    assert box.path == uploads / "ok.jpg" and "✗ bad.jpg" in box.status.value


def test_video_upload(uploads, tmp_path):
    from helpers.video import write_clip

    clip = write_clip(tmp_path / "clip.mp4", [np.full((32, 32, 3), 40 * i, np.uint8) for i in range(5)], fps=5)
    box = UploadBox(uploads, kind="video", default="")
    browser_upload(box.upload, [("holiday.mp4", clip.read_bytes()), ("broken.mp4", b"\x00" * 100), ("me.jpg", jpeg())])
    assert box.path == uploads / "holiday.mp4"
    assert box.preview.value[:2] == b"\xff\xd8" and box.preview.layout.display == ""  # its first frame
    assert "broken.mp4 is not a video this course can read" in box.status.value
    assert "me.jpg is not a video file" in box.status.value
    assert [p.name for p in uploads.iterdir()] == ["holiday.mp4"]


def test_a_folder_of_photos(uploads):
    box = UploadBox(uploads / "photos", kind="photo", multiple=True)
    assert box.upload.multiple and box.paths == []
    browser_upload(box.upload, [(f"p{i}.jpg", jpeg(i)) for i in range(3)])
    assert sorted(p.name for p in box.paths) == ["p0.jpg", "p1.jpg", "p2.jpg"]
    assert "3 photo(s) in the folder" in box.using.value


def test_files_put_in_the_folder_another_way_can_be_picked_and_a_rerun_keeps_the_choice(uploads, tmp_path):
    uploads.mkdir(parents=True)
    (uploads / "from_drive.jpg").write_bytes(jpeg())
    (uploads / "notes.txt").write_text("not listed")
    box = UploadBox(uploads, kind="photo", default=tmp_path / "sample.jpg")
    assert [name for name, _ in box.picker.options] == ["the default: sample.jpg", "from_drive.jpg"]
    assert box.path == tmp_path / "sample.jpg"  # listed, not chosen: headless runs keep the default
    box.picker.value = str(uploads / "from_drive.jpg")
    assert box.path == uploads / "from_drive.jpg"
    again = UploadBox(uploads, kind="photo", default=box)  # `PHOTO = UploadBox(..., default=PHOTO)` run twice
    assert again.path == uploads / "from_drive.jpg" and again.default == tmp_path / "sample.jpg"


def test_bad_kind_is_a_clear_error(uploads):
    with pytest.raises(ValueError, match="kind must be one of"):
        UploadBox(uploads, kind="audio")


def test_display_enables_colab_widgets_only_for_ipywidgets_8(uploads, monkeypatch):
    import sys
    import types

    import IPython.display

    from helpers import viz

    calls, shown = [], []
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append(1))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    box = UploadBox(uploads)
    for version, expected in (("7.7.1", 0), ("8.1.5", 1)):
        monkeypatch.setattr(viz, "_colab_widgets_enabled", False)
        monkeypatch.setattr("ipywidgets.__version__", version)
        calls.clear()
        box._ipython_display_()
        assert len(calls) == expected, version
    assert shown == [box.widget, box.widget]
