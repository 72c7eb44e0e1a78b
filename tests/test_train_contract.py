"""One contract, both trainers: killed at random points (inside saves too), interrupted twice, on Drive.

Each run is a child process (tests/train_child.py) that SIGKILLs itself at a
chosen probe point: after a step, inside a checkpoint / picture / log write
(bytes written, not yet renamed) or half-way through a log line. After every
kill: each checkpoint loads, at most one save interval is lost, and every
picture decodes. At the end the killed-and-resumed run equals a straight run
bit for bit (weights, log rows, picture names), and with POLYJUICE_STORAGE=drive
every file the run deleted was 0 bytes when it was deleted.
"""

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from helpers.checkpoint import list_checkpoints, load_checkpoint
from helpers.train import CsvLog, pictures_in

ROOT = Path(__file__).resolve().parents[1]
SAVE_EVERY = 4

CONFIGS = {
    "swap": dict(size=32, steps=16, batch_size=4, log_every=2, preview_every=4, save_every=SAVE_EVERY, save_minutes=0,
                 eval_faces=4, preview_faces=2, keep_last=2, milestone_every=8),
    "ugatit": dict(img_size=32, ch=8, n_res=1, iterations=12, log_every=2, preview_every=4, kid_every=0,
                   save_every=SAVE_EVERY, save_minutes=0, keep_last=2, holdout=0.25),
}
PICTURE_DIRS = {"swap": ("previews",), "ugatit": ("samples", "timelapse")}


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """Random little faces: the loop does not care what it learns. swap: one .npy; U-GAT-IT: two folders."""
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (2, 10, 40, 40, 3), dtype=np.uint8)
    np.save(root / "swap.npy", pixels)
    for name, images in (("woman", pixels[0]), ("cartoon", pixels[1])):
        (root / name).mkdir()
        for i, img in enumerate(images):
            cv2.imwrite(str(root / name / f"{i}.png"), img)
    return root


def run_child(trainer, faces, folder, record, kill_at=None, drive=False, probes=None):
    config = dict(CONFIGS[trainer])
    if trainer == "ugatit":
        config.update(domain_a=["woman"], domain_b=["cartoon"])
    spec = {"trainer": trainer, "faces": str(faces / "swap.npy") if trainer == "swap" else str(faces),
            "folder": str(folder), "config": config, "record": str(record), "kill_at": kill_at}
    if probes:
        spec["probes"] = probes
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "POLYJUICE_STORAGE": "drive" if drive else "local"}
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "train_child.py"), json.dumps(spec)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    if kill_at is None:
        assert done.returncode == 0, done.stderr[-3000:]
    else:
        assert done.returncode in (0, -signal.SIGKILL), done.stderr[-3000:]
    return done


def events(record: Path, kind: str) -> list[list[str]]:
    if not record.exists():
        return []
    return [line.split()[1:] for line in record.read_text().splitlines() if line.split()[0] == kind]


def weights(folder: Path, trainer: str) -> dict:
    state = load_checkpoint(list_checkpoints(folder)[-1][1])
    if trainer == "swap":
        return state["model"]
    return {f"{net}.{k}": v for net, sd in state["nets"].items() for k, v in sd.items()}


def assert_pictures_decode(folder: Path, trainer: str) -> list[str]:
    names = []
    for sub in PICTURE_DIRS[trainer]:
        for path in pictures_in(folder / sub):
            assert cv2.imread(str(path)) is not None, f"{path} does not decode"
            names.append(f"{sub}/{path.name}")
    return names


@pytest.fixture(scope="module")
def straight_run(faces, tmp_path_factory):
    """The run folder of an uninterrupted run of each trainer (made once, on first use)."""
    done = {}

    def get(trainer: str) -> Path:
        if trainer not in done:
            folder = tmp_path_factory.mktemp(f"straight-{trainer}")
            run_child(trainer, faces, folder / "run", folder / "record.txt")
            done[trainer] = folder / "run"
        return done[trainer]

    return get


