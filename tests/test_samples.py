import cv2
import pytest

from helpers.download import sha256_of
from helpers.samples import SAMPLES, fetch_samples


def frame_count(path):
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    cap.release()
    return n, frame


def test_all_samples_arrive_verified(samples):
    assert set(samples) == set(SAMPLES)
    for name, path in samples.items():
        sha, _ = SAMPLES[name]
        assert path.stat().st_size > 10_000
        if sha:
            assert sha256_of(path) == sha


@pytest.mark.parametrize("name, frames, width", [("woman.mp4", 472, 640), ("man.mp4", 72, None), ("megamind.avi", None, None)])
def test_videos_decode(samples, name, frames, width):
    n, frame = frame_count(samples[name])
    assert frame is not None and frame.ndim == 3
    if frames:
        assert n == frames
    if width:
        assert frame.shape[1] == width


def test_portraits_decode(samples):
    for name in ("grace_hopper.jpg", "astronaut.png"):
        img = cv2.imread(str(samples[name]))
        assert img is not None and min(img.shape[:2]) >= 500


def test_second_fetch_reuses_files(samples):
    mtimes = {n: p.stat().st_mtime_ns for n, p in samples.items()}
    again = fetch_samples(next(iter(samples.values())).parent)
    assert {n: p.stat().st_mtime_ns for n, p in again.items()} == mtimes


def test_unknown_sample_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="Unknown sample"):
        fetch_samples(tmp_path, ["nope.mp4"])


def test_first_fetch_shows_progress_and_a_second_is_silent(samples, tmp_path, capsys):
    folder = tmp_path / "fresh"
    got = fetch_samples(folder, ["grace_hopper.jpg", "man.mp4"])  # from the cache: no network
    assert sha256_of(got["man.mp4"]) == SAMPLES["man.mp4"][0]
    err = capsys.readouterr().err
    assert "sample data" in err and "2/2" in err
    fetch_samples(folder, ["grace_hopper.jpg", "man.mp4"])
    assert "sample data" not in capsys.readouterr().err
