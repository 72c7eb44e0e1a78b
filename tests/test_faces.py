"""helpers.faces on real faces: detection, alignment, odd image files, filters, faces.csv and re-runs.

Boxes in HAND_BOXES were drawn by hand on the portraits and checked by eye
(hairline or cap brim to chin, cheek to cheek).
"""

import csv
import json
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from helpers.data import list_faces
from helpers.faces import (
    COLUMNS, Face, ImageError, align_face, blur_score, crop_folder, crop_video, haar_available, hamming, load_image,
    make_detector, phash, read_index, template, transform_points, warp,
)
from helpers.video import VideoError, iter_frames

HAND_BOXES = {"grace_hopper.jpg": [165, 125, 355, 335], "astronaut.png": [178, 65, 270, 170]}


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def mtcnn():
    return make_detector("mtcnn")


@pytest.fixture(scope="module")
def detectors(mtcnn):
    if not haar_available():  # OpenCV 5: "haar" is MTCNN there (tests/test_faces_opencv5.py)
        return {"mtcnn": mtcnn}
    return {"mtcnn": mtcnn, "haar": make_detector("haar")}


def detector_or_skip(detectors, name):
    if name not in detectors:
        pytest.skip(f"this OpenCV ({cv2.__version__}) has no Haar cascades")
    return detectors[name]


@pytest.fixture(scope="module")
def woman_frames(samples):
    """Every 4th frame of the woman video (118 frames) - every frame would triple the time and test nothing new."""
    return [f.image for f in iter_frames(samples["woman.mp4"], every=4)]


def jpeg(path, rgb, quality=95, exif=None):
    image = Image.fromarray(rgb)
    if exif is not None:
        image.save(path, quality=quality, exif=exif)
    else:
        image.save(path, quality=quality)
    return path


# --- detection ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mtcnn", "haar"])
@pytest.mark.parametrize("portrait", sorted(HAND_BOXES))
def test_detector_finds_the_face_in_a_portrait(detectors, samples, name, portrait):
    faces = detector_or_skip(detectors, name).detect(load_image(samples[portrait]))
    assert faces, f"{name} found no face in {portrait}"
    face = faces[0]
    assert face.box.dtype == np.float32 and face.box.shape == (4,)
    assert iou(face.box, HAND_BOXES[portrait]) >= 0.5
    if name == "haar":
        assert face.landmarks is None
    else:
        lm = face.landmarks
        assert lm.shape == (5, 2) and lm.dtype == np.float32
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # left = smaller x, for eyes and mouth corners
        assert lm[:2, 1].max() < lm[2, 1] < lm[3:, 1].min()  # eyes above the nose above the mouth


@pytest.mark.parametrize("name", ["mtcnn", "haar"])
def test_detector_finds_the_woman_in_90_percent_of_frames(detectors, woman_frames, name):
    found = []
    for i in range(0, len(woman_frames), 8):  # batches of same-size frames
        found += detector_or_skip(detectors, name).detect_batch(woman_frames[i:i + 8])
    assert len(found) == len(woman_frames)
    hit = sum(bool(faces) for faces in found) / len(found)
    assert hit >= 0.9, f"{name} found the face in only {hit:.0%} of the frames"