@pytest.mark.parametrize("trainer", ["swap", "ugatit"])
def test_killed_anywhere_and_resumed_equals_a_straight_run_and_drive_gets_empty_files(trainer, faces, straight_run, tmp_path):
    straight = straight_run(trainer)

    chained, record = tmp_path / "chained", tmp_path / "chained.txt"
    # a kill inside a checkpoint write, then one anywhere (torn log lines and picture writes have their own tests)
    plans = [("save", 2), (None, random.Random(trainer).randint(3, 12))]
    for probe, kill_at in plans:
        before = len(events(record, "kill"))
        run_child(trainer, faces, chained, record, kill_at=kill_at, drive=True, probes=[probe] if probe else None)
        kills = events(record, "kill")
        if len(kills) == before:  # the run got to its end before the probe point
            continue
        reached = int(kills[-1][1])
        steps = [s for s, _ in list_checkpoints(chained)]
        for _, path in list_checkpoints(chained):
            load_checkpoint(path)  # no unloadable checkpoint, ever
        assert (steps[-1] if steps else 0) >= reached - SAVE_EVERY, f"killed at step {reached} with checkpoints {steps}"
        assert_pictures_decode(chained, trainer)
    assert len(events(record, "kill")) == 2
    run_child(trainer, faces, chained, record, drive=True)  # and on to the end

    for key, value in weights(straight, trainer).items():
        assert torch.equal(weights(chained, trainer)[key], value), f"{key} differs after the kills"
    a, b = CsvLog(straight / "log.csv").rows(), CsvLog(chained / "log.csv").rows()
    assert [r["step"] for r in b] == [r["step"] for r in a]
    loss_columns = [k for k in a[0] if k not in ("images_per_s", "minutes", "sec_per_step")]
    assert [{k: r[k] for k in loss_columns} for r in b] == [{k: r[k] for k in loss_columns} for r in a]
    assert assert_pictures_decode(chained, trainer) == assert_pictures_decode(straight, trainer)
    assert not list(chained.glob("**/.*.tmp")), "temp files of killed writes are left behind"

    deleted = [(size, path) for size, path in events(record, "unlink") if Path(path).is_relative_to(chained)]
    assert deleted, "the run deleted nothing: the test would prove nothing"
    assert all(int(size) in (0, -1) for size, _ in deleted), [d for d in deleted if int(d[0]) > 0]


def test_a_kill_inside_the_log_rewrite_loses_no_row(faces, straight_run, tmp_path):
    """The rewrite of log.csv on resume (dropping rows past the checkpoint) killed half-way: the file stays whole."""
    straight = straight_run("swap")
    folder, record = tmp_path / "run", tmp_path / "run.txt"
    run_child("swap", faces, folder, record, kill_at=7, probes=["step"])  # killed after step 7: rows to 6, checkpoint at 4
    assert [r["step"] for r in CsvLog(folder / "log.csv").rows()] == ["0", "2", "4", "6"]
    run_child("swap", faces, folder, record, kill_at=1, probes=["log"])  # the first log write is the rewrite
    assert events(record, "kill")[-1][0] == "log"
    assert [r["step"] for r in CsvLog(folder / "log.csv").rows()] == ["0", "2", "4", "6"]
    run_child("swap", faces, folder, record)
    a, b = CsvLog(straight / "log.csv").rows(), CsvLog(folder / "log.csv").rows()
    assert [r["step"] for r in b] == [r["step"] for r in a] == [str(s) for s in range(0, 17, 2)]
    assert [r["heldout_A"] for r in b] == [r["heldout_A"] for r in a]


def test_a_kill_inside_a_picture_write_leaves_no_truncated_picture(faces, tmp_path):
    """Samples and timelapse frames are written atomically: a kill mid-write leaves nothing half, and the timelapse works."""
    from helpers.train import make_timelapse

    folder, record = tmp_path / "run", tmp_path / "run.txt"
    run_child("ugatit", faces, folder, record, kill_at=4, probes=["picture"])  # step 0: 2 pictures, step 4: the 2nd
    assert events(record, "kill")[-1] == ["picture", "4"]
    assert assert_pictures_decode(folder, "ugatit") == ["samples/step_000000000.png", "samples/step_000000004.png",
                                                        "timelapse/000000000.png"]
    assert make_timelapse(folder / "timelapse").stat().st_size > 0
    run_child("ugatit", faces, folder, record)
    assert assert_pictures_decode(folder, "ugatit") == [f"{sub}/{prefix}{s:09d}.png" for sub, prefix in
                                                        (("samples", "step_"), ("timelapse", "")) for s in (0, 4, 8, 12)]
