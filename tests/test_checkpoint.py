import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from helpers import checkpoint as ck


def small_state(step):
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "config": {"lr": 1e-3, "name": "t"}, "marker": torch.full((8,), float(step))}


def test_roundtrip_loads_with_weights_only(tmp_path):
    ck.save_checkpoint(tmp_path, 5, small_state(5))
    state = torch.load(ck.checkpoint_path(tmp_path, 5), weights_only=True)
    assert state["step"] == 5 and state["config"]["name"] == "t"
    model = torch.nn.Linear(4, 2)
    model.load_state_dict(state["model"])
    opt = torch.optim.Adam(model.parameters())
    opt.load_state_dict(state["optimizer"])
    assert opt.state_dict()["state"][0]["step"] == 1


def test_rng_restore_repeats_every_generator():
    ck_state = ck.capture_rng()
    a = (random.random(), np.random.rand(), np.random.randn(), torch.rand(2).tolist())
    ck.restore_rng(ck_state)
    b = (random.random(), np.random.rand(), np.random.randn(), torch.rand(2).tolist())
    assert a == b


def test_keeps_last_n_plus_milestones(tmp_path):
    for step in range(1, 26):
        ck.save_checkpoint(tmp_path, step, {"x": torch.zeros(1)}, keep_last=3, milestone_every=10)
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [10, 20, 23, 24, 25]


def test_truncated_newest_is_skipped_with_warning(tmp_path):
    for step in (1, 2, 3):
        ck.save_checkpoint(tmp_path, step, small_state(step))
    newest = ck.checkpoint_path(tmp_path, 3)
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with pytest.warns(UserWarning, match="ckpt-000000003"):
        state = ck.load_latest(tmp_path)
    assert state["step"] == 2 and state["marker"][0].item() == 2


def test_garbage_and_renamed_files_are_skipped(tmp_path):
    ck.save_checkpoint(tmp_path, 1, small_state(1))
    ck.checkpoint_path(tmp_path, 2).write_bytes(b"not a checkpoint")
    ck.checkpoint_path(tmp_path, 1).rename(ck.checkpoint_path(tmp_path, 3))  # says step 3, holds step 1
    with pytest.warns(UserWarning):
        assert ck.load_latest(tmp_path) is None


def test_empty_folder_means_fresh_start(tmp_path):
    assert ck.load_latest(tmp_path / "missing") is None


def test_failed_save_leaves_previous_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    ck.save_checkpoint(tmp_path, 1, small_state(1))

    def explode(obj, f):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(ck.torch, "save", explode)
    with pytest.raises(OSError):
        ck.save_checkpoint(tmp_path, 2, small_state(2))
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [1]
    assert not list(tmp_path.glob(".*.tmp"))
    assert ck.load_latest(tmp_path)["step"] == 1


def test_checkpointer_saves_by_steps_and_by_minutes(tmp_path, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(ck.time, "monotonic", lambda: clock[0])
    saver = ck.Checkpointer(tmp_path, every_steps=100, every_minutes=5)
    assert saver.due(100) and not saver.due(101)
    clock[0] += 301
    assert saver.due(101)
    saver.save(101, {"x": torch.ones(1)})
    assert not saver.due(102)
    assert saver.latest()["step"] == 101


CHILD = textwrap.dedent(
    """
    import sys, torch
    from helpers.checkpoint import load_latest, save_checkpoint
    folder = sys.argv[1]
    state = load_latest(folder)
    step = state["step"] if state else 0
    print("ready", step, flush=True)
    big = torch.empty(8 * 2**20 // 4)  # 8 MiB per save, so kills often land mid-write
    while True:
        step += 1
        big.fill_(step)
        save_checkpoint(folder, step, {"weights": big, "step_copy": torch.tensor(step)}, keep_last=2, milestone_every=50)
    """
)


def test_sigkill_during_saves_always_leaves_a_valid_checkpoint(tmp_path):
    """Kill a saving process 20 times at random moments; every time a valid, newer-or-equal checkpoint loads."""
    folder = tmp_path / "ckpts"
    ck.save_checkpoint(folder, 0, {"weights": torch.zeros(4), "step_copy": torch.tensor(0)})
    rng = random.Random(1234)
    last = 0
    for _ in range(20):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(folder)], stdout=subprocess.PIPE, text=True)
        ready = child.stdout.readline().split()
        assert ready[0] == "ready" and int(ready[1]) == last  # it resumed from the newest valid file
        time.sleep(rng.uniform(0.05, 0.6))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        state = ck.load_latest(folder)
        assert state is not None
        step = state["step"]
        assert step >= last
        assert int(state["step_copy"]) == step
        if step:
            assert torch.all(state["weights"] == step)
        last = step
    assert last > 20  # the children did make progress between kills
