"""U-GAT-IT training: it learns, it keeps rho in range, it resumes exactly, it follows the official schedule."""

import csv
import os
import signal

import cv2
import numpy as np
import pytest
import torch

from helpers.ugatit import (
    LOSS_NAMES,
    FaceStream,
    Trainer,
    UGATITConfig,
    ensure_faces,
    fetch_shared_checkpoint,
    load_translator,
    make_timelapse,
    official_lr,
    translate_image,
)
from helpers.video import iter_frames


def _square_crops(video, folder, every, limit, size=80):
    """Stand-in face folder: centre squares of sample frames (the trainer only needs two image domains)."""
    folder.mkdir(parents=True)
    for frame in iter_frames(video, every=every, max_frames=limit):
        h, w = frame.image.shape[:2]
        s = int(min(h, w) * 0.8)
        y, x = (h - s) // 2, (w - s) // 2
        crop = cv2.resize(frame.image[y:y + s, x:x + s], (size, size), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"{frame.index:05d}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def faces(samples, tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    _square_crops(samples["woman.mp4"], root / "woman", every=25, limit=12)
    _square_crops(samples["man.mp4"], root / "man", every=8, limit=6)
    _square_crops(samples["megamind.avi"], root / "cartoon", every=15, limit=16)
    return root


def tiny(**overrides):
    """A few-second run: 64 px, light, narrow networks, nothing but training unless asked."""
    base = dict(ch=8, n_res=2, iterations=8, holdout=0.2, log_every=1, preview_every=0, kid_every=0, save_every=1000, save_minutes=0)
    base.update(overrides)
    return UGATITConfig.quick(**base)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_short_run_at_64px_lowers_cycle_and_identity_losses(faces, tmp_path):
    torch.manual_seed(0)
    cfg = tiny(ch=16, iterations=24, log_every=4)
    trainer = Trainer(cfg, faces, tmp_path / "run", "cpu", quiet=True)
    result = trainer.train()
    assert result["stopped"] == "done" and result["step"] == 24
    rows = read_rows(trainer.log_path)
    assert [int(r["step"]) for r in rows] == [4, 8, 12, 16, 20, 24]
    for loss in ("g_cycle", "g_identity"):
        first, last = float(rows[0][loss]), np.mean([float(r[loss]) for r in rows[-2:]])
        assert last < 0.8 * first, (loss, first, last)
    # rho stays inside [0, 1] through every update
    rhos = torch.cat([p.detach().flatten() for p in trainer.rhos])
    assert rhos.min() >= 0 and rhos.max() <= 1
    assert (tmp_path / "run" / "ckpt-000000024.pt").exists()  # the end of a run is always saved


def test_rho_is_clipped_even_when_pushed_hard(faces, tmp_path):
    trainer = Trainer(tiny(iterations=3, lr=0.05), faces, tmp_path / "run", "cpu", quiet=True)
    trainer.train()
    rhos = torch.cat([p.detach().flatten() for p in trainer.rhos])
    assert rhos.min() >= 0 and rhos.max() <= 1
    assert ((rhos == 0) | (rhos == 1)).any()  # a large step does hit the bounds, and the clipper holds them


def _interrupt_at(step_to_stop):
    def callback(step, trainer):
        trainer.lrs.append((step, trainer.lr, trainer.opt_g.param_groups[0]["lr"], trainer.opt_d.param_groups[0]["lr"]))
        if step == step_to_stop:
            os.kill(os.getpid(), signal.SIGINT)  # what Jupyter's stop button sends
    return callback


@pytest.fixture(scope="module")
def straight_and_resumed(faces, tmp_path_factory):
    """The same 8-step run twice: once straight through, once stopped by Ctrl-C at step 5 and run again."""
    root = tmp_path_factory.mktemp("runs")
    cfg = tiny(log_every=2)  # step 5 is mid-way through a log interval: the pending sums must survive too

    straight = Trainer(cfg, faces, root / "straight", "cpu", quiet=True)
    straight.lrs = []
    straight.train(callback=_interrupt_at(None))

    first = Trainer(cfg, faces, root / "resumed", "cpu", quiet=True)
    first.lrs = []
    stop = first.train(callback=_interrupt_at(5))
    torch.manual_seed(1234)  # a fresh session: the global RNG is wherever it is
    second = Trainer(cfg, faces, root / "resumed", "cpu", quiet=True)
    second.lrs = []
    assert second.step == 5
    done = second.train(callback=_interrupt_at(None))
    return {"cfg": cfg, "straight": straight, "first": first, "second": second, "stop": stop, "done": done}


def test_an_interrupted_run_saves_and_continues_with_identical_losses(straight_and_resumed):
    runs = straight_and_resumed
    assert runs["stop"]["stopped"] == "interrupted" and runs["stop"]["step"] == 5
    assert runs["done"]["stopped"] == "done" and runs["done"]["step"] == 8
    straight = read_rows(runs["straight"].log_path)
    resumed = read_rows(runs["second"].log_path)
    assert [r["step"] for r in resumed] == ["2", "4", "6", "8"]
    for a, b in zip(straight, resumed):
        assert {k: a[k] for k in LOSS_NAMES + ("lr",)} == {k: b[k] for k in LOSS_NAMES + ("lr",)}
    for name, net in runs["straight"].nets.items():
        for (k, v), w in zip(net.state_dict().items(), runs["second"].nets[name].state_dict().values()):
            assert torch.equal(v, w), f"{name}.{k} differs after resume"


def test_the_learning_rate_follows_the_official_schedule_across_a_resume(straight_and_resumed):
    runs = straight_and_resumed
    cfg = runs["cfg"]
    # the official loop: constant, then subtract lr / (iterations // 2) before every step past the half
    lr, expected = cfg.lr, {}
    for step in range(1, cfg.iterations + 1):
        if step > cfg.iterations // 2:
            lr -= cfg.lr / (cfg.iterations // 2)
        expected[step] = lr
    seen = runs["first"].lrs + runs["second"].lrs
    assert [s for s, *_ in seen] == list(range(1, cfg.iterations + 1))
    for step, lr, lr_g, lr_d in seen:
        assert lr == pytest.approx(expected[step], abs=1e-12) and lr_g == lr == lr_d
    assert official_lr(cfg.iterations, cfg) == pytest.approx(0, abs=1e-15)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_steps_train_and_resume(faces, tmp_path, amp):
    """The GPU code path (autocast; grad scaler for fp16), exercised on the CPU."""
    trainer = Trainer(tiny(amp=amp, iterations=2), faces, tmp_path / "run", "cpu", quiet=True)
    assert trainer.scaler.is_enabled() == (amp == "fp16")
    trainer.train()
    rows = read_rows(trainer.log_path)
    assert all(np.isfinite(float(r[k])) for r in rows for k in LOSS_NAMES)
    with pytest.warns(UserWarning, match="iterations changed"):
        resumed = Trainer(tiny(amp=amp, iterations=3), faces, tmp_path / "run", "cpu", quiet=True)
    assert resumed.step == 2 and resumed.scaler.state_dict() == trainer.scaler.state_dict()


def test_the_data_order_is_a_function_of_the_step():
    images = torch.arange(7 * 3 * 10 * 10, dtype=torch.int64).reshape(7, 3, 10, 10).to(torch.uint8)
    a, b = FaceStream(images, 8, 2, seed=3, stream=0), FaceStream(images, 8, 2, seed=3, stream=0)
    steps = [5, 1, 9, 2]
    assert all(torch.equal(a.batch(s), b.batch(s)) for s in steps)
    first_epoch = sum((a.indices(s) for s in range(1, 4)), []) + a.indices(4)[:1]
    assert sorted(first_epoch) == list(range(7))  # every face once per epoch


def test_reference_mode_computes_the_same_generator_losses(faces, tmp_path):
    """Ours (detached, batched) and the official step agree on everything that does not depend on the D update."""
    losses = {}
    for ref in (False, True):
        torch.manual_seed(0)
        trainer = Trainer(tiny(reference_mode=ref, iterations=1), faces, tmp_path / f"run{ref}", "cpu", quiet=True)
        trainer.train()
        losses[ref] = read_rows(trainer.log_path)[0]
    for k in ("g_cycle", "g_identity", "g_cam"):
        assert float(losses[False][k]) == pytest.approx(float(losses[True][k]), rel=1e-4), k
    assert float(losses[False]["d_loss"]) == pytest.approx(float(losses[True]["d_loss"]), rel=0.05)


def test_the_fast_step_is_the_official_step(faces, tmp_path):
    """From the same weights and batches, fast steps (float32) give the official steps' losses and spectral-norm state.

    They once did not: the batched discriminator call ran one spectral-norm power
    iteration where the official two calls run two (D loss 8.857 vs 8.786 here).
    Weights are not compared: Adam's first steps turn rounding-level gradient
    differences on near-zero gradients into whole steps of size lr.
    """
    runs = {}
    for ref in (False, True):
        trainer = Trainer(tiny(reference_mode=ref, amp="off"), faces, tmp_path / f"run{ref}", "cpu", resume=False, quiet=True)
        losses = [trainer.update(trainer.stream_a.batch(s), trainer.stream_b.batch(s)) for s in (1, 2)]
        power = {k: v.clone() for k, v in trainer.nets.state_dict().items() if k.endswith(("weight_u", "weight_v"))}
        runs[ref] = losses, power
    torch.testing.assert_close(runs[False][0][0], runs[True][0][0], rtol=1e-5, atol=1e-5)  # d_loss, g_loss and its terms
    torch.testing.assert_close(runs[False][0][1], runs[True][0][1], rtol=1e-3, atol=1e-4)  # the second step, from the updated weights
    for name, official in runs[True][1].items():
        torch.testing.assert_close(runs[False][1][name], official, rtol=0, atol=1e-4, msg=name)


def test_samples_are_drawn_without_gradients_and_show_cam_heatmaps(faces, tmp_path, monkeypatch):
    monkeypatch.setenv("POLYJUICE_OFFLINE", "1")
    trainer = Trainer(tiny(iterations=2, preview_every=2, kid_every=2, kid_subsets=5), faces, tmp_path / "run", "cpu", quiet=True)
    grad_modes = []
    hook = trainer.nets["genA2B"].register_forward_hook(lambda m, i, o: grad_modes.append((m.training, torch.is_grad_enabled())))
    before = {k: v.clone() for k, v in trainer.nets["disGA"].state_dict().items()}
    path = trainer.sample()
    hook.remove()
    assert grad_modes and all(mode == (False, False) for mode in grad_modes)
    assert all(torch.equal(v, trainer.nets["disGA"].state_dict()[k]) for k, v in before.items())
    grid = cv2.imread(str(path))
    assert grid.shape[0] == 7 * 64  # input, CAM, identity, CAM, translation, CAM, cycle
    trainer.train()
    kid = read_rows(trainer.kid_path)
    assert list(kid[0])[:2] == ["step", "kid_onet_fallback"]  # offline: the labelled fallback features
    assert np.isfinite(float(kid[0]["kid_onet_fallback"]))
    assert float(kid[0]["kid_onet_fallback_untranslated"]) == pytest.approx(trainer.kid_untranslated(), rel=1e-5)  # the line fakes must get under
    assert make_timelapse(trainer.run_dir / "timelapse").stat().st_size > 0


def test_translator_keeps_the_face_contract(faces, tmp_path):
    trainer = Trainer(tiny(iterations=1), faces, tmp_path / "run", "cpu", quiet=True)
    trainer.train()
    translator = load_translator(tmp_path / "run", "cpu")
    crops = np.random.default_rng(0).integers(0, 255, (3, 100, 100, 3), dtype=np.uint8)
    out = translator.translate(crops)
    assert out.dtype == np.uint8 and out.shape == crops.shape
    x = torch.rand(2, 3, 48, 48) * 2 - 1
    y = load_translator(tmp_path / "run", "cpu", direction="B2A").translate(x)
    assert y.shape == x.shape and y.dtype == x.dtype and y.abs().max() <= 1
    with pytest.raises(ValueError, match="uint8"):
        translator.translate(crops.astype(np.float32))
    with pytest.raises(FileNotFoundError, match="notebook 04"):
        load_translator(tmp_path / "empty_folder_that_is_missing", "cpu")


def test_a_run_folder_with_other_networks_is_refused(faces, tmp_path):
    Trainer(tiny(iterations=1), faces, tmp_path / "run", "cpu", quiet=True).train()
    with pytest.raises(ValueError, match="different networks"):
        Trainer(tiny(iterations=1, ch=16), faces, tmp_path / "run", "cpu", quiet=True)


def test_translate_image_finds_translates_and_pastes_back_a_portrait(faces, samples, tmp_path):
    trainer = Trainer(tiny(iterations=1), faces, tmp_path / "run", "cpu", quiet=True)
    trainer.train()
    rgb = cv2.cvtColor(cv2.imread(str(samples["grace_hopper.jpg"])), cv2.COLOR_BGR2RGB)
    result = translate_image(rgb, load_translator(tmp_path / "run", "cpu"), size=128)
    assert result.crops.shape == result.translated.shape == (1, 128, 128, 3)
    assert result.image.shape == rgb.shape and result.image.dtype == np.uint8
    changed = np.abs(result.image.astype(int) - rgb).sum(-1) > 0
    assert 0.02 < changed.mean() < 0.6  # the face, not the whole picture
    assert not changed[:10, :10].any()
    with pytest.raises(ValueError, match="uint8"):
        translate_image(rgb.astype(np.float32), load_translator(tmp_path / "run", "cpu"))


def test_missing_face_folders_are_cropped_from_the_samples_or_explained(samples, tmp_path):
    report = ensure_faces(tmp_path / "faces", ["man"], samples["man.mp4"].parent, frames=6)
    assert report["man"].kept >= 1 and list((tmp_path / "faces" / "man").glob("*.png"))
    assert ensure_faces(tmp_path / "faces", ["man"], samples["man.mp4"].parent) == {"man": "present"}
    with pytest.raises(FileNotFoundError, match="notebooks 01 and 02"):
        ensure_faces(tmp_path / "faces", ["drag"])


def test_the_command_line_trains_and_says_where_it_stopped(faces, tmp_path, capsys):
    from helpers.ugatit.__main__ import main

    sets = ["ch=8", "n_res=2", "iterations=2", "kid_every=0", "preview_every=0", "log_every=1"]
    run = main(["--faces", str(faces), "--run-dir", str(tmp_path / "run"), "--quick", "--device", "cpu"]
               + [a for s in sets for a in ("--set", s)])
    assert run.step == 2 and list((tmp_path / "run").glob("ckpt-*.pt"))
    assert "done: step 2 of 2" in capsys.readouterr().out


def test_a_shared_checkpoint_is_fetched_and_used(faces, tmp_path, http_root):
    from helpers.models.ugatit import build_networks, official_state

    www, base, _ = http_root
    # one of ours: copied in as ckpt-<step>.pt, so training continues from it
    Trainer(tiny(iterations=2), faces, tmp_path / "theirs", "cpu", quiet=True).train()
    (www / "run.pt").write_bytes((tmp_path / "theirs" / "ckpt-000000002.pt").read_bytes())
    got = fetch_shared_checkpoint(f"{base}/run.pt", tmp_path / "mine")
    assert got.name == "ckpt-000000002.pt"
    with pytest.warns(UserWarning, match="iterations changed"):
        assert Trainer(tiny(iterations=4), faces, tmp_path / "mine", "cpu", quiet=True).step == 2
    assert fetch_shared_checkpoint(f"{base}/run.pt", tmp_path / "mine") is None  # own checkpoints win
    # an official-layout file: the networks only
    torch.save(official_state(build_networks(64, light=True, ch=8, n_res=2)), www / "x_params_0001000.pt")
    official = fetch_shared_checkpoint(f"{base}/x_params_0001000.pt", tmp_path / "fresh")
    trainer = Trainer(tiny(iterations=1), faces, tmp_path / "fresh", "cpu", quiet=True)
    trainer.load_pretrained(official)
    assert torch.equal(trainer.nets["disGA"].conv1x1.weight, torch.load(official, weights_only=True)["disGA"]["conv1x1.weight"])
    assert load_translator(official, "cpu", img_size=64).size == 64


# ---------------------------------------------------------------- what notebook 04's cells call

def test_a_domain_is_a_tuple_or_the_notebooks_comma_list():
    assert UGATITConfig(domain_a="woman, man", domain_b=["cartoon"]).domain_a == ("woman", "man")
    assert UGATITConfig(domain_b="cartoon").domain_b == ("cartoon",)
    with pytest.raises(ValueError, match="face folder names"):
        UGATITConfig(domain_a="woman,,man")


def test_the_lesson_shows_and_counts_each_domains_faces(faces, tmp_path):
    from helpers.ugatit import describe_faces, domain_examples

    some_a, some_b = domain_examples(faces, ("woman", "man"), ("cartoon",), per_folder=2, size=64)
    assert len(some_a) == len(some_b) == 4 and some_a[0].shape == (64, 64, 3) and some_a[0].dtype == np.uint8
    text = describe_faces(faces, {"woman": "present", "cartoon": "present"})
    assert text.splitlines() == ["woman: 12 faces", "cartoon: 16 faces"]


def test_the_trainer_describes_its_model_and_data(faces, tmp_path):
    trainer = Trainer(tiny(), faces, tmp_path / "run", "cpu", quiet=True)
    model, data = trainer.describe().splitlines()
    assert model.startswith("light U-GAT-IT at 64 px on cpu (float32)") and "genA2B" in model and "disLB" in model
    assert data == f"A: {trainer.stream_a.n} training + {len(trainer.held_a)} held-out faces; B: {trainer.stream_b.n} + {len(trainer.held_b)}"


def test_kid_and_rho_plots_show_what_the_run_wrote(faces, tmp_path, capsys):
    import matplotlib

    matplotlib.use("Agg")
    from helpers.models.ugatit import rho_parameters
    from helpers.ugatit import plot_kid, plot_rho, rho_by_layer

    kid_csv = tmp_path / "kid.csv"
    kid_csv.write_text("step,kid_onet_fallback,kid_onet_fallback_std,n_real,n_fake\n8,0.5,0.1,3,3\n16,0.25,0.1,3,3\n")
    assert len(plot_kid(kid_csv)) == 1 and "kid_onet_fallback: step 8: 0.5000, step 16: 0.2500" in capsys.readouterr().out
    assert plot_kid(tmp_path / "no_kid_yet.csv") == []
    kid_csv.write_text("step,kid_onet_fallback,kid_onet_fallback_std,kid_onet_fallback_untranslated,n_real,n_fake\n8,0.5,0.1,0.75,3,3\n")
    (fig,) = plot_kid(kid_csv)
    assert "(untranslated selfies: 0.7500)" in capsys.readouterr().out
    assert [line.get_label() for line in fig.axes[0].lines] == ["kid_onet_fallback", "untranslated selfies"]

    trainer = Trainer(tiny(), faces, tmp_path / "run", "cpu", quiet=True)
    gen = trainer.nets["genA2B"]
    groups = rho_by_layer(gen)
    assert sum(len(v) for v in groups.values()) == sum(p.numel() for p in rho_parameters(gen))
    assert all(len(v) and 0 <= v.min() and v.max() <= 1 for v in groups.values())
    assert plot_rho(gen, trainer.step).axes[0].get_title() == "rho of the generator after 0 steps"


def test_cam_overlay_takes_the_translators_heatmaps_as_they_come():
    from helpers.ugatit import cam_overlay

    images = np.zeros((2, 32, 32, 3), np.uint8)
    heat = np.random.default_rng(0).random((2, 8, 8)).astype(np.float32)  # translate(..., return_cam=True)
    both = cam_overlay(heat, images), cam_overlay(torch.from_numpy(heat)[:, None], images)  # and the trainer's (N, 1, h, w)
    assert both[0].shape == (2, 32, 32, 3) and both[0].dtype == np.uint8 and np.array_equal(*both)
    assert both[0].any()  # the colour map shows over black faces
