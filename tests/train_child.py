"""One training run in its own process, for the kill tests of tests/test_train_contract.py.

    python tests/train_child.py '<json spec>'

The spec names the trainer ("swap" or "ugatit"), its folders and config, and
optionally `kill_at`: the child SIGKILLs itself at that probe point (1-based),
counting, in order, every finished step, every atomic write (checkpoint,
picture, log rewrite: after the bytes are written, before the rename) and
every log append (after half a row, so the line is torn). Each kill and each
file deletion (with the file's size at that moment) is appended to the
`record` file, which the parent reads. Only public entry points are used:
`train_swap` and `ugatit.Trainer`.
"""

import json
import os
import signal
import sys

import numpy as np
import torch

spec = json.loads(sys.argv[1])
torch.set_num_threads(1)
record = spec["record"]
probes = set(spec.get("probes", ("step", "save", "picture", "log")))
state = {"hits": 0, "step": 0}


def note(line: str) -> None:
    with open(record, "a") as f:
        f.write(line + "\n")


def probe(kind: str, before_kill=None) -> None:
    if kind not in probes:
        return
    state["hits"] += 1
    if state["hits"] == spec.get("kill_at"):
        if before_kill is not None:
            before_kill()
        note(f"kill {kind} {state['step']}")
        os.kill(os.getpid(), signal.SIGKILL)


# every deletion, with the size the file had when it was deleted (the Drive rule: 0 bytes)
_unlink = os.unlink


def recording_unlink(path, *args, **kwargs):
    try:
        size = os.stat(path).st_size
    except OSError:
        size = -1
    note(f"unlink {size} {path}")
    return _unlink(path, *args, **kwargs)


os.unlink = recording_unlink

from helpers import storage, train  # noqa: E402

_atomic_write = storage.atomic_write


def atomic_write(path, write, *args, **kwargs):
    def write_then_probe(f):
        write(f)
        f.flush()
        name = str(path)
        probe("save" if name.endswith(".pt") else "picture" if name.endswith((".png", ".gif")) else "log")

    return _atomic_write(path, write_then_probe, *args, **kwargs)


storage.atomic_write = atomic_write

_append = train.CsvLog.append


def append(self, row):
    def torn_line():
        with open(self.path, "a") as f:
            f.write(",".join(str(v) for v in row.values())[:5])

    probe("log", torn_line)
    return _append(self, row)


train.CsvLog.append = append


def counted(step_fn):
    def wrapper(self, *args, **kwargs):
        out = step_fn(self, *args, **kwargs)
        state["step"] = self.step
        probe("step")
        return out

    return wrapper


if spec["trainer"] == "swap":
    from helpers.swap import SwapConfig, SwapTrainer, train_swap

    SwapTrainer.train_step = counted(SwapTrainer.train_step)
    faces = np.load(spec["faces"])
    cfg = SwapConfig.quick(**spec["config"])
    run = train_swap(cfg, faces[0], faces[1], spec["folder"], device="cpu", progress=False)
else:
    from helpers.ugatit import Trainer, UGATITConfig

    Trainer.train_step = counted(Trainer.train_step)
    cfg = UGATITConfig.quick(**spec["config"])
    run = Trainer(cfg, spec["faces"], spec["folder"], "cpu", quiet=True).train()
note(f"done {run.step} {run.stopped}")
