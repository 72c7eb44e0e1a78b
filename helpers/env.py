"""Where am I running, where does my work go, and on which device.

`ws = setup()` is the first line of every notebook. In Colab it mounts Google
Drive so checkpoints survive the end of a session; elsewhere the workspace is
`./workspace` or `$POLYJUICE_WORKSPACE`. If the Drive prompt is declined, the
work goes to a local folder that lasts as long as the Colab session.

A notebook that cannot go on (no GPU for full training, no faces yet) stops
with a LessonStop: one sentence that says what to do, without a traceback.
"""

from __future__ import annotations

import os
import random
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .storage import DRIVE_MOUNT

STEP_FOLDERS = ("raw", "faces", "checkpoints", "renders", "samples")
COLAB_LOCAL_WORKSPACE = Path("/content/polyjuice_workspace")  # used when Drive is declined: gone with the session
SWITCH_TO_GPU = "Runtime > Change runtime type > T4 GPU"


class LessonStop(RuntimeError):
    """A notebook cannot go on; the message is one sentence that says what to run or set first.

    In Jupyter and Colab it prints as that sentence alone: the traceback would
    only point into the helpers, which are not where the fix is.
    """

    def _render_traceback_(self) -> list[str]:  # IPython's hook for custom error display
        return [f"\033[1;31mStopped:\033[0m {self}"]


@dataclass
class Workspace:
    """Paths of the course's workspace plus the device the notebooks use."""

    root: Path
    platform: str  # "colab", "kaggle" or "local"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    persistent: bool = True  # False: a Colab session folder, deleted when the runtime goes

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def faces(self) -> Path:
        return self.root / "faces"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def renders(self) -> Path:
        return self.root / "renders"

    @property
    def samples(self) -> Path:
        return self.root / "samples"


def detect_platform() -> str:
    """'colab', 'kaggle' or 'local'."""
    if "google.colab" in sys.modules or os.environ.get("COLAB_RELEASE_TAG"):
        return "colab"
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE") or Path("/kaggle/working").is_dir():
        return "kaggle"
    return "local"


def mount_drive(mount_point: Path | None = None) -> Path:
    """Mount Google Drive in Colab (at DRIVE_MOUNT by default); a second call is a no-op."""
    mount_point = Path(mount_point or DRIVE_MOUNT)
    my_drive = mount_point / "MyDrive"
    if not my_drive.is_dir():
        from google.colab import drive  # only importable inside Colab

        drive.mount(str(mount_point))
    return my_drive


def workspace_root(platform: str, drive_folder: str = "polyjuice", workspace: str | os.PathLike | None = None) -> Path:
    """Pick the workspace folder: explicit argument, then $POLYJUICE_WORKSPACE, then the platform default.

    In Colab that is `MyDrive/<drive_folder>`; when the Drive mount is declined
    or fails (or `drive_folder` is empty) it is COLAB_LOCAL_WORKSPACE, with a
    warning that it will not outlive the session.
    """
    if workspace is not None:
        return Path(workspace).expanduser().resolve()
    if os.environ.get("POLYJUICE_WORKSPACE"):
        return Path(os.environ["POLYJUICE_WORKSPACE"]).expanduser().resolve()
    if platform == "colab":
        return colab_root(drive_folder)
    if platform == "kaggle":
        return Path("/kaggle/working/polyjuice")
    return Path("workspace").resolve()


