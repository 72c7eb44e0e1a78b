"""Where am I running, where does my work go, and on which device.

`ws = setup()` is the first line of every notebook. In Colab it mounts Google
Drive so checkpoints survive the end of a session; elsewhere the workspace is
`./workspace` or `$POLYJUICE_WORKSPACE`.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

STEP_FOLDERS = ("raw", "faces", "checkpoints", "renders", "samples")
DRIVE_MOUNT = Path("/content/drive")


@dataclass
class Workspace:
    """Paths of the course's workspace plus the device the notebooks use."""

    root: Path
    platform: str  # "colab", "kaggle" or "local"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

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


def mount_drive(mount_point: Path = DRIVE_MOUNT) -> Path:
    """Mount Google Drive in Colab; a second call is a no-op."""
    my_drive = mount_point / "MyDrive"
    if not my_drive.is_dir():
        from google.colab import drive  # only importable inside Colab

        drive.mount(str(mount_point))
    return my_drive


def workspace_root(platform: str, drive_folder: str = "polyjuice", workspace: str | os.PathLike | None = None) -> Path:
    """Pick the workspace folder: explicit argument, then $POLYJUICE_WORKSPACE, then the platform default."""
    if workspace is not None:
        return Path(workspace).expanduser().resolve()
    if os.environ.get("POLYJUICE_WORKSPACE"):
        return Path(os.environ["POLYJUICE_WORKSPACE"]).expanduser().resolve()
    if platform == "colab":
        return mount_drive() / drive_folder
    if platform == "kaggle":
        return Path("/kaggle/working/polyjuice")
    return Path("workspace").resolve()


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
    """One line on what we found, with advice when it is only a CPU."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"Device: {props.name}, {props.total_memory / 2**30:.1f} GiB ({platform})."
    if device.type == "mps":
        return f"Device: Apple GPU via MPS ({platform})."
    hint = (
        " In Colab: Runtime > Change runtime type > GPU, then run the notebook again."
        if platform == "colab"
        else " Use a machine with a GPU for full-length training."
    )
    return f"Device: CPU ({os.cpu_count()} cores, {platform}) - training will be slow; QUICK mode is fine.{hint}"


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
    ws = Workspace(root=root, platform=platform, device=dev)
    if not quiet:
        print(f"Workspace: {root}")
        print(describe_device(dev, platform))
    return ws
