"""The curation widget, driven from Python as a user's clicks would drive it in a browser."""

import shutil

import pytest

from helpers.curate import BY_HAND, CurationGrid
from helpers.data import list_faces
from helpers.faces import crop_video, make_detector, read_index


@pytest.fixture(scope="module")
def man_faces(samples, tmp_path_factory):
    """A small face folder: every 8th frame of the man video (9 faces)."""
    out = tmp_path_factory.mktemp("curate") / "man"
    crop_video(samples["man.mp4"], out, every=8, detector=make_detector("mtcnn"), dedupe=None, progress=False)
    return out


@pytest.fixture
def folder(man_faces, tmp_path):
    return shutil.copytree(man_faces, tmp_path / "man")


def status(folder, face):
    return next(r["status"] for r in read_index(folder) if r["face"] == face)


def test_click_rejects_and_restores_in_faces_csv(folder, samples):
    grid = CurationGrid(folder, page_size=4)
    assert len(grid.buttons) == 4 and grid.pages == 3
    face = grid.visible()[1]["face"]
    grid.buttons[1].click()
    assert status(folder, face) == BY_HAND
    assert grid.buttons[1].button_style == "danger" and "by hand" in grid.buttons[1].description
    assert folder / face not in list_faces(folder)  # the trainers no longer see it
    assert "kept <b>8</b>" in grid.info.value

    # survives a re-run of the crop and a fresh widget (a new kernel)
    again = crop_video(samples["man.mp4"], folder, every=8, detector="haar", progress=False)
    assert again.frames == 0
    reloaded = CurationGrid(folder, page_size=4)
    assert reloaded.buttons[1].button_style == "danger"
    reloaded.buttons[1].click()
    assert status(folder, face) == "kept" and folder / face in list_faces(folder)


def test_paging_and_filter(folder):
    grid = CurationGrid(folder, page_size=4)
    grid.next_button.click()
    grid.next_button.click()
    assert grid.page == 2 and len(grid.buttons) == 1 and grid.next_button.disabled
    last = grid.visible()[-1]["face"]
    grid.buttons[0].click()  # reject the face on the last page
    grid.filter.value = "rejected"
    assert grid.page == 0 and [r["face"] for r in grid.visible()] == [last] and len(grid.buttons) == 1
    grid.filter.value = "kept"
    assert len(grid.visible()) == 8


def test_restoring_a_face_rejected_by_a_filter(folder):
    rows = read_index(folder)
    rows[0]["status"] = "rejected:blurry"
    from helpers.faces import write_index

    write_index(folder, rows)
    grid = CurationGrid(folder, show="rejected")
    assert grid.buttons[0].description == "✗ blurry"
    grid.buttons[0].click()
    assert status(folder, rows[0]["face"]) == "kept"


def test_folder_without_faces_csv_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="crop faces"):
        CurationGrid(tmp_path)


def test_thumbnails_are_small_jpegs(folder):
    grid = CurationGrid(folder, page_size=4, thumb=64)
    images = [tile.children[0] for tile in grid.grid.children]
    assert len(images) == 4 and all(im.value[:2] == b"\xff\xd8" and im.format == "jpeg" for im in images)
    assert all(len(im.value) < 10_000 and str(im.width) == "64" for im in images)


@pytest.mark.parametrize("version, enabled", [("7.7.1", False), ("8.1.5", True)])
def test_colab_custom_widget_manager_only_for_ipywidgets_8(folder, monkeypatch, version, enabled):
    """Colab ships ipywidgets 7.7.1 and draws it itself; only 8 needs the custom manager."""
    import sys
    import types

    import IPython.display

    from helpers import viz

    calls, shown = [], []
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append(1))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    monkeypatch.setattr(viz, "_colab_widgets_enabled", False)
    monkeypatch.setattr("ipywidgets.__version__", version)
    grid = CurationGrid(folder, page_size=4)
    grid._ipython_display_()
    grid._ipython_display_()
    assert len(calls) == int(enabled) and shown == [grid.widget, grid.widget]


def test_no_widget_manager_outside_colab(monkeypatch):
    import sys

    from helpers import viz

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(viz, "_colab_widgets_enabled", False)
    monkeypatch.setattr("ipywidgets.__version__", "8.1.5")
    assert viz.enable_colab_widgets() is False


def test_progress_bar_widget_on_this_ipywidgets():
    """tqdm.auto's notebook bar (every long loop of the course) builds and fills on ipywidgets 7 and 8."""
    from tqdm.notebook import tqdm

    bar = tqdm(total=4, desc="faces", display=False)
    bar.update(4)
    bar.refresh()
    label, progress, counts = bar.container.children
    assert progress.value == progress.max == 4 and "faces" in label.value and "4/4" in counts.value
    bar.close()
    assert progress.bar_style == "success"


def widget_tree(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from widget_tree(child)


def test_every_widget_setting_is_a_trait_of_this_ipywidgets(folder, tmp_path):
    """ipywidgets silently keeps an attribute (or drops a keyword) it does not know, so a setting that exists only
    in 8 (e.g. description_allow_html) would do nothing on Colab's 7.7.1: every one we use must be a real trait."""
    import warnings

    from helpers.upload import UploadBox

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        grid = CurationGrid(folder, page_size=4)
        grid.buttons[0].click()
        box = UploadBox(tmp_path / "uploads", kind="photo", default=tmp_path / "me.jpg")
    assert not [w for w in caught if "unrecognized" in str(w.message).lower()]
    for root in (grid.widget, box.widget):
        for widget in widget_tree(root):
            unknown = [k for k in vars(widget) if not k.startswith("_") and not widget.has_trait(k) and k != "equals"]
            assert not unknown, f"{type(widget).__name__} has no trait(s) {unknown} on this ipywidgets"
