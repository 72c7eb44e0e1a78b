"""Training the swap on the sample identities: it learns, it resumes exactly, and the Swapper keeps its contract."""

import os
import shutil
import signal

import cv2
import numpy as np
import pytest
import torch

from helpers.checkpoint import list_checkpoints
from helpers.swap import SwapConfig, checkpoint_config, fetch_shared_checkpoint, load_swapper, train_swap
from helpers.viz import read_log


@pytest.fixture(scope="module")
def identities(samples, tmp_path_factory):
    """Aligned faces of the two sample people: A from woman.mp4, B from man.mp4."""
    from helpers.faces import crop_video

    root = tmp_path_factory.mktemp("faces")
    for name, every in (("woman", 8), ("man", 2)):  # Haar and no second look: fast; near-duplicates kept
        crop_video(samples[f"{name}.mp4"], root / name, size=256, every=every, detector="haar", refine=False, dedupe=None, progress=False)
    return root / "woman", root / "man"


def _quick(**overrides):
    settings = dict(size=32, steps=24, batch_size=8, log_every=12, preview_every=12, save_every=12, eval_faces=32, preview_faces=3)
    return SwapConfig.quick(**{**settings, **overrides})


@pytest.fixture(scope="module")
def trained(identities, tmp_path_factory):
    folder = tmp_path_factory.mktemp("swap")
    cfg = _quick()
    run = train_swap(cfg, *identities, folder, device="cpu", progress=False)
    return cfg, run


def test_short_cpu_run_lowers_the_heldout_loss_of_both_decoders(trained):
    cfg, run = trained
    assert run.step == cfg.steps and not run.interrupted
    log = read_log(run.log)
    assert list(log["step"]) == [0, 12, 24]
    for who in ("A", "B"):
        before, after = log[f"heldout_{who}"][0], log[f"heldout_{who}"][-1]
        assert after < 0.8 * before, f"decoder {who}: held-out L1 {before:.3f} -> {after:.3f}"
        assert np.isfinite(log[f"train_{who}"][1:]).all()


def test_run_leaves_previews_timelapse_plot_and_checkpoints(trained):
    cfg, run = trained
    assert [p.name for p in run.previews] == ["step-000000000.png", "step-000000012.png", "step-000000024.png"]
    grid = cv2.imread(str(run.latest_preview))
    assert grid.shape[1] > 6 * cfg.size  # six columns: A, A->A, A->B, B, B->B, B->A
    from PIL import Image

    with Image.open(run.timelapse) as gif:
        assert gif.n_frames == 3
    assert (run.folder / "loss.png").stat().st_size > 0
    assert [s for s, _ in list_checkpoints(run.folder)] == [12, 24]
    assert checkpoint_config(run.folder).model == "tiny"


def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(identities, tmp_path):
    cfg = _quick(size=32, steps=12, batch_size=4, log_every=3, preview_every=6, save_every=100, eval_faces=8)
    straight = train_swap(cfg, *identities, tmp_path / "straight", device="cpu", progress=False)

    def press_ctrl_c(step, trainer):
        if step == 5:  # mid-way between log lines and far from a scheduled save
            os.kill(os.getpid(), signal.SIGINT)

    first = train_swap(cfg, *identities, tmp_path / "resumed", device="cpu", progress=False, callback=press_ctrl_c)
    assert first.interrupted and first.step == 5
    assert [s for s, _ in list_checkpoints(tmp_path / "resumed")] == [5]
    second = train_swap(cfg, *identities, tmp_path / "resumed", device="cpu", progress=False)
    assert second.start_step == 5 and second.step == 12 and not second.interrupted

    a, b = read_log(straight.log), read_log(second.log)
    assert list(a["step"]) == list(b["step"]) == [0, 3, 6, 9, 12]
    for column in ("train_A", "train_B", "heldout_A", "heldout_B"):
        np.testing.assert_allclose(b[column], a[column], rtol=1e-5, equal_nan=True, err_msg=column)
    w1, w2 = torch.load(list_checkpoints(straight.folder)[-1][1]), torch.load(list_checkpoints(second.folder)[-1][1])
    for name, value in w1["model"].items():
        torch.testing.assert_close(w2["model"][name], value, rtol=1e-5, atol=1e-6)
    assert [p.name for p in second.previews] == [p.name for p in straight.previews]


def test_resume_refuses_a_different_model_with_a_clear_message(trained, identities, tmp_path):
    _, run = trained
    folder = tmp_path / "swap"
    shutil.copytree(run.folder, folder)
    with pytest.raises(ValueError, match="tiny model at 32 px"):
        train_swap(_quick(size=64), *identities, folder, device="cpu", progress=False)


def test_swapper_returns_the_same_kind_size_range_and_device(trained, identities):
    cfg, run = trained
    swapper = load_swapper(run.folder, "cpu")
    assert swapper.size == cfg.size and swapper.step == cfg.steps
    from helpers.data import load_faces

    faces = load_faces(identities[0], 80, limit=5)  # not the model's size: resized in and out
    as_b = swapper.swap(faces, to="B")
    assert isinstance(as_b, np.ndarray) and as_b.dtype == np.uint8 and as_b.shape == faces.shape
    assert not np.array_equal(as_b, swapper.swap(faces, to="A"))

    tensor = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1
    out = swapper.swap(tensor, to="A")
    assert out.shape == tensor.shape and out.dtype == tensor.dtype and out.device == tensor.device
    assert out.min() >= -1 and out.max() <= 1
    as_uint8 = swapper.swap(torch.from_numpy(faces), to="B")
    assert isinstance(as_uint8, torch.Tensor) and as_uint8.dtype == torch.uint8 and as_uint8.shape == faces.shape
    assert np.abs(as_uint8.numpy().astype(int) - as_b.astype(int)).max() <= 1
    assert swapper.swap(faces[:0], to="B").shape == (0, 80, 80, 3)

    with pytest.raises(ValueError, match='"A" or "B"'):
        swapper.swap(faces, to="C")
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        swapper.swap(faces[..., 0], to="B")


def test_missing_checkpoint_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="notebook 03"):
        load_swapper(tmp_path / "nothing", "cpu")


def test_start_from_a_shared_checkpoint(trained, identities, http_root, tmp_path):
    cfg, run = trained
    www, base, _ = http_root
    shutil.copyfile(list_checkpoints(run.folder)[-1][1], www / "polyjuice-swap.pt")
    folder = tmp_path / "swap"
    path = fetch_shared_checkpoint(f"{base}/polyjuice-swap.pt", folder)
    assert path.name == f"ckpt-{cfg.steps:09d}.pt"
    assert load_swapper(folder, "cpu").step == cfg.steps
    more = train_swap(_quick(steps=cfg.steps + 2), *identities, folder, device="cpu", progress=False)
    assert more.start_step == cfg.steps and more.step == cfg.steps + 2
    assert fetch_shared_checkpoint(f"{base}/polyjuice-swap.pt", folder) == list_checkpoints(folder)[-1][1]
