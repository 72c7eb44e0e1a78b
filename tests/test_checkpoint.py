import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

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
    """Kill a saving process 12 times at random moments; every time a valid, newer-or-equal checkpoint loads."""
    folder = tmp_path / "ckpts"
    ck.save_checkpoint(folder, 0, {"weights": torch.zeros(4), "step_copy": torch.tensor(0)})
    rng = random.Random(1234)
    last = 0
    for _ in range(12):
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
        assert not list(folder.glob(".*.tmp"))  # the killed save's temp file went with the load (issue 11: 74 MB after 8 kills)
    assert last > 12  # the children did make progress between kills


# ---------------------------------------------------------------- issue 11: prune, temp files, mode, full disk, Drive

def test_unreadable_newer_files_do_not_push_out_good_saves(tmp_path):
    """keep_last counts only checkpoints that load: a resumed run's new saves survive broken newer files."""
    ck.save_checkpoint(tmp_path, 1, small_state(1), keep_last=2)
    ck.checkpoint_path(tmp_path, 5).write_bytes(b"garbage from a broken copy")
    good = ck.checkpoint_path(tmp_path, 1).read_bytes()
    ck.checkpoint_path(tmp_path, 6).write_bytes(good[: len(good) // 2])  # truncated
    with pytest.warns(UserWarning):
        assert ck.load_latest(tmp_path)["step"] == 1  # the run resumes from step 1 ...
    with pytest.warns(UserWarning, match="not a loadable checkpoint"):
        ck.save_checkpoint(tmp_path, 2, small_state(2), keep_last=2)  # ... and saves step 2
    assert ck.load_latest(tmp_path)["step"] == 2
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [1, 2]  # the broken files are gone


def test_misnamed_file_is_neither_counted_nor_deleted(tmp_path):
    ck.save_checkpoint(tmp_path, 1, small_state(1))
    ck.checkpoint_path(tmp_path, 1).rename(ck.checkpoint_path(tmp_path, 9))  # holds step 1: not ours to judge
    for step in (2, 3):
        ck.save_checkpoint(tmp_path, step, small_state(step), keep_last=2)
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [2, 3, 9]


def test_next_save_removes_the_temp_file_of_a_killed_save(tmp_path):
    ck.save_checkpoint(tmp_path, 1, small_state(1))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / f".ckpt-000000002.pt.{dead.pid}@{ck.storage._host()}.0123abcd.tmp"
    leftover.write_bytes(b"\0" * 10_000)  # what a SIGKILL mid-save leaves, seconds ago
    ck.save_checkpoint(tmp_path, 2, small_state(2))
    assert not leftover.exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_checkpoints_get_the_normal_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        path = ck.save_checkpoint(tmp_path, 1, small_state(1))
        weights = ck.save_weights(tmp_path, 1, {"model": small_state(1)["model"]})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # was 0600: others on a shared machine could not read it
    assert weights.stat().st_mode & 0o777 == 0o644


def _torch_like_enospc(obj, f):
    """What torch.save does when the disk fills: a RuntimeError whose context is the ENOSPC."""
    f.write(b"half a file")
    try:
        raise OSError(errno.ENOSPC, "No space left on device")
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 704 vs 598")


def test_full_disk_says_so_in_one_sentence_and_keeps_older_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYJUICE_STORAGE", "drive")
    ck.save_checkpoint(tmp_path, 1, small_state(1))
    monkeypatch.setattr(ck.torch, "save", _torch_like_enospc)
    with pytest.raises(ck.NoSpaceError) as info:
        ck.save_checkpoint(tmp_path, 2, small_state(2))
    message = str(info.value)
    assert "needs about" in message and "is free" in message and "empty Drive's trash" in message
    assert "inline_container" not in message
    assert not list(tmp_path.glob(".*.tmp"))
    monkeypatch.undo()
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [1]
    assert ck.load_latest(tmp_path)["step"] == 1


def test_free_space_is_checked_before_writing(tmp_path, monkeypatch):
    ck.save_checkpoint(tmp_path, 1, small_state(1))
    writes = []
    monkeypatch.setattr(ck.torch, "save", lambda obj, f: writes.append(1))
    usage = ck.storage.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(ck.storage.shutil, "disk_usage", lambda p: usage._replace(free=10_000))
    state = {"weights": torch.zeros(2**20)}  # 4 MiB, 10 kB free
    with pytest.raises(ck.NoSpaceError, match=r"needs about 4\.\d\d MiB and 9\.77 KiB is free"):
        ck.save_checkpoint(tmp_path, 2, state)
    assert writes == []  # no doomed write was started
    monkeypatch.undo()
    assert ck.load_latest(tmp_path)["step"] == 1


def test_size_estimate_matches_the_file():
    state = {"model": small_state(1), "big": torch.zeros(3, 2**18), "view": None}
    state["view"] = state["big"][0]  # shares the storage: counted once
    import io
    buffer = io.BytesIO()
    torch.save(state, buffer)
    real = len(buffer.getvalue())
    assert real <= ck.estimate_size(state) <= real + 128 * 1024


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_states_on_the_gpu_save_and_load_on_the_cpu(tmp_path):
    model = torch.nn.Linear(4, 2).cuda()
    saver = ck.Checkpointer(tmp_path, every_steps=1, keep_last=1, milestone_every=1, say=None)
    saver.save(1, {"model": model.state_dict()}, weights={"model": model.state_dict()})
    assert ck.estimate_size({"model": model.state_dict()}) > 24
    assert ck.load_latest(tmp_path)["model"]["weight"].device.type == "cpu"
    assert ck.load_checkpoint(ck.weights_path(tmp_path, 1))["model"]["weight"].dtype == torch.float16


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A real 3 MiB tmpfs (needs root; skipped elsewhere)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_real_full_disk_raises_our_error(tiny_filesystem, monkeypatch):
    ck.save_checkpoint(tiny_filesystem, 1, {"w": torch.ones(2**18)})  # 1 MiB
    with pytest.raises(ck.NoSpaceError):  # caught by the free-space check
        ck.save_checkpoint(tiny_filesystem, 2, {"w": torch.ones(2**20)})
    # a file system that reports more than it holds (Drive's quota lags): the write itself fails
    monkeypatch.setattr(ck.storage, "check_free_space", lambda *a, **k: 0)
    with pytest.raises(ck.NoSpaceError, match="needs about"):
        ck.save_checkpoint(tiny_filesystem, 2, {"w": torch.ones(2**20)})
    assert not list(tiny_filesystem.glob(".*.tmp"))
    assert ck.load_latest(tiny_filesystem)["step"] == 1


def test_on_drive_every_deleted_file_is_empty_first(tmp_path, monkeypatch):
    """Pruned checkpoints, broken files and stale temp files all reach Drive's trash with 0 bytes."""
    monkeypatch.setenv("POLYJUICE_STORAGE", "drive")
    sizes = {}
    real_unlink = os.unlink

    def recording_unlink(path, *args, **kwargs):
        sizes[Path(path).name] = Path(path).stat().st_size
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", recording_unlink)
    monkeypatch.setattr(os, "remove", recording_unlink)
    monkeypatch.setattr(Path, "unlink", lambda self, missing_ok=False: recording_unlink(self))
    ck.checkpoint_path(tmp_path, 99).write_bytes(b"truncated")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f".ckpt-000000007.pt.{dead.pid}@{ck.storage._host()}.0123abcd.tmp").write_bytes(b"\0" * 5000)
    saver = ck.Checkpointer(tmp_path, every_steps=1, keep_last=2, milestone_every=4, say=None)
    model = torch.nn.Linear(4, 2)
    with pytest.warns(UserWarning, match="ckpt-000000099"):
        for step in range(1, 10):
            saver.save(step, small_state(step), weights=lambda: {"model": model.state_dict()})
    assert len(sizes) == 9  # 7 pruned checkpoints, the broken file, the temp file
    assert set(sizes.values()) == {0}


def test_milestones_hold_half_precision_weights_and_are_never_pruned(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.BatchNorm1d(64))
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(8, 64)).sum().backward()
    opt.step()
    saver = ck.Checkpointer(tmp_path, every_steps=1, keep_last=2, milestone_every=10, say=None)
    for step in range(1, 26):
        full = {"model": model.state_dict(), "optimizer": opt.state_dict(), "config": {"model": "toy"}}
        saver.save(step, full, weights=lambda: {"model": model.state_dict(), "config": {"model": "toy"}})
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [24, 25]
    assert [s for s, _ in ck.list_weights(tmp_path)] == [10, 20]
    milestone = ck.load_checkpoint(ck.weights_path(tmp_path, 20))
    assert milestone["step"] == 20 and milestone["config"] == {"model": "toy"} and "optimizer" not in milestone
    assert milestone["model"]["0.weight"].dtype == torch.float16
    assert milestone["model"]["1.num_batches_tracked"].dtype == torch.int64
    restored = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.BatchNorm1d(64))
    restored.load_state_dict(milestone["model"])  # back to float32, within half precision
    assert torch.allclose(restored[0].weight, model[0].weight, atol=1e-3)
    full_size = ck.checkpoint_path(tmp_path, 25).stat().st_size
    assert ck.weights_path(tmp_path, 20).stat().st_size < full_size / 5  # no Adam moments, 2 bytes a number
    # loaders may take the newest of both kinds; resume only ever sees full checkpoints
    assert ck.load_latest(tmp_path, weights=True)["step"] == 25
    for _, p in ck.list_checkpoints(tmp_path):
        p.unlink()
    assert ck.load_latest(tmp_path) is None and ck.load_latest(tmp_path, weights=True)["step"] == 20


