"""Every course notebook runs top to bottom in a real Jupyter kernel, QUICK mode, CPU, offline.

The notebooks share one workspace and run in lesson order, as in `make demo`,
so a later lesson sees what an earlier one wrote (each must also cope alone).
"""


import pytest

from helpers.course import has_outputs, notebooks, run_notebook

NOTEBOOKS = notebooks()


def test_there_are_five_lessons():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path):
    assert not has_outputs(path), f"{path.name} has outputs: run `make strip`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_one_parameters_cell_with_quick(path):
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "QUICK" in tagged[0].source


@pytest.fixture(scope="session")
def course_workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("course_ws")


@pytest.mark.notebook
@pytest.mark.xdist_group("course_workspace")  # one worker runs them all, in lesson order (make test uses two)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, course_workspace, monkeypatch):
    monkeypatch.setenv("POLYJUICE_DEVICE", "cpu")
    monkeypatch.setenv("POLYJUICE_OFFLINE", "1")  # no web search back ends in tests
    out = run_notebook(path, course_workspace / "executed" / path.name, {"QUICK": True}, course_workspace)
    import nbformat

    nb = nbformat.read(str(out), as_version=4)
    pictures = sum(
        any(kind in output.get("data", {}) for kind in ("image/png", "image/gif", "image/jpeg"))
        for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert pictures >= 2, f"{path.name} showed {pictures} pictures: a lesson shows what each step made"
    assert (course_workspace / "checkpoints").is_dir()


def test_run_notebook_uses_this_interpreter_and_restores_the_environment(tmp_path):
    import os
    import sys

    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("QUICK = False", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import os, sys\nprint(sys.executable, os.environ['POLYJUICE_WORKSPACE'], QUICK)"),
    ]
    nbformat.write(nb, str(tmp_path / "tiny.ipynb"))
    before = {k: os.environ.get(k) for k in ("PATH", "MPLBACKEND", "JUPYTER_PATH", "POLYJUICE_WORKSPACE")}
    out = run_notebook(tmp_path / "tiny.ipynb", tmp_path / "out.ipynb", {"QUICK": True}, tmp_path / "ws")
    printed = nbformat.read(str(out), as_version=4).cells[-1].outputs[0]["text"].split()
    assert printed == [sys.executable, str((tmp_path / "ws").resolve()), "True"]
    assert {k: os.environ.get(k) for k in before} == before
