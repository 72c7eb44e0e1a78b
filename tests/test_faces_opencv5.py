"""Face detection when OpenCV has no Haar cascades, as in OpenCV 5.0 (what Colab ships).

OpenCV 5.0 has no `cv2.CascadeClassifier` and an empty `cv2/data/`. The
`opencv5` fixture makes this OpenCV look like that; on a real OpenCV 5 it
changes nothing. Either way "haar" and "auto" must still find faces (with
MTCNN), say so once, and an explicit HaarDetector must name the way out.
"""

import warnings

import cv2
import pytest

from helpers.faces import detect as faces_detect  # where the one-time warning flag lives
from helpers.faces import (
    HaarDetector, HaarUnavailable, MTCNNDetector, crop_folder, crop_video, haar_available, load_image, make_detector,
    read_index,
)

GRACE_BOX = [165, 125, 355, 335]  # drawn by hand, as in test_faces.py


@pytest.fixture
def opencv5(monkeypatch, tmp_path):
    """This OpenCV as 5.0 is: no CascadeClassifier and no cascade files; the one-time warning not yet given."""
    monkeypatch.delattr(cv2, "CascadeClassifier", raising=False)
    empty = tmp_path / "cv2_data"
    empty.mkdir()
    monkeypatch.setattr(cv2.data, "haarcascades", str(empty) + "/", raising=False)
    monkeypatch.setattr(faces_detect, "_told_no_haar", False)
    assert not haar_available()


def box_overlap(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_haar_falls_back_to_mtcnn_with_one_warning_and_finds_the_face(opencv5, samples):
    with pytest.warns(UserWarning, match="no Haar cascades.*MTCNN") as said:
        detector = make_detector("haar", min_neighbors=3)  # a Haar-only option must not break the fallback
    assert len(said) == 1 and isinstance(detector, MTCNNDetector)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second time is silent
        again = make_detector("auto")
    assert isinstance(again, MTCNNDetector)
    found = detector.detect(load_image(samples["grace_hopper.jpg"]))
    assert found and box_overlap(found[0].box, GRACE_BOX) >= 0.5


def test_explicit_haar_detector_raises_one_clear_error_naming_mtcnn(opencv5):
    with pytest.raises(HaarUnavailable, match="make_detector\\('mtcnn'\\)"):
        HaarDetector()


def test_auto_is_haar_where_this_opencv_has_it():
    if not haar_available():
        pytest.skip("this OpenCV has no Haar cascades (the fallback is tested above)")
    assert isinstance(make_detector("auto"), HaarDetector)


def test_quick_crops_with_haar_still_keep_faces_without_cascades(opencv5, samples, tmp_path, one_thread):
    """The QUICK paths of notebooks 02, 03 and 05 ask for "haar" or "auto": they must still crop faces."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "grace.jpg").write_bytes(samples["grace_hopper.jpg"].read_bytes())
    with pytest.warns(UserWarning, match="MTCNN"):
        report = crop_folder(photos, tmp_path / "from_photos", size=64, detector="haar", refine=False, progress=False)
    assert report.kept == 1
    report = crop_video(samples["man.mp4"], tmp_path / "from_video", size=64, every=24, detector="auto", refine=False,
                        dedupe=None, progress=False)
    assert report.kept == report.frames == 3
    assert {row["detector"] for row in read_index(tmp_path / "from_video")} == {"mtcnn"}


def test_the_warning_points_at_the_callers_line_not_into_helpers(opencv5, tmp_path):
    with pytest.warns(UserWarning, match="MTCNN") as said:
        make_detector("auto")
    assert said[0].filename == __file__
    faces_detect._told_no_haar = False  # monkeypatched: restored after the test
    with pytest.warns(UserWarning, match="MTCNN") as said:
        crop_folder(tmp_path, tmp_path / "out", detector="haar", progress=False)  # an empty folder: nothing to crop
    assert said[0].filename == __file__
