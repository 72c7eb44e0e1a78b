"""The loop itself: `fit(task)` resumes, steps, logs, draws, saves and stops, the same way for both trainers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..checkpoint import Checkpointer, load_latest
from .cadence import DeferredInterrupt, Every
from .distributed import _any_rank, barrier, is_main
from .runfiles import CsvLog, make_timelapse, pictures_in, trim_pictures, write_picture
from .watch import LiveView, TensorBoard


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

class Estimate:
    """One line, once, after the first steps: how long the rest of this call will take on this machine.

    Measured from the steps themselves (the first few are skipped: they warm up
    caches and allocators), so a laptop, a T4 and an A100 each get their own answer.
    """

    def __init__(self, start: int, until: int, say, skip: int = 3, after_seconds: float = 20.0, after_steps: int = 200):
        self.start, self.until, self.say, self.skip = start, until, say, skip
        self.after_seconds, self.after_steps = after_seconds, after_steps
        self.t0 = self.said = None

    def step(self, step: int) -> None:
        if self.said or self.say is None:
            return
        done = step - self.start
        if done == self.skip:
            self.t0 = time.perf_counter()
            return
        if self.t0 is None or done <= self.skip:
            return
        seconds = time.perf_counter() - self.t0
        if seconds >= self.after_seconds or done - self.skip >= self.after_steps:
            per_step = seconds / (done - self.skip)
            self.said = True
            self.say(f"{1 / per_step:.1f} steps/s on this machine: the {self.until - step:,} steps left take about "
                     f"{_duration(per_step * (self.until - step))} (saves and pictures add a little).")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


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
    latest = {}  # the newest log line and each hook's newest row, shown together in the live view

    def show(name: str, row: dict) -> None:
        latest[name] = (f"{name}: " if name != "log" else "") + " | ".join(f"{k} {v}" for k, v in row.items())
        view.text("  \n".join(latest.values()))

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
        show("log", row)

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
    eta = Estimate(start, until, say)
    with DeferredInterrupt() as ctrl_c:
        try:
            while task.step < until:
                in_step = True
                task.train_step()
                in_step = False
                step, end = task.step, task.step == task.total_steps
                bar.update(1)
                eta.step(step)
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
                            show(hook.name, row)
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
