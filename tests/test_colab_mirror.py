"""The course in today's Colab: installing it changes none of Colab's packages, and every notebook runs there.

The Colab-mirror environment (.venv-colab) holds the part of Google's package
list for the Colab GPU image that the course touches, at Colab's versions, with
the course installed by the notebooks' own set-up cell. It is built on first use
(a few minutes; `make test` builds it first) and rebuilt only when its inputs
change. `pytest -m "not colab_mirror"` leaves it out of a quick run.
"""

import subprocess

import nbformat
import pytest

from helpers import colab_mirror
from helpers.course import REPO, notebooks, run_notebook

NOTEBOOKS = notebooks()


def test_every_notebook_has_the_same_setup_cell():
    """The mirror installs the course with notebook 01's set-up cell; the others must do the same."""
    cells = {p.name: colab_mirror.setup_cell_source(p) for p in NOTEBOOKS}
    assert len(set(cells.values())) == 1, f"set-up cells differ: {sorted(cells)}"


def test_setup_cell_installs_without_extras_upgrades_or_reinstalls():
    source = colab_mirror.setup_cell_source()
    assert '"pip", "install", "-q", "-e", str(repo)]' in source
    for flag in ("-U", "--upgrade", "--force-reinstall", "--ignore-installed", "-r"):
        assert f'"{flag}"' not in source, f"the set-up cell must not pass {flag}: it would replace Colab's packages"
    assert "[dev]" not in source, "the set-up cell installs no development tools"


def test_requirements_accept_every_colab_pin():
    """No base requirement excludes the version Colab already has (else pip would replace it)."""
    from packaging.requirements import Requirement

    pins = colab_mirror.colab_pins()
    excluded = []
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            version = pins.get(colab_mirror.canonical(req.name))
            if version and not req.specifier.contains(version, prereleases=True):
                excluded.append(f"{line} excludes Colab's {version}")
    assert not excluded


def test_setup_cell_as_in_colab_points_at_the_given_clone(tmp_path):
    script = colab_mirror.setup_cell_as_in_colab(tmp_path)
    assert colab_mirror.COLAB_CLONE not in script and f'pathlib.Path("{tmp_path}")' in script
    assert "sys.modules['google.colab']" in script.splitlines()[1]


def test_replaced_pins_names_a_downgrade_and_a_removal():
    pins = {"ipywidgets": "7.7.1", "numpy": "2.1.3", "tqdm": "4.67.3"}
    record = {
        "before": {"ipywidgets": "7.7.1", "numpy": "2.1.3", "tqdm": "4.67.3", "av": "1"},
        "after": {"ipywidgets": "8.1.9", "tqdm": "4.67.3", "av": "1"},
    }
    assert colab_mirror.replaced_pins(record, pins) == {"ipywidgets": ("7.7.1", "8.1.9"), "numpy": ("2.1.3", None)}


def test_colab_pins_drop_local_labels_and_keep_cuda_out():
    pins = colab_mirror.colab_pins()
    assert pins["torch"] == "2.11.0" and pins["opencv-python"] == "5.0.0.93" and pins["ipywidgets"] == "7.7.1"
    assert colab_mirror.not_mirrored("nvidia-cublas-cu12") and colab_mirror.not_mirrored("numpy") is None


def test_a_pin_with_no_build_for_this_python_is_read_from_pips_error(tmp_path):
    error = "ERROR: No matching distribution found for tifffile==2026.8.16"
    found = colab_mirror.pins_missing_for_this_python(tmp_path, {"tifffile": "2026.8.16"}, ["numpy", "tifffile"], error)
    assert list(found) == ["tifffile"] and "no build for Python 3." in found["tifffile"]


@pytest.mark.colab_mirror
def test_mirror_holds_colab_versions_before_the_install(mirror):
    assert not colab_mirror.unmirrored_pins(mirror), "the mirror does not hold Colab's versions"
    for name in ("torch", "ipywidgets", "opencv-python", "opencv-contrib-python", "numpy", "pip"):
        assert mirror["before"][name] == colab_mirror.colab_pins()[name]


@pytest.mark.colab_mirror
def test_setup_cell_changes_no_colab_pin(mirror):
    assert not colab_mirror.replaced_pins(mirror), colab_mirror.report(mirror)
    added = set(mirror["after"]) - set(mirror["before"])
    assert {"polyjuice-helpers", "av", "facenet-pytorch", "torch-fidelity"} <= added, "the set-up cell did not install the course"