def test_half_keeps_values_beyond_float16_in_float32():
    out = ck._half({"big": torch.tensor([1e6, 1.0]), "small": torch.tensor([0.5]), "n": 3})
    assert out["big"].dtype == torch.float32 and out["small"].dtype == torch.float16 and out["n"] == 3


def test_first_save_reports_size_and_free_space(tmp_path, capsys):
    saver = ck.Checkpointer(tmp_path, every_steps=1)
    saver.save(1, small_state(1))
    saver.save(2, small_state(2))
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("Checkpoint size: ") and " free in " in lines[0]


def test_a_read_error_keeps_the_file(tmp_path, monkeypatch):
    """An I/O error (a Drive hiccup) says nothing about the file: it is neither deleted nor counted."""
    for step in (1, 2):
        ck.save_checkpoint(tmp_path, step, small_state(step), keep_last=1)
    real_zip = ck.zipfile.ZipFile

    def flaky(path, *args, **kwargs):
        if Path(path).name == "ckpt-000000002.pt":
            raise OSError(errno.EIO, "Input/output error")
        return real_zip(path, *args, **kwargs)

    ck._probed.clear()
    monkeypatch.setattr(ck.zipfile, "ZipFile", flaky)
    ck.save_checkpoint(tmp_path, 1, small_state(1), keep_last=1)  # e.g. a run restarted from step 1
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [1, 2]


