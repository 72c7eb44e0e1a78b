"""helpers.train: the loop both trainers share. A double Ctrl-C, slow hooks, NaN, the live view, the precision policy."""

import os
import signal
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from helpers import train
from helpers.checkpoint import list_checkpoints, load_checkpoint
from helpers.train import CsvLog, Hook, autocast_dtype, fit

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- a task with nothing but the contract

class CountingTask:
    """The smallest trainer: one weight vector, a loss that is its sum."""

    picture_dirs = ("pics",)
    timelapse_dir = "pics"

    def __init__(self, folder, hooks=(), nan_at=None, **cfg):
        settings = dict(steps=6, save_every=2, save_minutes=None, keep_last=2, milestone_every=None, log_every=1, preview_every=3)
        self.cfg = SimpleNamespace(**{**settings, **cfg})
        self.folder, self.hooks, self.nan_at = folder, list(hooks), nan_at
        self.w, self.sums, self.count, self.step = torch.zeros(3), torch.zeros(1), 0, 0

    total_steps = property(lambda self: self.cfg.steps)

    def train_step(self):
        self.w += self.step + 1
        self.sums += float("nan") if self.step + 1 == self.nan_at else self.w.sum()
        self.count += 1
        self.step += 1

    def state(self):
        return {"w": self.w.clone(), "sums": self.sums.clone(), "count": self.count}

    def load_state(self, state):
        self.w, self.sums, self.count, self.step = state["w"], state["sums"], state["count"], state["step"]

    def pending_losses(self):
        return self.sums

    def log_row(self, seconds):
        if not self.count:
            return None
        row = {"step": self.step, "loss": f"{float(self.sums) / self.count:.3f}"}
        self.sums.zero_()
        self.count = 0
        return row

    def pictures(self):
        return {f"pics/{self.step:09d}.png": np.full((8, 8, 3), self.step * 20, np.uint8)}


def test_the_time_based_save_happens_before_a_slow_hook_not_after_it(tmp_path, monkeypatch):
    """A preview that takes longer than save_minutes: the save comes right after it, before the (slow) KID starts."""
    clock = [1000.0]
    monkeypatch.setattr(train.loop.time, "monotonic", lambda: clock[0])
    seen = []

    def slow_preview_pictures(task=None):
        clock[0] += 11 * 60  # eleven minutes of preview
        return CountingTask.pictures(task_ref[0])

    def kid():
        seen.append((task_ref[0].step, [s for s, _ in list_checkpoints(tmp_path)]))
        clock[0] += 30 * 60  # and half an hour of KID
        return {"step": task_ref[0].step, "kid": "0.1"}

    task = CountingTask(tmp_path, hooks=[Hook("kid", kid, every=3)], save_every=None, save_minutes=10, preview_every=3)
    task_ref = [task]
    task.pictures = slow_preview_pictures
    result = fit(task, progress=False)
    assert result.stopped == "done" and result.step == 6
    assert [step for step, _ in seen] == [3, 6]
    assert all(step in saved for step, saved in seen), seen  # when KID starts, the step it measures is already saved
    assert seen[1][1] == [4, 6]  # half an hour of KID at step 3: the save is due (and made) right after step 4
    assert [r["step"] for r in CsvLog(tmp_path / "kid.csv").rows()] == ["3", "6"]


def test_a_non_finite_loss_stops_the_run_and_saves_nothing_after_it(tmp_path):
    task = CountingTask(tmp_path, nan_at=4, log_every=3)
    with pytest.raises(FloatingPointError, match="last good checkpoint"):
        fit(task, progress=False)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2]
    assert [r["step"] for r in CsvLog(tmp_path / "log.csv").rows()] == ["3"]


def test_the_log_and_the_pictures_follow_the_checkpoint_on_resume(tmp_path):
    """Rows and pictures written after the newest checkpoint go (a torn last line too); at step 0 a run starts clean."""
    fit(CountingTask(tmp_path, steps=3), progress=False)  # checkpoint at 2 and 3, pictures at 0 and 3
    (tmp_path / "ckpt-000000003.pt").unlink()  # as if the run had been killed before that save
    with open(tmp_path / "log.csv", "a") as f:
        f.write("4,0.")  # a torn line from a killed append
    result = fit(CountingTask(tmp_path, steps=6), progress=False)
    assert result.start_step == 2
    assert [r["step"] for r in CsvLog(tmp_path / "log.csv").rows()] == ["1", "2", "3", "4", "5", "6"]
    assert [p.name for p in train.pictures_in(tmp_path / "pics")] == ["000000000.png", "000000003.png", "000000006.png"]
    assert result.timelapse.stat().st_size > 0


def test_a_row_with_a_new_column_keeps_a_resumed_logs_columns(tmp_path):
    """A run resumed by a newer version (one more column in its rows) still reads back every row."""
    log = CsvLog(tmp_path / "kid.csv")
    log.append({"step": 1, "kid": 0.5})
    log.append({"step": 2, "kid": 0.25, "kid_untranslated": 0.75})
    assert log.rows() == [{"step": "1", "kid": "0.5"}, {"step": "2", "kid": "0.25"}]


