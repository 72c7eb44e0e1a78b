"""The set-up check: one line per item, and a problem says what to do (Colab, the disk and the camera faked)."""

import subprocess
import sys

import torch

from helpers import checkup as checkup_module
from helpers.checkup import checkup
from helpers.env import Workspace


def lines_for(ws, monkeypatch, cameras, free=None, managed=False):
    monkeypatch.setenv("POLYJUICE_MANAGED_COLAB", "1" if managed else "0")
    if free is not None:
        monkeypatch.setattr(checkup_module, "free_bytes", lambda path: free)
    printed = []
    checks = checkup(ws, out=printed.append, cameras=lambda platform: cameras)
    assert printed == [str(c) for c in checks]
    return {c.item: c for c in checks}, printed


def test_a_laptop_without_a_gpu_gets_one_line_per_item(tmp_path, monkeypatch):
    ws = Workspace(root=tmp_path, platform="local", device=torch.device("cpu"))
    checks, printed = lines_for(ws, monkeypatch, cameras=1, free=50 * 2**30)
    assert list(checks) == ["runtime", "device", "workspace", "free space", "camera"]
    assert len(printed) == 5 and all("\n" not in line for line in printed)
    assert checks["runtime"].level == "ok" and "face swap included" in checks["runtime"].says
    assert checks["device"].level == "warn" and "laptop presets run" in checks["device"].says
    assert checks["workspace"].level == "ok" and "this computer's disk" in checks["workspace"].says
    assert checks["free space"].level == "ok" and checks["camera"].level == "ok"


def test_a_hosted_colab_session_without_drive_space_or_camera_says_what_to_do(tmp_path, monkeypatch):
    ws = Workspace(root=tmp_path, platform="colab", device=torch.device("cpu"), persistent=False)
    checks, printed = lines_for(ws, monkeypatch, cameras=0, free=300 * 2**20, managed=True)
    assert "Connect to a local runtime" in checks["runtime"].says and checks["runtime"].level == "warn"
    assert "Change runtime type" in checks["device"].says
    assert "deleted when the Colab session ends" in checks["workspace"].says and "allow Google Drive" in checks["workspace"].says
    assert checks["free space"].level == "no" and "300.00 MiB free" in checks["free space"].says
    assert checks["camera"].level == "warn" and "none found" in checks["camera"].says
    assert [line[0] for line in printed] == ["!", "!", "!", "✗", "!"]


def test_some_space_is_enough_for_the_small_presets_and_an_unknown_camera_is_said(tmp_path, monkeypatch):
    ws = Workspace(root=tmp_path, platform="local", device=torch.device("cpu"))
    checks, _ = lines_for(ws, monkeypatch, cameras=None, free=3 * 2**30)
    assert checks["free space"].level == "warn" and "quick and laptop presets" in checks["free space"].says
    assert "could not tell" in checks["camera"].says


def test_the_command_line_prints_five_lines(tmp_path):
    env = {"POLYJUICE_WORKSPACE": str(tmp_path / "ws"), "POLYJUICE_DEVICE": "cpu", "POLYJUICE_MANAGED_COLAB": "0",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "helpers.checkup"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [line.split(":")[0][2:] for line in lines] == ["runtime", "device", "workspace", "free space", "camera"]
