"""Reading faces.csv back the way lesson 02 shows it: reasons, the kept twin of a duplicate, counts and pictures.

The face folder here is written by hand (no detector), so every expected value is known.
"""

import json

import cv2
import numpy as np
import pytest

from helpers.faces import (
    ImageError, draw_template, face_grid, image_files, load_image, plot_sharpness, rejected_by_reason,
    rejected_examples, rejection_reason, row_face, status_summary, twin_of, write_index, write_messy_photos,
)


def face_png(folder, name, shade):
    cv2.imwrite(str(folder / name), np.full((32, 32, 3), shade, np.uint8))


@pytest.fixture
def folder(tmp_path):
    """Three kept faces, two duplicates (of k1 and of k2), one blurry face and a frame without a face."""
    rows = [
        dict(face="k0.png", status="kept", phash="0000000000000000", blur="50.0"),
        dict(face="k1.png", status="kept", phash="00000000000000ff", blur="60.0"),
        dict(face="k2.png", status="kept", phash="ffffffff00000000", blur="70.0"),
        dict(face="d1.png", status="rejected:duplicate", phash="00000000000000fe", blur="55.0"),  # 1 bit from k1
        dict(face="d2.png", status="rejected:duplicate", phash="fffffff700000000", blur="65.0"),  # 1 bit from k2
        dict(face="b.png", status="rejected:blurry", phash="0f0f0f0f0f0f0f0f", blur="3.0"),
        dict(face="", status="rejected:no_face"),
    ]
    for i, row in enumerate(rows):
        row.update(source="clip.mp4", frame=str(i))
        if row["face"]:
            face_png(tmp_path, row["face"], 40 * i)
    write_index(tmp_path, rows)
    return tmp_path


def test_rejections_are_grouped_by_reason_and_frames_without_a_face_have_no_picture(folder):
    groups = rejected_by_reason(folder)
    assert list(groups) == ["blurry", "duplicate"]
    assert [r["face"] for r in groups["duplicate"]] == ["d1.png", "d2.png"]
    assert rejection_reason({"status": "rejected:too_small"}) == "too_small"
    assert rejection_reason({"status": "kept"}) is None


def test_a_duplicate_is_shown_with_the_kept_face_it_copies(folder):
    rows = {r["face"]: r for r in rejected_by_reason(folder)["duplicate"]}
    twin, bits = twin_of(folder, rows["d2.png"])
    assert twin["face"] == "k2.png" and bits == 1
    assert twin_of(folder, {"face": "x.png", "phash": ""}) is None
    examples = rejected_examples({"clip": folder}, per_reason=1)
    assert [(e.reason, e.domain) for e in examples] == [("blurry", "clip"), ("duplicate", "clip")]
    dup = examples[1]
    assert dup.row["face"] == "d1.png" and dup.twin["face"] == "k1.png" and dup.bits == 1
    assert examples[0].twin is None
    assert len(rejected_examples({"a": folder, "b": folder}, per_reason=3)) == 2 + 3  # two blurry, four duplicates capped at three


def test_counts_read_as_one_line(folder):
    assert status_summary(folder) == "kept    3   rejected:blurry 1  rejected:duplicate 2  rejected:no_face 1"


def test_a_row_gives_back_the_detected_face():
    box, landmarks = [10.0, 20.0, 110.0, 140.0], np.arange(10, dtype=float).reshape(5, 2)
    face = row_face({"box": json.dumps(box), "score": "0.99", "landmarks": json.dumps(landmarks.tolist())})
    assert face.box.tolist() == box and face.score == pytest.approx(0.99)
    assert np.allclose(face.landmarks, landmarks)
    assert row_face({"box": json.dumps(box), "score": "1", "landmarks": ""}).landmarks is None  # Haar: no landmarks


def test_pictures_of_a_folder(folder):
    strip = face_grid(folder, rejected_by_reason(folder)["duplicate"], count=16, side=24)
    assert strip.dtype == np.uint8 and strip.shape[0] < 40  # one row of small faces
    with pytest.raises(ValueError, match="No faces to show"):
        face_grid(folder, [])
    marked = draw_template(np.zeros((256, 256, 3), np.uint8), 0.2)
    dots, _ = cv2.connectedComponents(marked.any(-1).astype(np.uint8))
    assert dots - 1 == 5  # the template's five points, nothing else
    fig = plot_sharpness({"clip": folder}, threshold=20.0)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["clip"]
    assert any(list(line.get_xdata()) == [20.0, 20.0] for line in ax.get_lines())  # the filter's threshold
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_the_messy_photo_folder_holds_four_good_photos_and_three_broken_files(samples, tmp_path):
    (tmp_path / "demo" / "faces").mkdir(parents=True)
    photos = write_messy_photos(tmp_path / "demo", samples)
    assert not (tmp_path / "demo" / "faces").exists()  # a fresh demo each run
    good, broken = [], []
    for path in image_files(photos):
        try:
            good.append((path.name, load_image(path)))
        except ImageError:
            broken.append(path.name)
    assert sorted(broken) == ["actually_html.jpg", "cut_off.jpg", "empty.jpg"]
    grace = load_image(samples["grace_hopper.jpg"])
    assert dict(good)["sideways_phone_photo.jpg"].shape == grace.shape  # turned upright by its EXIF tag
    assert len(good) == 4 and all(im.ndim == 3 and im.dtype == np.uint8 for _, im in good)
