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
    error = stop_sentence(find_notebook("03"), {"QUICK": False}, tmp_path / "ws", monkeypatch)
    assert error.ename == "LessonStop" and "with a GPU" in error.evalue and "ALLOW_CPU_TRAINING = True" in error.evalue
    assert len(error.traceback) == 1  # the sentence, not a traceback into helpers/
    assert not (tmp_path / "ws" / "checkpoints" / "swap").exists()  # nothing was trained


@pytest.mark.notebook
def test_faces_that_no_notebook_made_yet_name_notebook_02(tmp_path, monkeypatch):
    error = stop_sentence(find_notebook("03"), {"QUICK": True, "FACES_A": "selfie"}, tmp_path / "ws", monkeypatch)
    assert error.ename == "LessonStop"
    assert error.evalue.startswith("No kept faces in ") and "selfie: run notebook 02 first" in error.evalue
