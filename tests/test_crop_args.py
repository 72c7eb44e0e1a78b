"""Bad arguments to crop_video and crop_folder fail at once with one clear message, before anything is written.

Issue 14: `crop_video(every=0)` died with ZeroDivisionError after probing the
video, and Haar with `size<=0` saved whole pictures as "kept" crops
(cv2.warpAffine reads a (0, 0) size as "the size of the input").
"""

import pytest

from helpers.faces import crop_folder, crop_video, haar_available


@pytest.fixture
def photos(samples, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "grace.jpg").write_bytes(samples["grace_hopper.jpg"].read_bytes())
    return folder


def test_every_zero_is_a_clear_error_not_a_zero_division(samples, tmp_path):
    out = tmp_path / "faces"
    with pytest.raises(ValueError, match=r"every must be a whole number >= 1 .*got 0"):
        crop_video(samples["man.mp4"], out, every=0, detector="haar", progress=False)
    assert not out.exists()


@pytest.mark.parametrize("size", [0, -256])
def test_haar_with_no_crop_size_writes_no_whole_pictures(photos, tmp_path, size):
    if not haar_available():
        pytest.skip("this OpenCV has no Haar cascades")
    out = tmp_path / "faces"
    with pytest.raises(ValueError, match=r"size must be a whole number >= 8"):
        crop_folder(photos, out, size=size, detector="haar", progress=False)
    assert not out.exists()


@pytest.mark.parametrize("bad, name", [
    (dict(every=-1), "every"), (dict(every=1.5), "every"), (dict(batch=0), "batch"), (dict(max_frames=0), "max_frames"),
    (dict(size=7), "size"), (dict(size=256.0), "size"), (dict(margin=-0.1), "margin"), (dict(margin=3), "margin"),
    (dict(min_face=-1), "min_face"), (dict(blur=-5), "blur"), (dict(dedupe=-1), "dedupe"),
    (dict(min_score=float("nan")), "min_score"), (dict(detector="yunet"), "detector"), (dict(multi="first"), "multi"),
])
def test_crop_video_checks_every_numeric_argument_first(samples, tmp_path, bad, name):
    out = tmp_path / "faces"
    with pytest.raises(ValueError, match=name):
        crop_video(samples["man.mp4"], out, **dict(dict(detector="haar", progress=False), **bad))
    assert not out.exists()


@pytest.mark.parametrize("bad, name", [
    (dict(limit=0), "limit"), (dict(limit=-2), "limit"), (dict(size=-1), "size"), (dict(blur="high"), "blur"),
    (dict(dedupe=2.5), "dedupe"), (dict(min_face=None), "min_face"),
])
def test_crop_folder_checks_its_arguments_first(photos, tmp_path, bad, name):
    out = tmp_path / "faces"
    with pytest.raises(ValueError, match=name):
        crop_folder(photos, out, **dict(dict(detector="haar", progress=False), **bad))
    assert not out.exists()


def test_good_edge_values_are_accepted(photos, tmp_path):
    report = crop_folder(photos, tmp_path / "faces", size=8, margin=0, min_face=0, blur=None, dedupe=0, limit=1,
                         detector="auto", refine=False, progress=False)
    assert report.sources == 1
