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


def test_one_crop_config_serves_videos_and_photos_and_keywords_override_it(samples, photos, tmp_path):
    from helpers.faces import CropConfig, read_face, read_index

    config = CropConfig(size=64, detector="auto", refine=False, blur=None)
    crop_video(samples["man.mp4"], tmp_path / "video", config, every=24, progress=False)
    crop_folder(photos, tmp_path / "photos", config, size=32, progress=False)
    video_faces = [r["face"] for r in read_index(tmp_path / "video") if r["face"]]
    photo_faces = [r["face"] for r in read_index(tmp_path / "photos") if r["face"]]
    assert video_faces and photo_faces

    assert read_face(tmp_path / "video", video_faces[0]).shape == (64, 64, 3)
    assert read_face(tmp_path / "photos", photo_faces[0]).shape == (32, 32, 3)  # the override won
    assert config.size == 64  # and did not change the shared config


def test_crop_config_checks_at_once_with_the_messages_of_the_crop_calls():
    from helpers.faces import CropConfig

    with pytest.raises(ValueError, match=r"size must be a whole number >= 8"):
        CropConfig(size=0)
    with pytest.raises(ValueError, match="multi must be one of"):
        CropConfig(multi="first")
    with pytest.raises(ValueError, match="dedupe"):
        CropConfig(dedupe="sometimes")
    assert CropConfig().dedupe_for("video") is None and CropConfig().dedupe_for("photos") == 4
    assert CropConfig(dedupe=2).dedupe_for("video") == 2 and CropConfig(dedupe=None).dedupe_for("photos") is None


def test_a_misspelt_setting_or_a_positional_size_is_a_clear_error(photos, tmp_path):
    with pytest.raises(TypeError, match=r"unknown arguments \['min_faces'\]"):
        crop_folder(photos, tmp_path / "faces", min_faces=10, progress=False)
    with pytest.raises(TypeError, match="CropConfig"):
        crop_folder(photos, tmp_path / "faces", 256, progress=False)
    assert not (tmp_path / "faces").exists()
