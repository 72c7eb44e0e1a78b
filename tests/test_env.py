import random

import numpy as np
import torch

from helpers import env


def test_setup_creates_step_folders_and_is_rerunnable(workspace, capsys):
    ws = env.setup(seed=1)
    ws2 = env.setup(seed=1)  # the set-up cell run twice
    assert ws.root == ws2.root == workspace.resolve()
    for name in env.STEP_FOLDERS:
        assert (workspace / name).is_dir()
    assert ws.faces == workspace.resolve() / "faces"
    assert ws.platform == "local"
    out = capsys.readouterr().out
    assert "Workspace:" in out and "Device:" in out


def test_cpu_warning_says_how_to_get_a_gpu_in_colab():
    line = env.describe_device(torch.device("cpu"), "colab")
    assert "slow" in line and "Change runtime type" in line


def test_explicit_workspace_beats_environment(tmp_path, workspace):
    ws = env.setup(workspace=tmp_path / "other", quiet=True)
    assert ws.root == (tmp_path / "other").resolve()


def test_seeding_repeats_python_numpy_and_torch(workspace):
    env.setup(seed=7, quiet=True)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    env.setup(seed=7, quiet=True)
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    assert a == b


def test_device_override(monkeypatch):
    monkeypatch.setenv("POLYJUICE_DEVICE", "cpu")
    assert env.pick_device() == torch.device("cpu")


def test_platform_detection(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    assert env.detect_platform() == "kaggle"
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20261101")
    assert env.detect_platform() == "colab"
