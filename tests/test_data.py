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


def test_require_faces_stops_with_one_sentence_naming_the_notebook(tmp_path):
    from helpers.data import require_faces
    from helpers.env import LessonStop

    with pytest.raises(LessonStop) as stop:
        require_faces(tmp_path / "selfie", lesson="02", instead="set QUICK = True to use the sample faces")
    message = str(stop.value)
    assert message == f"No kept faces in {tmp_path / 'selfie'}: run notebook 02 first, or set QUICK = True to use the sample faces."
    write_face(tmp_path / "f0.png", 10)
    with open(tmp_path / "faces.csv", "w", newline="") as f:  # every face rejected in the curation grid
        w = csv.DictWriter(f, ["face", "status"])
        w.writeheader()
        w.writerow({"face": "f0.png", "status": "rejected:by_hand"})
    with pytest.raises(LessonStop, match=r"\(1 rejected in faces.csv\): run notebook 02 first\.$"):
        require_faces(tmp_path)


def test_require_faces_passes_a_folder_with_faces(tmp_path):
    from helpers.data import require_faces

    write_face(tmp_path / "a.png", 10)
    assert require_faces(tmp_path) == tmp_path


def test_loading_many_faces_shows_progress_and_few_stay_quiet(tmp_path, capsys, monkeypatch):
    import helpers.data

    for i in range(3):
        write_face(tmp_path / f"f{i}.png", i)
    load_faces(tmp_path, 16)
    assert "loading" not in capsys.readouterr().err  # 3 faces: no bar
    monkeypatch.setattr(helpers.data, "PROGRESS_FROM", 3)  # as if the folder held thousands
    load_faces(tmp_path, 16)
    assert f"loading {tmp_path.name}" in capsys.readouterr().err
    load_faces(tmp_path, 16, progress=False)
    assert "loading" not in capsys.readouterr().err