def colab_root(drive_folder: str) -> Path:
    """MyDrive/<drive_folder>, or the session's local folder when Drive is not wanted or not mounted."""
    if not drive_folder:
        reason = "DRIVE_FOLDER is empty"
    else:
        try:
            return mount_drive() / drive_folder
        except Exception as exc:  # declined prompt, timeout, no Drive on this account: carry on locally
            reason = f"Google Drive was not mounted ({type(exc).__name__}: {str(exc).strip()[:120] or 'no reason given'})"
    warnings.warn(f"{reason}, so this notebook works in {COLAB_LOCAL_WORKSPACE}, which is deleted when the Colab "
                  "session ends: download what you want to keep, or run this cell again and allow Drive.", stacklevel=4)
    return COLAB_LOCAL_WORKSPACE


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA, then Apple MPS, then CPU ($POLYJUICE_DEVICE or `prefer` overrides)."""
    prefer = prefer or os.environ.get("POLYJUICE_DEVICE")
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device, platform: str) -> str:
    """One line on what we found: the GPU's name and memory, or a CPU with the way to get a GPU."""
    device = torch.device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        free, total = torch.cuda.mem_get_info(device)
        return (f"Device: {props.name}, {total / 2**30:.1f} GiB memory ({free / 2**30:.1f} GiB free), "
                f"torch {torch.__version__}, CUDA {torch.version.cuda} ({platform}).")
    if device.type == "mps":
        return f"Device: Apple GPU via MPS ({platform})."
    hint = (
        f" In Colab: {SWITCH_TO_GPU}, then run the notebook again."
        if platform == "colab"
        else " Use a machine with a GPU for full-length training."
    )
    return f"Device: CPU ({os.cpu_count()} cores, {platform}) - training will be slow; QUICK mode is fine.{hint}"


def _ram_gib() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):  # not on Linux/macOS
        return None


def device_summary(device: torch.device | str, platform: str) -> list[str]:
    """What the device cell shows: the GPU with its memory and number formats, or the CPU and how to get a GPU."""
    device = torch.device(device)
    ram = _ram_gib()
    host = f"{os.cpu_count()} CPU cores" + (f", {ram:.1f} GiB RAM" if ram else "")
    lines = [describe_device(device, platform)]
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        bf16 = torch.cuda.is_bf16_supported()
        lines.append(f"Compute capability {major}.{minor}; mixed precision: {'bf16' if bf16 else 'fp16 with a grad scaler'}; host: {host}.")
    else:
        lines.append(f"Host: {host}.")
    return lines


def show_device(ws: "Workspace") -> list[str]:
    """Print (and return) the lines of the notebooks' device cell."""
    lines = device_summary(ws.device, ws.platform)
    print("\n".join(lines))
    return lines


def check_training_device(device: torch.device | str, quick: bool, allow_cpu: bool = False, platform: str | None = None) -> None:
    """Stop before a full-length training starts on a CPU, where it would take days; QUICK runs always go on.

    `allow_cpu` (the notebooks' ALLOW_CPU_TRAINING) says "I know, train here anyway".
    """
    if quick or allow_cpu or torch.device(device).type != "cpu":
        return
    platform = platform or detect_platform()
    switch = f"switch to a GPU ({SWITCH_TO_GPU}, then run all cells again)" if platform == "colab" else "use a machine with a GPU"
    raise LessonStop(f"Full-length training on a CPU would take days: {switch}, or set PRESET = \"laptop\" for a real run "
                     "on this CPU, or set QUICK = True for a short check, "
                     "or ALLOW_CPU_TRAINING = True to train on the CPU anyway.")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so runs repeat."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(
    seed: int = 0,
    workspace: str | os.PathLike | None = None,
    drive_folder: str = "polyjuice",
    device: str | None = None,
    quiet: bool = False,
) -> Workspace:
    """Find the workspace, create its step folders, choose the device, seed everything.

    Safe to call again: mounting, folder creation and seeding are idempotent.
    """
    platform = detect_platform()
    root = workspace_root(platform, drive_folder, workspace)
    for name in STEP_FOLDERS:
        (root / name).mkdir(parents=True, exist_ok=True)
    dev = pick_device(device)
    seed_everything(seed)
    torch.backends.cudnn.benchmark = True  # fixed-size inputs: let cuDNN pick the fastest kernels
    ws = Workspace(root=root, platform=platform, device=dev, persistent=root != COLAB_LOCAL_WORKSPACE)
    if platform == "colab":
        from .viz import enable_colab_widgets

        enable_colab_widgets()  # ipywidgets >= 8 in Colab: without it tqdm bars and widgets stay blank
    if not quiet:
        print(f"Workspace: {root}")
        print(describe_device(dev, platform))
    return ws