@pytest.mark.colab_mirror
def test_requirements_resolve_on_colabs_python_with_every_pin_held():
    """The mirror runs Python 3.11; this dry run checks the same install for Colab's 3.13 (PyPI wheels)."""
    assert colab_mirror.resolve_as_in_colab() == {}


@pytest.mark.colab_mirror
def test_cv2_in_the_mirror_is_opencv_5_as_in_colab(mirror):
    done = subprocess.run([str(colab_mirror.python()), "-c", "import cv2; print(cv2.__version__)"], capture_output=True, text=True)
    assert done.stdout.startswith("5."), done.stderr


@pytest.fixture(scope="session")
def mirror_workspace(tmp_path_factory):
    return tmp_path_factory.mktemp("colab_ws")


def tiny_notebook(path, source):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("QUICK = False", metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, str(path))
    return path


@pytest.mark.colab_mirror
def test_notebooks_run_in_the_mirrors_interpreter(mirror, tmp_path):
    source = "import sys, ipywidgets\nprint(sys.executable, ipywidgets.__version__)"
    out = run_notebook(tiny_notebook(tmp_path / "which.ipynb", source), tmp_path / "out.ipynb", python=colab_mirror.python())
    printed = nbformat.read(str(out), as_version=4).cells[-1].outputs[0]["text"].split()
    assert printed == [str(colab_mirror.python()), "7.7.1"]


# What a class sees on a hosted Colab runtime: lessons 01, 02 and 04 whole; lesson 03 up to the swap, where Colab's
# FAQ stops it (the full run is the main suite's, on the learner's own machine); lesson 05 in makeup mode.
STOPS_IN_COLAB = {"03"}
PARAMETERS_IN_COLAB = {"05": {"MODE": "ugatit"}}


@pytest.mark.colab_mirror
@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_the_colab_mirror(path, mirror, mirror_workspace, monkeypatch):
    """Lesson order in one workspace, as a hosted runtime runs them; papermill raises on the first failing cell."""
    from papermill.exceptions import PapermillExecutionError

    monkeypatch.setenv("POLYJUICE_DEVICE", "cpu")
    monkeypatch.setenv("POLYJUICE_OFFLINE", "1")
    monkeypatch.setenv("POLYJUICE_MANAGED_COLAB", "1")  # a hosted runtime (helpers.rules.managed_colab)
    lesson = path.name[:2]
    executed = mirror_workspace / "executed" / path.name
    if lesson in STOPS_IN_COLAB:
        with pytest.raises(PapermillExecutionError) as stop:
            run_notebook(path, executed, {"QUICK": True}, mirror_workspace, python=colab_mirror.python())
        assert stop.value.ename == "LessonStop" and "disallows creating deepfakes" in stop.value.evalue
        minimum = 1  # the lesson's pictures before the swap
    else:
        parameters = {"QUICK": True, **PARAMETERS_IN_COLAB.get(lesson, {})}
        run_notebook(path, executed, parameters, mirror_workspace, python=colab_mirror.python())
        minimum = 2
    nb = nbformat.read(str(executed), as_version=4)
    pictures = sum(
        any(kind in output.get("data", {}) for kind in ("image/png", "image/gif", "image/jpeg"))
        for cell in nb.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
    )
    assert pictures >= minimum, f"{path.name} showed {pictures} pictures in the Colab mirror"


# Unit tests whose subject differs in Colab: run them again with Colab's versions.
IN_THE_MIRROR = {
    "widgets on ipywidgets 7.7.1": ["test_curate.py", "test_upload.py"],  # the main run has ipywidgets 8
    "face detection on OpenCV 5.0": ["test_faces_opencv5.py"],  # the main run fakes OpenCV 5 on 4.x
}


@pytest.mark.colab_mirror
@pytest.mark.parametrize("subject", IN_THE_MIRROR)
def test_unit_tests_pass_with_colabs_versions(subject, mirror):
    """The curation grid and upload controls driven from Python, and the detector fallback, in the mirror."""
    assert mirror["before"]["ipywidgets"] == "7.7.1"
    files = [f"tests/{name}" for name in IN_THE_MIRROR[subject] if (REPO / "tests" / name).exists()]
    assert files, f"no test file for {subject}"
    done = subprocess.run(
        [str(colab_mirror.python()), "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
        cwd=REPO, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
