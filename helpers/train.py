"""The one training loop both trainers share: swap (notebook 03) and U-GAT-IT (notebook 04).

A trainer (a "task") supplies only what is its own:

    task.cfg            a config with steps/save_every/save_minutes/keep_last/milestone_every/
                        log_every/preview_every (+ optional log_minutes, preview_minutes)
    task.folder         the run folder
    task.step           the number of steps done
    task.total_steps    where the run ends
    task.train_step()   one optimisation step; it increments task.step as its last act
    task.state()        everything needed to continue exactly (plain state dicts)
    task.load_state(s)  the inverse, given a loaded checkpoint
    task.pending_losses()  the loss sums since the last log row (checked for NaN before a row or a save)
    task.log_row()      a dict for log.csv (averages since the last row), or None when there is nothing to say
    task.pictures()     {"subfolder/name-<step>.png": RGB uint8 array}: previews, timelapse frames
    task.picture_dirs   the subfolders those pictures go to (trimmed on resume)
    task.timelapse_dir  the subfolder the timelapse GIF is made from
    task.hooks          [Hook(...)]: extra work on its own cadence (U-GAT-IT's KID), each with its own CSV

and `fit(task)` does the rest, the same way for both: device and precision
policy, resume (when training starts, not before), deferred Ctrl-C, cadence by
steps and by minutes, the atomic CSV log, atomic pictures, the timelapse, the
live view in the notebook, the NaN guard, the progress bar, TensorBoard, rank 0
of a torchrun job writing alone, and one result object.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import storage
from .checkpoint import Checkpointer, load_latest
from .storage import remove


# ---------------------------------------------------------------- device and precision policy

def pick_device(device: torch.device | str | None = None) -> torch.device:
    """The device asked for; else this rank's GPU under torchrun; else CUDA, MPS or CPU (helpers.env's choice)."""
    if device is not None:
        return torch.device(device)
    if world_size() > 1 and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    from .env import pick_device as env_pick

    return env_pick()


def autocast_dtype(device: torch.device | str, amp: str = "auto") -> torch.dtype | None:
    """One precision policy for training and inference alike.

    auto: bf16 where the GPU computes it natively (Ampere and newer), fp16 (with a
    grad scaler when training) on older GPUs such as the T4, which emulate bf16
    slowly; float32 on a CPU, where autocast is slower on most machines. "bf16",
    "fp16" and "off" force a choice.
    """
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if amp != "auto":
        raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', not {amp!r}")
    device = torch.device(device)
    if device.type != "cuda":
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.bfloat16 if torch.cuda.get_device_capability(index)[0] >= 8 else torch.float16


def autocast(device: torch.device | str, dtype: torch.dtype | None):
    """torch.autocast for `dtype`, or nothing for float32."""
    device = torch.device(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def use_channels_last(device: torch.device | str, setting: str | bool = "auto") -> bool:
    """NHWC feeds tensor cores on CUDA; on a CPU it measured no faster (or slower), so 'auto' is CUDA only."""
    if isinstance(setting, bool):
        setting = "auto" if setting else "off"
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"channels_last must be 'auto', 'on' or 'off', not {setting!r}")
    return setting == "on" or (setting == "auto" and torch.device(device).type == "cuda")


def make_adam(params, device: torch.device | str, lr: float, betas=(0.9, 0.999), weight_decay: float = 0.0, fused: bool = True) -> torch.optim.Adam:
    """Adam with the fused kernel on CUDA (one pass over all weights instead of one per tensor)."""
    fused = fused and torch.device(device).type == "cuda"
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, **({"fused": True} if fused else {}))


def make_scaler(device: torch.device | str, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A grad scaler that is on only for fp16 (bf16 and float32 have float32's range)."""
    return torch.amp.GradScaler(torch.device(device).type, enabled=dtype == torch.float16)


def enable_tf32(device: torch.device | str) -> None:
    """TF32 matmuls and convolutions on Ampere+ GPUs: float32 weights, tensor-core speed."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


# ---------------------------------------------------------------- several processes (torchrun)

def world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get("RANK", 0))


def is_main() -> bool:
    """Rank 0 alone writes checkpoints, logs and pictures."""
    return rank() == 0


def init_distributed(device: torch.device | str | None = None) -> torch.device:
    """Join the torchrun job when there is one (NCCL on GPUs, gloo on CPUs); return this rank's device."""
    device = pick_device(device)
    if int(os.environ.get("WORLD_SIZE", 1)) > 1 and not torch.distributed.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def barrier() -> None:
    if world_size() > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()


