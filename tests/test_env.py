import random

import pytest

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


def fake_colab(monkeypatch, mount):
    """Pretend to be in Colab: a `google.colab` module whose drive.mount is `mount`."""
    import sys
    import types

    google, colab, drive = types.ModuleType("google"), types.ModuleType("google.colab"), types.ModuleType("google.colab.drive")
    drive.mount = mount
    colab.drive, google.colab = drive, colab
    for name, module in (("google", google), ("google.colab", colab), ("google.colab.drive", drive)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delenv("POLYJUICE_WORKSPACE", raising=False)
    monkeypatch.setenv("POLYJUICE_DEVICE", "cpu")


def test_declined_drive_works_locally_and_warns_once_in_one_sentence(monkeypatch, tmp_path, capsys):
    def declined(mount_point):
        raise RuntimeError("Error: credential propagation was unsuccessful")

    fake_colab(monkeypatch, declined)
    monkeypatch.setattr(env, "DRIVE_MOUNT", tmp_path / "drive")
    monkeypatch.setattr(env, "COLAB_LOCAL_WORKSPACE", tmp_path / "polyjuice_workspace")


    with pytest.warns(UserWarning) as said:
        ws = env.setup()
    assert len(said) == 1
    message = str(said[0].message)
    assert "not mounted" in message and "deleted when the Colab session ends" in message
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence
    assert ws.platform == "colab" and ws.root == tmp_path / "polyjuice_workspace" and not ws.persistent
    assert all((ws.root / name).is_dir() for name in env.STEP_FOLDERS)


def test_accepted_drive_is_the_workspace(monkeypatch, tmp_path):
    mounted = []

    def accept(mount_point):
        assert mount_point == str(tmp_path / "drive")  # never /content on the machine running the tests
        (tmp_path / "drive" / "MyDrive").mkdir(parents=True)
        mounted.append(mount_point)

    fake_colab(monkeypatch, accept)
    monkeypatch.setattr(env, "DRIVE_MOUNT", tmp_path / "drive")
    ws = env.setup(quiet=True, drive_folder="course")
    assert ws.root == tmp_path / "drive" / "MyDrive" / "course" and ws.persistent and len(mounted) == 1


def test_full_training_on_a_cpu_stops_with_one_sentence_on_how_to_switch():


    with pytest.raises(env.LessonStop) as stop:
        env.check_training_device(torch.device("cpu"), quick=False, platform="colab")
    message = str(stop.value)
    assert "Runtime > Change runtime type > T4 GPU" in message and "ALLOW_CPU_TRAINING = True" in message
    assert message.count(". ") == 0 and message.endswith(".")
    assert stop.value._render_traceback_()[-1].endswith(message)  # Jupyter shows this line, not a traceback


def test_quick_runs_gpus_and_the_override_never_stop():
    env.check_training_device(torch.device("cpu"), quick=True)
    env.check_training_device("cpu", quick=False, allow_cpu=True)
    env.check_training_device(torch.device("cuda"), quick=False)  # needs no GPU: only the type is looked at
    env.check_training_device(torch.device("mps"), quick=False)


def test_device_cell_names_what_it_found(capsys):
    ws = env.Workspace(root=env.Path("."), platform="colab", device=torch.device("cpu"))
    lines = env.show_device(ws)
    assert capsys.readouterr().out.splitlines() == lines
    assert "CPU" in lines[0] and "Change runtime type" in lines[0] and "cores" in lines[1]
    if torch.cuda.is_available():
        gpu = env.device_summary(torch.device("cuda"), "local")
        assert torch.cuda.get_device_name() in gpu[0] and "GiB" in gpu[0] and "mixed precision" in gpu[1]
