"""The swap-success number: an independent recognizer must take real faces for their own person,
refuse a "swap" that is only the input, and the number must be skipped (not fail) where it cannot run."""

import importlib.util

import numpy as np
import pytest

from helpers import identity

needs_recognizer = pytest.mark.skipif(identity.unavailable() is not None, reason=str(identity.unavailable()))


@pytest.fixture(scope="module")
def people(samples, tmp_path_factory):
    """Aligned crops of the two sample people (Haar, every few frames: fast), as gallery and held-out halves."""
    from helpers.data import load_faces
    from helpers.faces import crop_video

    root = tmp_path_factory.mktemp("faces")
    faces = {}
    for key, name, every in (("A", "woman", 32), ("B", "man", 6)):
        crop_video(samples[f"{name}.mp4"], root / name, size=256, every=every, detector="haar", refine=False,
                   dedupe=None, progress=False)
        faces[key] = load_faces(root / name, 128, progress=False)
    return {k: f[::2] for k, f in faces.items()}, {k: f[1::2] for k, f in faces.items()}


@pytest.fixture(scope="module")
def judge(people):
    return identity.Judge(people[0])


@needs_recognizer
def test_unswapped_faces_are_taken_for_themselves_and_not_for_the_other(people, judge):
    gallery, held = people
    for me, other in (("A", "B"), ("B", "A")):
        mine = judge.row(me, held[me], me)
        assert mine.faces >= 5 and mine.accepted >= 0.9 and mine.nearer == 1.0
        assert mine.distance < identity.THRESHOLD
        assert judge.row(f"{me} as {other}", held[me], other).accepted == 0.0


@needs_recognizer
def test_a_swapper_that_returns_its_input_scores_zero(people, judge):
    _, held = people
    report = identity.swap_success(lambda faces, to: faces, held, judge=judge)
    assert report.row("A->B").accepted == 0.0 and report.row("B->A").accepted == 0.0
    assert report.worst_swap == 0.0
    assert report.row("A").accepted >= 0.9 and report.row("B->B").accepted >= 0.9  # the sanity rows hold
    assert "takes 0% of A's held-out faces, swapped, for B" in report.sentence() and "as a check" in report.sentence()


@needs_recognizer
def test_a_perfect_swapper_scores_full_marks_even_at_64_px(people, judge):
    """A 'swap' that returns real held-out photos of the target, shrunk to the laptop model's 64 px."""
    import cv2

    _, held = people
    n = min(len(held["A"]), len(held["B"]))
    shrink = lambda f: np.stack([cv2.resize(x, (64, 64), interpolation=cv2.INTER_AREA) for x in f])  # noqa: E731
    report = identity.swap_success(lambda faces, to: shrink(held[to][:n]), {k: f[:n] for k, f in held.items()}, judge=judge,
                                   sanity=False)
    assert report.worst_swap >= 0.9
    row = report.log_row(120)
    assert row["step"] == 120 and float(row["taken_A2B"]) >= 0.9 and "distance_B2A" in row


def test_without_dlib_the_number_is_skipped_in_one_sentence(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "dlib" else real(name, *a))
    reason = identity.unavailable()
    assert reason.startswith("The swap-success number is skipped") and 'polyjuice-helpers[identity]' in reason
    with pytest.raises(RuntimeError, match="skipped"):
        identity.Recognizer()


def test_bad_faces_are_refused_with_a_sentence():
    if identity.unavailable():
        pytest.skip(identity.unavailable())
    with pytest.raises(ValueError, match="uint8"):
        identity.Recognizer().embed(np.zeros((2, 64, 64), np.float32))


@needs_recognizer
def test_training_logs_swap_success_beside_the_loss(people, tmp_path):
    from helpers.swap import SwapConfig, train_swap
    from helpers.viz import read_log

    a, b = (np.concatenate([people[0][k], people[1][k]]) for k in "AB")
    cfg = SwapConfig.quick(steps=4, identity_every=2, identity_faces=3, log_every=2, preview_every=2, save_every=4)
    train_swap(cfg, a, b, tmp_path / "run", device="cpu", progress=False)
    rows = read_log(tmp_path / "run" / "identity.csv")
    assert rows["step"].tolist() == [2, 4]
    assert all(0 <= v <= 1 for key in ("taken_A2B", "taken_B2A", "nearer_A2B") for v in rows[key])
    assert (tmp_path / "run" / "loss.png").is_file()


def test_without_the_recognizer_training_says_so_once_and_goes_on(people, tmp_path, monkeypatch, capsys):
    from helpers.swap import SwapConfig, train_swap

    monkeypatch.setattr(identity, "unavailable", lambda: "The swap-success number is skipped: dlib is not installed.")
    a, b = (np.concatenate([people[0][k], people[1][k]]) for k in "AB")
    run = train_swap(SwapConfig.quick(steps=2, identity_every=1), a, b, tmp_path / "run", device="cpu", progress=False)
    assert run.step == 2 and not (tmp_path / "run" / "identity.csv").exists()
    assert capsys.readouterr().out.count("swap-success number is skipped") == 1