def average_gradients(params) -> None:
    """Mean of each gradient over all ranks (what DistributedDataParallel does, for modules it cannot wrap)."""
    if world_size() < 2:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()


def rank_slice(n: int) -> slice:
    """This rank's share of a batch of n drawn identically on every rank: the data order stays a function of seed and step."""
    world = world_size()
    if n % world:
        raise ValueError(f"The batch ({n}) must split evenly over {world} processes: choose a batch_size divisible by {world}.")
    per = n // world
    return slice(rank() * per, (rank() + 1) * per)


def _any_rank(flag: bool) -> bool:
    """True on every rank when it is true on one (a Ctrl-C reaches ranks at different steps)."""
    if world_size() < 2 or not torch.distributed.is_initialized():
        return flag
    t = torch.tensor([int(flag)], device=_collective_device())
    torch.distributed.all_reduce(t)
    return bool(t.item())


def _collective_device() -> torch.device:
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# ---------------------------------------------------------------- data

def split_holdout(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) indices: a fixed random `fraction` of the faces is never trained on.

    The same rule in both lessons: at least one face held out when `fraction` > 0,
    at least one left to train on."""
    if n < 2:
        raise ValueError(f"Need at least 2 faces per identity to train and check, got {n}.")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_out = min(max(1, round(n * fraction)), n - 1) if fraction > 0 else 0
    return order[n_out:].sort().values, order[:n_out].sort().values



# ---------------------------------------------------------------- files that survive a kill

def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write to a temp name in the same folder, fsync, rename: a kill leaves the old file or the new one, never half."""
    return storage.atomic_write(path, lambda f: f.write(data), expected_size=len(data))


def write_picture(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """An RGB uint8 picture as a PNG, atomically."""
    import cv2

    ok, png = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"Could not encode a {rgb.dtype} {rgb.shape} picture as PNG.")
    return atomic_write_bytes(path, png.tobytes())


_STEP_RE = re.compile(r"(\d+)$")


def picture_step(path: Path) -> int | None:
    """The step a picture belongs to: the digits its name ends with (step-000000012.png -> 12)."""
    m = _STEP_RE.search(path.stem)
    return int(m.group(1)) if m else None


def pictures_in(folder: str | os.PathLike) -> list[Path]:
    """Step-named PNGs of a folder, in step order."""
    folder = Path(folder)
    found = [(picture_step(p), p) for p in folder.glob("*.png")] if folder.is_dir() else []
    return [p for s, p in sorted((s, p) for s, p in found if s is not None)]


def trim_pictures(folder: str | os.PathLike, step: int) -> list[Path]:
    """Delete pictures newer than `step` (the checkpoint we resume from) and temp files of killed writes."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    gone = [p for p in pictures_in(folder) if picture_step(p) > step]
    for p in gone:
        remove(p)
    return gone + storage.clean_stale_temp_files(folder)


class CsvLog:
    """A CSV file of rows with a "step" column: appended as training goes, trimmed atomically on resume.

    An append killed half-way leaves at most one broken last line; `trim` (run
    at every start) drops it together with every row past the checkpoint and
    rewrites the file through a temp file, so a kill during the trim leaves the
    old file whole.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def rows(self) -> list[dict]:
        """Complete rows with a readable step (a torn last line is skipped)."""
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header or header[0] != "step":
                return []
            out = []
            for values in reader:
                if len(values) != len(header):
                    continue
                try:
                    float(values[0])
                except ValueError:
                    continue
                out.append(dict(zip(header, values)))
        return out

    def trim(self, step: int) -> None:
        """Keep only complete rows up to `step`; start afresh at step 0."""
        if not self.path.exists():
            return
        if step <= 0:
            remove(self.path)
            return
        rows = [r for r in self.rows() if float(r["step"]) <= step]
        if not rows:
            remove(self.path)
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.path, buffer.getvalue().encode())

    def append(self, row: dict) -> None:
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row), lineterminator="\n")
            if new:
                writer.writeheader()
            writer.writerow(row)
            f.flush()


# ---------------------------------------------------------------- the timelapse

