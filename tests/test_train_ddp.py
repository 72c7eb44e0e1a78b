"""Past one GPU: two CPU processes on gloo train the swap data-parallel under torchrun, stop, resume, and match one process."""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from helpers.checkpoint import list_checkpoints, load_checkpoint
from helpers.train import CsvLog

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = dict(size=32, steps=6, batch_size=4, log_every=2, preview_every=3, save_every=3, eval_faces=4, preview_faces=2)
UGATIT = dict(domain_a=("a",), domain_b=("b",), img_size=32, ch=8, n_res=1, iterations=3, kid_every=0, batch_size=2,
              holdout=0.25, preview_every=0)

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="this torch has no gloo backend")


def torchrun(faces, run, steps_this_run=None, trainer="swap", **overrides):
    settings = {**(SETTINGS if trainer == "swap" else UGATIT), **overrides}
    data = ["--faces-a", str(faces / "a"), "--faces-b", str(faces / "b")] if trainer == "swap" else ["--faces", str(faces)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", f"helpers.{trainer}", *data, "--run-dir", str(run),
           "--quick", "--device", "cpu"] + [a for k, v in settings.items() for a in ("--set", f"{k}={v}")]
    if steps_this_run:
        cmd += ["--steps-this-run", str(steps_this_run)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


@pytest.fixture
def faces(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "faces" / name).mkdir(parents=True)
        for i in range(8):
            cv2.imwrite(str(tmp_path / "faces" / name / f"{i}.png"), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    return tmp_path / "faces"


def test_two_gloo_processes_train_stop_resume_and_match_one_process(faces, tmp_path, one_thread):
    from helpers.swap import SwapConfig, train_swap

    run = tmp_path / "ddp"

    assert "steps: step 3 of 6" in torchrun(faces, run, steps_this_run=3)  # stop half-way ...
    assert [s for s, _ in list_checkpoints(run)] == [3]
    assert "done: step 6 of 6" in torchrun(faces, run)  # ... and resume, still two processes

    single = train_swap(SwapConfig.quick(**SETTINGS), faces / "a", faces / "b", tmp_path / "one", device="cpu", progress=False)
    two, one = load_checkpoint(list_checkpoints(run)[-1][1]), load_checkpoint(list_checkpoints(single.folder)[-1][1])
    for name, value in one["model"].items():  # the same batches, split over two processes: equal up to rounding
        torch.testing.assert_close(two["model"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert [r["step"] for r in CsvLog(run / "log.csv").rows()] == ["0", "2", "4", "6"]  # rank 0 alone wrote it, once
    assert sorted(p.name for p in (run / "previews").glob("*.png")) == ["step-000000000.png", "step-000000003.png", "step-000000006.png"]

    more = train_swap(SwapConfig.quick(**{**SETTINGS, "steps": 8}), faces / "a", faces / "b", run, device="cpu", progress=False)
    assert more.start_step == 6 and more.step == 8  # another world size (one process) continues the run


def test_ugatit_on_two_gloo_processes_matches_one_process_with_the_whole_batch(faces, tmp_path, one_thread):
    """U-GAT-IT alternates D and G updates, so it averages gradients itself instead of wrapping in DDP: same result."""
    from helpers.ugatit import Trainer, UGATITConfig

    assert "done: step 3 of 3" in torchrun(faces, tmp_path / "ddp", trainer="ugatit")
    Trainer(UGATITConfig.quick(**UGATIT), faces, tmp_path / "one", "cpu", quiet=True).train()
    two, one = (load_checkpoint(list_checkpoints(tmp_path / r)[-1][1])["nets"] for r in ("ddp", "one"))
    for net, weights in one.items():
        for name, value in weights.items():
            torch.testing.assert_close(two[net][name], value, rtol=1e-4, atol=1e-4, msg=f"{net}.{name}")