def test_bad_arguments_fail_with_a_clear_message(mtcnn, tmp_path):
    with pytest.raises(ValueError, match="choose from"):
        make_detector("yunet")
    with pytest.raises(ValueError, match="RGB uint8"):
        mtcnn.detect(np.zeros((64, 64), np.float32))
    with pytest.raises(VideoError):
        crop_video(tmp_path / "missing.mp4", tmp_path / "out")
    with pytest.raises(FileNotFoundError):
        crop_folder(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(ValueError, match="multi"):
        crop_folder(tmp_path, tmp_path / "out", multi="first", detector="haar")


# --- alignment ----------------------------------------------------------------------------


def eyes_in_crop(mtcnn, crop):
    faces = mtcnn.detect(crop)
    assert faces, "MTCNN finds no face in the aligned crop"
    return faces[0].landmarks[:2]


@pytest.mark.parametrize("portrait", sorted(HAND_BOXES))
def test_aligned_portrait_has_level_eyes_at_the_template(mtcnn, samples, portrait):
    image = load_image(samples[portrait])
    crop = align_face(image, mtcnn.detect(image)[0], size=256, refine=mtcnn)
    assert crop.image.shape == (256, 256, 3) and crop.image.dtype == np.uint8
    eyes = eyes_in_crop(mtcnn, crop.image)  # landmarks found again, on the crop
    assert abs(eyes[1, 1] - eyes[0, 1]) <= 2.0
    assert np.abs(eyes - template(256)[:2]).max() <= 4.0


def test_aligned_video_frames_have_level_eyes_at_the_template(mtcnn, woman_frames):
    """Every 10th test frame (12 frames, including blinks and a hand on the face): all within 4 px of the
    template, all but an occasional frame level within 2 px, none tilted by more than 3 px."""
    tilts, errors = [], []
    for image in woman_frames[::10]:
        crop = align_face(image, mtcnn.detect(image)[0], size=256, refine=mtcnn)
        eyes = eyes_in_crop(mtcnn, crop.image)
        tilts.append(abs(eyes[1, 1] - eyes[0, 1]))
        errors.append(np.abs(eyes - template(256)[:2]).max())
    assert max(errors) <= 4.0
    assert max(tilts) <= 3.0 and np.mean(np.array(tilts) <= 2.0) >= 0.8


def test_landmarks_land_on_the_template_without_refinement():
    """Pure geometry: a rolled, shifted, scaled face has its eyes put exactly on the template's eyes."""
    angle = np.radians(25)
    rot = 80 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    lm = (template(256) - 128) @ rot.T / 60 + [300, 200]
    image = np.zeros((400, 600, 3), np.uint8)
    for size in (64, 256):
        crop = align_face(image, Face(np.array([0, 0, 1, 1], np.float32), 1.0, lm.astype(np.float32)), size=size)
        assert np.allclose(transform_points(crop.matrix, lm[:2]), template(size)[:2], atol=1e-6)


def test_matrix_round_trip(mtcnn, woman_frames):
    image = woman_frames[20]
    face = mtcnn.detect(image)[0]
    crop = align_face(image, face, size=256, refine=mtcnn)
    again = cv2.warpAffine(image, crop.matrix, (256, 256), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(again.astype(int) - crop.image).max() <= 1  # the matrix alone reproduces the crop
    small = warp(image, crop.matrix * (128 / 256), 128)  # scaling the matrix gives a smaller crop ...
    resized = cv2.resize(crop.image, (128, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - resized).mean() < 5  # ... like the big one resized
    inverse = cv2.invertAffineTransform(crop.matrix)
    crop_eyes = eyes_in_crop(mtcnn, crop.image)
    assert np.abs(transform_points(inverse, crop_eyes) - face.landmarks[:2]).max() <= 6.0  # eyes map back onto eyes
    pasted = cv2.warpAffine(crop.image, inverse, image.shape[1::-1])
    x0, y0, x1, y1 = face.box.astype(int) + [20, 20, -20, -20]
    assert np.abs(pasted[y0:y1, x0:x1].astype(int) - image[y0:y1, x0:x1]).mean() < 6  # paste-back lands in place
    plain = align_face(image, face, size=256)  # without the second look the template eyes map back exactly
    back = transform_points(cv2.invertAffineTransform(plain.matrix), template(256)[:2])
    assert np.allclose(back, face.landmarks[:2], atol=1e-3)


def test_face_without_landmarks_gets_a_centred_square_crop(samples):
    image = load_image(samples["grace_hopper.jpg"])
    box = np.array(HAND_BOXES["grace_hopper.jpg"], np.float32)
    crop = align_face(image, Face(box, 1.0, None), size=128)
    centre = transform_points(crop.matrix, [[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]])[0]
    assert crop.image.shape == (128, 128, 3)
    assert abs(centre[0] - 64) < 1 and abs(crop.matrix[0, 1]) < 1e-9 and crop.matrix[0, 0] == crop.matrix[1, 1]


# --- reading images -----------------------------------------------------------------------


@pytest.mark.parametrize("orientation,k", [(3, 2), (6, 1), (8, 3)])
def test_exif_orientation_is_applied(samples, tmp_path, orientation, k):
    upright = load_image(samples["grace_hopper.jpg"])
    exif = Image.Exif()
    exif[0x0112] = orientation  # the camera stored the pixels turned; the tag says how to turn them back
    path = jpeg(tmp_path / "turned.jpg", np.ascontiguousarray(np.rot90(upright, k)), exif=exif)
    reference = load_image(jpeg(tmp_path / "straight.jpg", upright))
    loaded = load_image(path)
    assert loaded.shape == upright.shape
    assert np.abs(loaded.astype(int) - reference).mean() < 3


def test_exif_rotated_copy_gives_the_same_upright_crop(mtcnn, samples, tmp_path):
    upright = load_image(samples["grace_hopper.jpg"])
    folder = tmp_path / "photos"
    folder.mkdir()
    jpeg(folder / "a_straight.jpg", upright)
    exif = Image.Exif()
    exif[0x0112] = 6
    jpeg(folder / "b_turned.jpg", np.ascontiguousarray(np.rot90(upright, 1)), exif=exif)
    report = crop_folder(folder, tmp_path / "faces", detector=mtcnn, dedupe=None, progress=False)
    assert report.kept == 2
    rows = {r["source"]: r for r in read_index(tmp_path / "faces")}
    a, b = (cv2.imread(str(tmp_path / "faces" / rows[n]["face"])) for n in ("a_straight.jpg", "b_turned.jpg"))
    assert np.abs(a.astype(int) - b).mean() < 4


def test_folder_with_broken_files_counts_them_as_skipped(mtcnn, samples, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(samples["grace_hopper.jpg"], folder / "good.jpg")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture, just text with a .jpg name\n")
    data = samples["grace_hopper.jpg"].read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "manifest.csv").write_text("name\n")  # not an image name: ignored, not counted
    report = crop_folder(folder, tmp_path / "faces", detector=mtcnn, progress=False)
    assert sorted(name for name, _ in report.skipped) == ["empty.jpg", "notes.jpg", "truncated.jpg"]
    assert report.kept == 1 and report.rejected["unreadable"] == 3
    assert "3" in str(report) and "truncated.jpg" in str(report)
    with pytest.raises(ImageError, match="truncated"):
        load_image(folder / "truncated.jpg")
    statuses = {r["source"]: r["status"] for r in read_index(tmp_path / "faces")}
    assert statuses == {"good.jpg": "kept", "empty.jpg": "rejected:unreadable", "notes.jpg": "rejected:unreadable",
                        "truncated.jpg": "rejected:unreadable"}


@pytest.fixture(scope="module")
def odd_modes(samples, tmp_path_factory):
    """The astronaut as RGBA, 16-bit grey, 16-bit colour, CMYK, grey JPEG and palette PNG."""
    folder = tmp_path_factory.mktemp("modes")
    rgb = load_image(samples["astronaut.png"])
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:40, :, 3] = 0  # a transparent band at the top
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    gray16 = (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "gray16.png"), gray16)
    cv2.imwrite(str(folder / "rgb16.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    Image.fromarray(rgb).convert("L").save(folder / "gray.jpg", quality=95)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette.png")
    return folder, rgb


def test_odd_image_modes_load_as_rgb(odd_modes):
    folder, rgb = odd_modes
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(int)
    for path in sorted(folder.iterdir()):
        image = load_image(path)
        assert image.shape == rgb.shape and image.dtype == np.uint8, path.name
        body = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[40:].astype(int)
        assert np.abs(body - gray[40:]).mean() < 12, path.name  # same picture, not garbage or inverted
    assert (load_image(folder / "rgba.png")[:40] == 255).all()  # transparency becomes white


def test_odd_image_modes_give_faces_and_are_near_duplicates(mtcnn, odd_modes, tmp_path):
    folder, _ = odd_modes
    report = crop_folder(folder, tmp_path / "all", detector=mtcnn, dedupe=None, progress=False)
    assert report.kept == 6 and not report.skipped
    report = crop_folder(folder, tmp_path / "dedupe", detector=mtcnn, dedupe=4, progress=False)
    assert report.kept == 1 and report.rejected["duplicate"] == 5  # one face, six files: kept once


# --- filters ------------------------------------------------------------------------------


def test_blur_size_and_several_faces_filters(mtcnn, samples, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    sharp = load_image(samples["grace_hopper.jpg"])
    jpeg(folder / "sharp.jpg", sharp)
    jpeg(folder / "blurred.jpg", cv2.GaussianBlur(sharp, (0, 0), 6))
    jpeg(folder / "small.jpg", cv2.resize(sharp, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA))
    shutil.copy(samples["multi_face.jpg"], folder / "group.jpg")
    out = tmp_path / "faces"
    crop_folder(folder, out, detector=mtcnn, min_face=80, blur=20, multi="largest", dedupe=None, progress=False)
    rows = read_index(out)
    by_source = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append(r["status"])
    assert by_source["sharp.jpg"] == ["kept"]
    assert by_source["blurred.jpg"] == ["rejected:blurry"]
    assert by_source["small.jpg"] == ["rejected:too_small"]
    assert by_source["group.jpg"].count("kept") == 1 and "rejected:not_largest" in by_source["group.jpg"]
    blurs = {r["source"]: float(r["blur"]) for r in rows}
    assert blurs["blurred.jpg"] < 20 < blurs["sharp.jpg"]
    for policy, kept in (("all", 4), ("reject", 0)):
        group = tmp_path / policy
        report = crop_folder(folder, group, detector=mtcnn, min_face=80, multi=policy, dedupe=None, progress=False)
        statuses = [r["status"] for r in read_index(group) if r["source"] == "group.jpg"]
        assert statuses.count("kept") >= kept if policy == "all" else statuses.count("kept") == 0
        if policy == "reject":
            assert "rejected:several_faces" in statuses and report.rejected["several_faces"] >= 2


def test_perceptual_hash_tells_copies_from_other_faces(samples):
    grace = load_image(samples["grace_hopper.jpg"])
    ok, data = cv2.imencode(".jpg", cv2.resize(grace, None, fx=0.6, fy=0.6), [cv2.IMWRITE_JPEG_QUALITY, 50])
    copy = cv2.resize(cv2.imdecode(data, cv2.IMREAD_COLOR), grace.shape[1::-1])
    other = load_image(samples["astronaut.png"])
    assert hamming(phash(grace), phash(copy)) <= 4
    assert hamming(phash(grace), phash(other)) > 16
    assert blur_score(cv2.GaussianBlur(grace, (0, 0), 4)) < blur_score(grace) / 4


# --- faces.csv, re-runs -------------------------------------------------------------------


def test_crop_video_writes_faces_csv_and_a_rerun_skips_what_is_done(mtcnn, samples, tmp_path):
    out = tmp_path / "man"
    first = crop_video(samples["man.mp4"], out, every=8, max_frames=4, detector=mtcnn, dedupe=None, progress=False)
    assert first.frames == 4 and first.kept == 4
    rest = crop_video(samples["man.mp4"], out, every=8, detector=mtcnn, dedupe=None, progress=False)
    assert rest.done_before == 4 and rest.frames == 5  # an interrupted run continues where it stopped
    again = crop_video(samples["man.mp4"], out, every=8, detector=mtcnn, dedupe=None, progress=False)
    assert again.frames == 0 and again.done_before == 9
    with open(out / "faces.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert set(COLUMNS) <= set(reader.fieldnames)
    assert [int(r["frame"]) for r in rows] == list(range(0, 72, 8))
    for r in rows:
        assert r["status"] == "kept" and r["source"] == "man.mp4"
        image = cv2.imread(str(out / r["face"]))
        assert image.shape == (256, 256, 3)
        assert len(json.loads(r["matrix"])) == 6 and len(json.loads(r["landmarks"])) == 10
        assert float(r["blur"]) > 0 and len(r["phash"]) == 16 and 0 <= float(r["outside"]) < 0.5
    assert len(list_faces(out)) == 9  # helpers.data reads the same file
