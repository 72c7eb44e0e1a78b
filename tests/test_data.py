import csv

import cv2
import numpy as np
import pytest

from helpers.data import list_faces, load_faces


def write_face(path, value):
    cv2.imwrite(str(path), np.full((32, 32, 3), value, np.uint8))


def test_faces_csv_decides_what_is_kept(tmp_path):
    for i in range(3):
        write_face(tmp_path / f"f{i}.png", 40 * i)
    with open(tmp_path / "faces.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["face", "status"])
        w.writeheader()
        w.writerows([{"face": "f0.png", "status": "kept"}, {"face": "f1.png", "status": "rejected:blur"}, {"face": "f2.png", "status": "kept"}])
    assert [p.name for p in list_faces(tmp_path)] == ["f0.png", "f2.png"]
    faces = load_faces(tmp_path, 16)
    assert faces.shape == (2, 16, 16, 3) and faces.dtype == np.uint8 and faces[1].max() == 80


def test_folder_without_index_is_read_whole_and_bad_files_skipped(tmp_path):
    write_face(tmp_path / "a.png", 10)
    (tmp_path / "b.png").write_bytes(b"not an image")
    assert load_faces(tmp_path, 32).shape == (1, 32, 32, 3)


def test_missing_folder_says_which_notebook_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="notebook 02"):
        list_faces(tmp_path / "nope")