def test_a_full_disk_ends_the_run_with_one_sentence_and_the_older_checkpoint_loads(tmp_path, monkeypatch):
    from helpers import storage
    from helpers.checkpoint import load_latest

    fit(CountingTask(tmp_path, steps=2), progress=False)
    monkeypatch.setattr(storage, "free_bytes", lambda path: 1000)
    with pytest.raises(storage.NoSpaceError, match="Not enough space to save .* already saved are intact"):
        fit(CountingTask(tmp_path, steps=6), progress=False)
    assert load_latest(tmp_path)["step"] == 2 and [s for s, _ in list_checkpoints(tmp_path)] == [2]
    assert not list(tmp_path.glob(".*.tmp"))


# ---------------------------------------------------------------- a second Ctrl-C, for both trainers

def _swap_run(faces, folder, callback=None):
    from helpers.swap import SwapConfig, train_swap

    cfg = SwapConfig.quick(size=32, steps=8, batch_size=4, log_every=2, preview_every=4, save_every=2, save_minutes=0,
                           eval_faces=4, preview_faces=2)
    return train_swap(cfg, faces[0], faces[1], folder, device="cpu", progress=False, callback=callback)


def _ugatit_run(faces, folder, callback=None):
    from helpers.ugatit import Trainer, UGATITConfig

    cfg = UGATITConfig.quick(domain_a=("a",), domain_b=("b",), img_size=32, ch=8, n_res=1, iterations=8, log_every=2,
                             preview_every=0, kid_every=0, save_every=2, save_minutes=0, holdout=0.25)
    return Trainer(cfg, folder.parent / "faces", folder, "cpu", quiet=True).train(callback=callback)


def _weights(folder):
    state = load_checkpoint(list_checkpoints(folder)[-1][1])
    return state.get("model") or {f"{n}.{k}": v for n, sd in state["nets"].items() for k, v in sd.items()}


@pytest.mark.parametrize("trainer, scaler_calls", [("swap", 1), ("ugatit", 2)])
def test_a_second_ctrl_c_mid_step_saves_nothing_and_the_resume_is_exact(trainer, scaler_calls, tmp_path):
    """Two Ctrl-C inside step 6, after U-GAT-IT's discriminators already moved: the half step is never saved."""
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (2, 8, 40, 40, 3), dtype=np.uint8)
    for name, images in zip("ab", faces):
        (tmp_path / "faces" / name).mkdir(parents=True)
        for i, img in enumerate(images):
            cv2.imwrite(str(tmp_path / "faces" / name / f"{i}.png"), img)
    run = _swap_run if trainer == "swap" else _ugatit_run
    straight = tmp_path / "straight"
    run(faces, straight)

    def press_twice_in_step_6(step, task):
        if step != 5:
            return
        calls, scaler_step = [0], task.scaler.step

        def step_then_ctrl_c(optimizer, *args, **kwargs):
            calls[0] += 1
            if calls[0] == scaler_calls:  # the last optimiser of the step: everything before it has moved
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGINT)
            return scaler_step(optimizer, *args, **kwargs)

        task.scaler.step = step_then_ctrl_c

    interrupted = tmp_path / "run"
    stopped = run(faces, interrupted, press_twice_in_step_6)
    assert stopped["stopped"] == "interrupted"
    assert [s for s, _ in list_checkpoints(interrupted)] == [2, 4]  # not 5 with half of step 6 in it
    finished = run(faces, interrupted)
    assert finished["start_step"] == 4 and finished["step"] == 8
    for key, value in _weights(straight).items():
        assert torch.equal(_weights(interrupted)[key], value), f"{key} differs after a double Ctrl-C and resume"


# ---------------------------------------------------------------- U-GAT-IT: live samples, resume without side effects

def test_ugatit_shows_its_newest_sample_live_and_constructing_it_touches_no_file(tmp_path, monkeypatch):
    import IPython
    import IPython.display

    from helpers.ugatit import Trainer, UGATITConfig

    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        (tmp_path / "faces" / name).mkdir(parents=True)
        for i in range(6):
            cv2.imwrite(str(tmp_path / "faces" / name / f"{i}.png"), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj)

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: Handle())
    cfg = UGATITConfig.quick(domain_a=("a",), domain_b=("b",), img_size=32, ch=8, n_res=1, iterations=4, log_every=2,
                             preview_every=2, kid_every=0, save_every=2, save_minutes=0, holdout=0.34)
    run_dir = tmp_path / "run"
    Trainer(cfg, tmp_path / "faces", run_dir, "cpu", quiet=True).train(steps=3, show=True)
    images = [o for o in shown if isinstance(o, IPython.display.Image)]
    lines = [o.data for o in shown if isinstance(o, IPython.display.Markdown)]
    assert len(images) == 2 and images[-1].data == (run_dir / "samples" / "step_000000002.png").read_bytes()
    assert lines and lines[-1].startswith("step 2 | lr")

    header = (run_dir / "log.csv").read_text().splitlines()[0]
    with open(run_dir / "log.csv", "a") as f:  # a row written after the newest checkpoint, then the session died
        f.write(",".join(["4"] + ["1"] * (len(header.split(",")) - 1)) + "\n")
    before = {p: p.stat().st_size for p in run_dir.rglob("*") if p.is_file()}
    trainer = Trainer(cfg, tmp_path / "faces", run_dir, "cpu", quiet=True)
    assert trainer.step == 3  # the checkpoint is read ...
    assert {p: p.stat().st_size for p in run_dir.rglob("*") if p.is_file()} == before  # ... and nothing is touched
    trainer.train(steps=0)  # training starts: now the log follows the checkpoint
    assert [r["step"] for r in CsvLog(run_dir / "log.csv").rows()] == ["2"]