def make_timelapse(frames: str | os.PathLike, out: str | os.PathLike | None = None, max_frames: int = 120,
                   seconds_per_frame: float = 0.25, hold_last: float = 2.0) -> Path | None:
    """A GIF of the step-named PNGs in `frames` (evenly thinned to `max_frames`), the last frame held longer.

    Written atomically to `out` (default: timelapse.gif next to the frames folder).
    A picture that cannot be read (a disk error) is skipped, not fatal.
    """
    from PIL import Image

    frames = Path(frames)
    paths = pictures_in(frames)
    if len(paths) > max_frames:
        keep = np.linspace(0, len(paths) - 1, max_frames).round().astype(int)
        paths = [paths[i] for i in sorted(set(keep))]
    images = []
    for p in paths:
        try:
            with Image.open(p) as im:
                images.append(im.convert("RGB"))
        except OSError as exc:
            warnings.warn(f"Timelapse: skipping unreadable {p.name} ({exc}).", stacklevel=2)
    if not images:
        return None
    size = images[-1].size
    images = [(im if im.size == size else im.resize(size)).quantize(colors=255, method=Image.Quantize.MEDIANCUT) for im in images]
    durations = [int(seconds_per_frame * 1000)] * (len(images) - 1) + [int(hold_last * 1000)]
    out = Path(out) if out else frames.parent / "timelapse.gif"
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return atomic_write_bytes(out, buffer.getvalue())


# ---------------------------------------------------------------- Ctrl-C