def test_prune_judges_files_without_loading_their_tensors(tmp_path, monkeypatch):
    """A 7 GiB checkpoint on Drive must not be read back to decide whether to keep it."""
    for step in (1, 2, 3):
        ck.save_checkpoint(tmp_path, step, small_state(step), keep_last=3)
    truncated = ck.checkpoint_path(tmp_path, 4)
    truncated.write_bytes(ck.checkpoint_path(tmp_path, 3).read_bytes()[:-100])
    ck._probed.clear()
    monkeypatch.setattr(ck.torch, "load", lambda *a, **k: pytest.fail("prune loaded a checkpoint"))
    with pytest.warns(UserWarning, match="ckpt-000000004"):
        ck.prune(tmp_path, keep_last=2, milestone_every=None)
    assert [s for s, _ in ck.list_checkpoints(tmp_path)] == [2, 3]


def test_first_save_warns_when_the_rotation_will_not_fit(tmp_path, monkeypatch, capsys):
    usage = ck.storage.shutil.disk_usage(tmp_path)
    saver = ck.Checkpointer(tmp_path, every_steps=1, keep_last=3)
    monkeypatch.setattr(ck.storage, "check_free_space", lambda *a, **k: 0)
    monkeypatch.setattr(ck.storage.shutil, "disk_usage", lambda p: usage._replace(free=1000))
    saver.save(1, small_state(1))
    assert "Warning: keep_last=3 needs" in capsys.readouterr().out
