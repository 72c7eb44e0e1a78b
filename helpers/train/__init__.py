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

One concern per module:

    precision.py    device choice, autocast dtype, channels-last, fused Adam, grad scaler, TF32
    distributed.py  torchrun: rank, world size, batch slices, gradient averaging
    holdout.py      the held-out split both lessons use
    runfiles.py     the CSV log, step-named pictures and the timelapse, all kill-safe
    cadence.py      deferred Ctrl-C, "every N steps or M minutes", hooks
    watch.py        the live view in the notebook, TensorBoard
    loop.py         fit(task) and its RunResult
    saved_run.py    a run folder holding another model: continue it visibly, or stop
    cli.py          a trainer's command line (python -m helpers.swap / helpers.ugatit)
"""

from .cadence import DeferredInterrupt, Every, Hook
from .cli import PRESETS, command_line, from_preset, run_command_line
from .distributed import (
    average_gradients,
    barrier,
    finish_distributed,
    init_distributed,
    is_main,
    rank,
    rank_slice,
    world_size,
)
from .holdout import split_holdout
from .loop import RunResult, fit, resume
from .precision import autocast, autocast_dtype, enable_tf32, make_adam, make_scaler, pick_device, use_channels_last
from .runfiles import CsvLog, atomic_write_bytes, make_timelapse, picture_step, pictures_in, trim_pictures, write_picture
from .saved_run import match_saved_run, saved_config
from .watch import LiveView, TensorBoard

__all__ = [
    "CsvLog", "DeferredInterrupt", "Every", "Hook", "LiveView", "PRESETS", "RunResult", "TensorBoard",
    "atomic_write_bytes", "autocast", "autocast_dtype", "average_gradients", "barrier", "command_line",
    "enable_tf32", "finish_distributed", "fit", "from_preset", "init_distributed", "is_main", "make_adam", "make_scaler",
    "make_timelapse", "match_saved_run", "pick_device", "picture_step", "pictures_in", "rank", "rank_slice",
    "resume", "run_command_line", "saved_config", "split_holdout", "trim_pictures", "use_channels_last", "world_size", "write_picture",
]