class DeferredInterrupt:
    """The first Ctrl-C (Jupyter's stop button) becomes a flag the loop reads after the step.

    The step finishes, a checkpoint is saved and the call returns. A second
    Ctrl-C raises KeyboardInterrupt at once; the loop then saves only if no step
    was under way, so a half-applied step is never saved. Outside the main
    thread there is no handler and KeyboardInterrupt takes the second path.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nInterrupted: finishing this step and saving (press again to stop at once, without saving a half step).", flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


# ---------------------------------------------------------------- cadence

class Every:
    """Due every `steps` steps and/or every `minutes` minutes (either may be off: None or 0)."""

    def __init__(self, steps: int | None = None, minutes: float | None = None):
        self.steps = steps or None
        self.seconds = minutes * 60 if minutes else None
        self.last = time.monotonic()

    def due(self, step: int) -> bool:
        if self.steps and step % self.steps == 0:
            return True
        return self.seconds is not None and time.monotonic() - self.last >= self.seconds

    def done(self) -> None:
        self.last = time.monotonic()


@dataclass
class Hook:
    """Extra work on its own cadence (U-GAT-IT's KID). `run()` returns a row for `<name>.csv`, or None."""

    name: str
    run: Callable[[], dict | None]
    every: int | None = None
    minutes: float | None = None


# ---------------------------------------------------------------- watching

class LiveView:
    """The newest picture and log line, updated in place in the notebook (plain IPython display
    handles: works with ipywidgets 7 and 8 alike, and does nothing outside Jupyter)."""

    def __init__(self, enabled: bool):
        self.handles = None
        if not enabled or not is_main():
            return
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        self.handles = (display(display_id=True), display(display_id=True))

    def picture(self, path: Path | None) -> None:
        if self.handles is not None and path is not None:
            from IPython.display import Image

            self.handles[0].update(Image(filename=str(path)))

    def text(self, line: str) -> None:
        if self.handles is not None:
            from IPython.display import Markdown

            self.handles[1].update(Markdown(line))


class TensorBoard:
    """Log rows and previews as TensorBoard events where the tensorboard package is installed (Colab has it)."""

    def __init__(self, folder: Path, start_step: int):
        self.writer = None
        if not is_main():
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard not installed: the CSV log is the record
            return
        # purge_step: events past the checkpoint we resume from are hidden, as the CSV rows are trimmed
        self.writer = SummaryWriter(str(folder / "tensorboard"), purge_step=start_step or None)

    def row(self, name: str, row: dict) -> None:
        if self.writer is None:
            return
        step = int(float(row["step"]))
        for key, value in row.items():
            if key == "step":
                continue
            with contextlib.suppress(TypeError, ValueError):
                value = float(value)
                if math.isfinite(value):
                    self.writer.add_scalar(f"{name}/{key}", value, step)

    def picture(self, tag: str, rgb: np.ndarray, step: int) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, rgb, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _check_finite(task, where: str) -> None:
    """The NaN guard: stop before a non-finite loss reaches the log or a checkpoint."""
    sums = task.pending_losses()
    if sums is not None and not bool(torch.isfinite(sums).all()):
        raise FloatingPointError(
            f"The losses are not finite ({sums.tolist()}) at step {task.step}, {where}. Nothing was saved: "
            f"the last good checkpoint in {task.folder} is intact. Try amp='off' or a lower lr, then run again."
        )


# ---------------------------------------------------------------- the result

@dataclass
class RunResult:
    """What a training call did and where its files are. `result["step"]` works too."""

    folder: Path
    step: int
    start_step: int
    stopped: str  # "done", "steps" (the steps asked for this call) or "interrupted"
    seconds: float
    log: Path
    timelapse: Path | None = None
    pictures: list[Path] = field(default_factory=list)

    @property
    def interrupted(self) -> bool:
        return self.stopped == "interrupted"

    @property
    def previews(self) -> list[Path]:
        return self.pictures

    @property
    def latest_preview(self) -> Path | None:
        return self.pictures[-1] if self.pictures else None

    @property
    def sec_per_step(self) -> float | None:
        done = self.step - self.start_step
        return self.seconds / done if done else None

    def __getitem__(self, key: str):
        return getattr(self, key)


# ---------------------------------------------------------------- the loop

def resume(task) -> bool:
    """Load the newest readable checkpoint into the task unless it holds state already; return whether one loaded."""
    if getattr(task, "loaded", False):
        return False
    state = load_latest(task.folder, map_location="cpu")
    task.loaded = True
    if state is None:
        return False
    task.load_state(state)
    return True


def fit(task, steps: int | None = None, progress: bool = True, show: bool = False,
        callback: Callable[[int, Any], None] | None = None, name: str = "train") -> RunResult:
    """Train `task` until its last step (or `steps` more), resuming from its newest checkpoint.

    Saves on schedule, at the end, and when Ctrl-C is pressed; returns a RunResult.
    """
    from tqdm.auto import tqdm

    cfg, folder, main = task.cfg, Path(task.folder), is_main()
    say = print if main and not getattr(task, "quiet", False) else None  # rank 0 speaks, unless the task is quiet
    folder.mkdir(parents=True, exist_ok=True)
    t_call = time.perf_counter()

    # -- resume: now, when training starts, and the files follow the checkpoint
    if resume(task) and say:
        say(f"Resuming from step {task.step} in {folder}.")
    start = task.step
    until = task.total_steps if steps is None else min(task.total_steps, start + steps)
    log = CsvLog(folder / "log.csv")
    hook_logs = {h.name: CsvLog(folder / f"{h.name}.csv") for h in task.hooks}
    if main:
        for csv_log in (log, *hook_logs.values()):
            csv_log.trim(start)
        for sub in task.picture_dirs:
            trim_pictures(folder / sub, start)
    barrier()
    shown = pictures_in(folder / task.picture_dirs[0]) if task.picture_dirs else []
    view, board = LiveView(show), TensorBoard(folder, start)

    # -- the pieces of one step, in the order they run
    t_log = time.perf_counter()

    def write_log() -> None:
        nonlocal t_log
        _check_finite(task, "before a log row")
        row = task.log_row(time.perf_counter() - t_log)
        t_log = time.perf_counter()
        if row is None or not main:
            return
        log.append(row)
        board.row("train", row)
        bar.set_postfix({k: v for k, v in list(row.items())[1:4]}, refresh=False)
        view.text(" | ".join(f"{k} {v}" for k, v in row.items()))

    def write_pictures() -> None:
        pictures = task.pictures() if main else {}
        for i, (rel, rgb) in enumerate(pictures.items()):
            path = write_picture(folder / rel, rgb)
            if i == 0:
                shown.append(path)
                view.picture(path)
                board.picture(Path(rel).parent.name or "picture", rgb, task.step)

    checkpointer = Checkpointer(folder, cfg.save_every, cfg.save_minutes, cfg.keep_last, cfg.milestone_every or None,
                                say=say)

    def save() -> None:
        nonlocal saved_at
        _check_finite(task, "before a save")
        state = task.state()  # every rank: a collective may gather it
        if main:  # milestones keep only what inference needs, in half precision
            checkpointer.save(task.step, state, weights=getattr(task, "inference_state", None))
        barrier()
        saves.done()
        saved_at = task.step

    def save_if_late() -> None:
        """The time-based save, checked after the step and after each piece of work a slow step may add."""
        if saves.seconds is not None and saved_at != task.step and _any_rank(time.monotonic() - saves.last >= saves.seconds):
            save()

    logs = Every(cfg.log_every, getattr(cfg, "log_minutes", None))
    previews = Every(cfg.preview_every, getattr(cfg, "preview_minutes", None))
    pictures_on = bool(previews.steps or previews.seconds)
    saves = Every(cfg.save_every, cfg.save_minutes)
    hooks = [(h, Every(h.every, h.minutes)) for h in task.hooks]
    saved_at = start

    bar = tqdm(total=until, initial=start, disable=not (progress and main), desc=name, unit="step", dynamic_ncols=True)
    if start == 0:  # the untrained model: the first point of the curves and the first timelapse frame
        write_log()
        if pictures_on:
            write_pictures()
    elif shown:
        view.picture(shown[-1])
    stopped = "done" if until == task.total_steps else "steps"
    if task.step >= until and say:
        say(f"Already at step {task.step} of {task.total_steps}: nothing to train.")
    in_step = half_step = False
    with DeferredInterrupt() as ctrl_c:
        try:
            while task.step < until:
                in_step = True
                task.train_step()
                in_step = False
                step, end = task.step, task.step == task.total_steps
                bar.update(1)
                if logs.due(step) or end:
                    write_log()
                    logs.done()
                save_if_late()
                if pictures_on and (previews.due(step) or end):
                    write_pictures()
                    previews.done()
                save_if_late()
                for hook, every in hooks:
                    if every.due(step):
                        row = hook.run() if main else None
                        every.done()
                        if row is not None and main:
                            hook_logs[hook.name].append(row)
                            board.row(hook.name, row)
                    save_if_late()  # every rank asks, in the same order: it is a collective under torchrun
                if (_any_rank(saves.due(step)) or step == until) and saved_at != step:
                    save()
                if callback is not None:
                    callback(step, task)
                if _any_rank(ctrl_c.requested) and step < until:
                    stopped = "interrupted"
                    if saved_at != step:
                        save()
                    break
        except KeyboardInterrupt:  # a second Ctrl-C: stop now; save only a whole step
            stopped = "interrupted"
            if in_step:
                half_step = True
                task.loaded = False  # the next call reloads the checkpoint instead of continuing the half step
                print(f"\nStopped in the middle of step {task.step + 1}: that half step is not saved; "
                      f"the newest checkpoint in {folder} is intact. Run the cell again to continue.", flush=True)
            elif saved_at != task.step:
                save()
        finally:
            bar.close()
            board.close()
    if stopped == "interrupted" and say and not half_step:
        say(f"Stopped at step {task.step}; the checkpoint is saved. Run the cell again to continue.")
    timelapse = None
    if main and getattr(task, "timelapse_dir", None):
        timelapse = make_timelapse(folder / task.timelapse_dir, folder / "timelapse.gif")
    step = saved_at if half_step else task.step  # after a half step, the step the run folder holds
    return RunResult(folder, step, start, stopped, time.perf_counter() - t_call, log.path, timelapse, shown)


# ---------------------------------------------------------------- outside the notebooks (torchrun)

def command_line(description: str, config_class, add_arguments: Callable, argv=None):
    """Parse a trainer's command line: its own arguments plus --quick, --set key=value and --device.

    `--set` takes any config field (`--set steps=5000 --set lr=1e-4`); values are
    read as Python literals where they parse (numbers, True, None, tuples), else as text.
    """
    import argparse
    import ast
    from dataclasses import fields

    parser = argparse.ArgumentParser(description=description)
    add_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="start from the config's quick() preset (a CPU smoke run)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field (repeatable)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: this rank's GPU under torchrun, else the best there is)")
    parser.add_argument("--steps-this-run", type=int, default=None, help="stop (and save) after this many steps")
    args = parser.parse_args(argv)
    known, overrides = {f.name for f in fields(config_class)}, {}
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or key not in known:
            parser.error(f"--set {item!r}: expected KEY=VALUE with KEY one of {sorted(known)}")
        try:
            overrides[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[key] = text
    cfg = config_class.quick(**overrides) if args.quick else config_class(**overrides)
    return args, cfg


def finish_distributed() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
