"""A notebook run alone in a fresh workspace, with settings that cannot work here, stops with one sentence.

These stop within the first cells, so they cost a kernel start each, not a lesson.
"""

import pytest

from helpers.course import find_notebook, run_notebook


def stop_sentence(path, parameters, workspace, monkeypatch):
    """Run until the notebook stops; return the error the failing cell showed."""
    from papermill.exceptions import PapermillExecutionError

    monkeypatch.setenv("POLYJUICE_DEVICE", "cpu")
    monkeypatch.setenv("POLYJUICE_OFFLINE", "1")
    with pytest.raises(PapermillExecutionError) as stop:
        run_notebook(path, workspace / "executed" / path.name, parameters, workspace)
    return stop.value


@pytest.mark.notebook
def test_full_training_on_a_cpu_stops_at_the_device_cell(tmp_path, monkeypatch):
    error = stop_sentence(find_notebook("03"), {"QUICK": False, "PRESET": "full"}, tmp_path / "ws", monkeypatch)
    assert error.ename == "LessonStop" and "with a GPU" in error.evalue and "ALLOW_CPU_TRAINING = True" in error.evalue
    assert 'PRESET = "laptop"' in error.evalue  # the way to a real result on this CPU
    assert len(error.traceback) == 1  # the sentence, not a traceback into helpers/
    assert not (tmp_path / "ws" / "checkpoints" / "swap").exists()  # nothing was trained


@pytest.mark.notebook
def test_faces_that_no_notebook_made_yet_name_notebook_02(tmp_path, monkeypatch):
    error = stop_sentence(find_notebook("03"), {"QUICK": True, "FACES_A": "selfie"}, tmp_path / "ws", monkeypatch)
    assert error.ename == "LessonStop"
    assert error.evalue.startswith("No kept faces in ") and "selfie: run notebook 02 first" in error.evalue


@pytest.mark.notebook
@pytest.mark.parametrize("lesson, what", [("03", "lesson 03's training and swap"), ("05", "lesson 05 in swap mode")])
def test_on_a_managed_colab_runtime_the_swap_stops_after_the_lessons_pictures(lesson, what, tmp_path, monkeypatch):
    """Colab's FAQ disallows deepfakes on managed runtimes: the lesson runs up to the swap, then one sentence."""
    import nbformat

    monkeypatch.setenv("POLYJUICE_MANAGED_COLAB", "1")  # a hosted Colab runtime, faked (helpers.rules.managed_colab)
    error = stop_sentence(find_notebook(lesson), {"QUICK": True}, tmp_path / "ws", monkeypatch)
    assert error.ename == "LessonStop" and len(error.traceback) == 1
    assert "disallows creating deepfakes on all managed Colab runtimes" in error.evalue and what in error.evalue
    assert "Connect to a local runtime" in error.evalue
    ran = nbformat.read(str(tmp_path / "ws" / "executed" / find_notebook(lesson).name), as_version=4)
    pictures = sum("image/png" in o.get("data", {}) for c in ran.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert pictures >= 1  # what comes before the swap still teaches
    assert not list((tmp_path / "ws" / "checkpoints").rglob("ckpt-*.pt"))  # nothing was trained
    assert not list((tmp_path / "ws" / "renders").rglob("*_swap.mp4"))  # nothing was rendered