# ---------------------------------------------------------------- the precision policy

def test_one_precision_policy_for_training_and_inference(monkeypatch):
    assert autocast_dtype("cpu") is None
    assert autocast_dtype("cpu", "bf16") is torch.bfloat16 and autocast_dtype("cpu", "fp16") is torch.float16
    with pytest.raises(ValueError, match="'auto', 'bf16', 'fp16' or 'off'"):
        autocast_dtype("cpu", "half")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    for capability, expected in (((7, 5), torch.float16), ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, c=capability: c)
        assert autocast_dtype("cuda") is expected  # a T4 (7.5) gets fp16 + scaler, an A100/H100 bf16
    from helpers.facemodel import inference_dtype

    assert inference_dtype(torch.device("cuda")) is autocast_dtype("cuda")  # the Swapper and the Translator agree


def test_tensorboard_gets_the_log_rows_and_pictures_and_forgets_what_a_resume_replays(tmp_path, monkeypatch):
    """Where tensorboard is installed (Colab), the loop writes events too; here SummaryWriter is a recording stand-in."""
    import sys
    import types

    writers = []

    class RecordingWriter:
        def __init__(self, log_dir, purge_step=None):
            self.log_dir, self.purge_step, self.scalars, self.images = log_dir, purge_step, [], []
            writers.append(self)

        def add_scalar(self, tag, value, step):
            self.scalars.append((tag, value, step))

        def add_image(self, tag, image, step, dataformats):
            self.images.append((tag, image.shape, step, dataformats))

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=RecordingWriter))
    fit(CountingTask(tmp_path, steps=3), progress=False)
    fit(CountingTask(tmp_path, steps=5), progress=False)
    first, second = writers
    assert first.log_dir == str(tmp_path / "tensorboard") and first.purge_step is None
    assert [(tag, step) for tag, _, step in first.scalars] == [("train/loss", s) for s in (1, 2, 3)]
    assert [(tag, step) for tag, _, step, _ in first.images] == [("pics", 0), ("pics", 3)]
    assert second.purge_step == 3  # events past the checkpoint resumed from are dropped, as the CSV rows are
    assert [step for _, _, step in second.scalars] == [4, 5]


def test_the_command_line_says_where_it_stopped_and_always_leaves_the_torchrun_job(tmp_path, monkeypatch, capsys):
    from dataclasses import dataclass

    @dataclass
    class Config:
        steps: int = 10

        @classmethod
        def quick(cls, **kw):
            return cls(steps=2, **kw)

    left = []
    monkeypatch.setattr(train.distributed, "finish_distributed", lambda: left.append(True))
    done = train.RunResult(tmp_path, 2, 0, "done", 0.1, tmp_path / "log.csv")
    run = train.run_command_line("test", Config, lambda parser: None, lambda args, cfg: done, argv=["--quick"])
    assert run is done and "done: step 2 of 2 in" in capsys.readouterr().out and left == [True]

    def broken(args, cfg):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        train.run_command_line("test", Config, lambda parser: None, broken, argv=["--set", "steps=5"])
    assert left == [True, True]


def test_pick_device_without_a_choice_takes_the_workspace_default(monkeypatch):
    """train_swap(cfg, a, b, folder) with no device must not fail on its own import (it did: `from .env`)."""
    from helpers.train.precision import pick_device

    monkeypatch.setenv("POLYJUICE_DEVICE", "cpu")
    assert pick_device(None).type == "cpu"


@pytest.mark.parametrize("argv, steps", [([], 20_000), (["--preset", "full"], 20_000), (["--quick"], 60),
                                         (["--preset", "quick"], 60), (["--preset", "laptop", "--set", "lr=1e-4"], None)])
def test_the_command_line_starts_from_the_preset_asked_for(argv, steps):
    from helpers.swap import SwapConfig

    _, cfg = train.command_line("test", SwapConfig, lambda parser: None, argv)
    expected = SwapConfig.laptop(lr=1e-4) if "laptop" in argv else None
    assert cfg == expected if expected else cfg.steps == steps


def test_two_presets_at_once_are_refused(capsys):
    from helpers.swap import SwapConfig

    with pytest.raises(SystemExit):
        train.command_line("test", SwapConfig, lambda parser: None, ["--quick", "--preset", "laptop"])
    assert "ask for two presets" in capsys.readouterr().err
    with pytest.raises(ValueError, match="PRESET must be one of quick, laptop, full"):
        train.from_preset(SwapConfig, "fast")
