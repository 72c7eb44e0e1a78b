"""Run the course's notebooks headlessly (for `make demo` and the tests) and keep them clean.

    python -m helpers.course demo            # every notebook, quick mode, into ./workspace
    python -m helpers.course run 03 --full   # one notebook with its default (long) settings
    python -m helpers.course strip notebooks/*.ipynb
    python -m helpers.course results         # the laptop presets end to end -> assets/results/ (helpers.results)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"


def notebooks() -> list[Path]:
    """The course notebooks in lesson order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def find_notebook(key: str) -> Path:
    matches = [p for p in notebooks() if p.name.startswith(key) or p.stem == key]
    if len(matches) != 1:
        raise SystemExit(f"No single notebook matches {key!r}; choose from {[p.stem for p in notebooks()]}")
    return matches[0]


def run_notebook(
    path: str | os.PathLike,
    output: str | os.PathLike,
    parameters: dict | None = None,
    workspace: str | os.PathLike | None = None,
    timeout: int = 1800,
    python: str | os.PathLike | None = None,
) -> Path:
    """Execute a notebook top to bottom in a fresh Jupyter kernel; raise on the first failing cell.

    `parameters` override the cell tagged `parameters` (papermill); `workspace`
    becomes $POLYJUICE_WORKSPACE for the kernel. The kernel runs in this
    interpreter (the venv) unless `python` names another one, e.g. the Colab
    mirror's (it needs ipykernel).
    """
    import papermill

    path, output = Path(path), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    python = Path(python or sys.executable)
    env = {
        # figures must land in the executed notebook as in Jupyter, whatever the caller's backend is
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        # a `python` the notebook starts is the kernel's interpreter, whatever `python` means on PATH
        "PATH": str(python.parent) + os.pathsep + os.environ.get("PATH", ""),
        # nobody watches a notebook this runs: the live camera says so in one line instead of waiting for a face
        "POLYJUICE_HEADLESS": "1",
    }
    if workspace is not None:
        env["POLYJUICE_WORKSPACE"] = str(Path(workspace).resolve())
    with tempfile.TemporaryDirectory() as specs, environ(**env, JUPYTER_PATH=kernel_path(specs, python)):
        papermill.execute_notebook(
            str(path),
            str(output),
            parameters=parameters or {},
            kernel_name=KERNEL,
            language="python",
            cwd=str(REPO),
            execution_timeout=timeout,
            progress_bar=False,
        )
    return output


KERNEL = "polyjuice-course"


def kernel_path(folder: str, python: Path) -> str:
    """A JUPYTER_PATH on which kernel KERNEL runs `python`; jupyter_client maps a bare "python" to its own interpreter."""
    spec = Path(folder) / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
    return os.pathsep.join([folder, *filter(None, [os.environ.get("JUPYTER_PATH")])])


@contextlib.contextmanager
def environ(**values: str):
    """Set environment variables for the block, then put back what was there."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def has_outputs(path: str | os.PathLike) -> bool:
    nb = nbformat.read(str(path), as_version=4)
    return any(c.cell_type == "code" and (c.get("outputs") or c.get("execution_count")) for c in nb.cells)


def strip(path: str | os.PathLike) -> bool:
    """Remove outputs, execution counts and run metadata; return True if the file changed."""
    nb = nbformat.read(str(path), as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in ("execution", "papermill", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)
    nb.metadata.pop("papermill", None)
    after = nbformat.writes(nb)
    if after != before:
        Path(path).write_text(after + ("\n" if not after.endswith("\n") else ""))
    return after != before


def demo(workspace: Path, quick: bool = True, only: list[str] | None = None) -> None:
    """Fetch the samples, then run every notebook in order; executed copies go to workspace/executed/."""
    from .samples import fetch_samples

    workspace = workspace.resolve()
    print(f"Fetching sample data into {workspace / 'samples'} ...")
    fetch_samples(workspace / "samples")
    for nb in notebooks() if not only else [find_notebook(k) for k in only]:
        out = workspace / "executed" / nb.name
        t0 = time.time()
        print(f"Running {nb.name} (QUICK={quick}) ...", flush=True)
        run_notebook(nb, out, {"QUICK": quick}, workspace)
        print(f"  done in {time.time() - t0:.0f} s -> {out}")
    print(f"All done. Outputs are in {workspace}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.course")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run every notebook in quick mode")
    d.add_argument("--workspace", type=Path, default=Path(os.environ.get("POLYJUICE_WORKSPACE", "workspace")))
    r = sub.add_parser("run", help="run some notebooks (e.g. 03 04)")
    r.add_argument("keys", nargs="+")
    r.add_argument("--full", action="store_true", help="default settings instead of QUICK")
    r.add_argument("--workspace", type=Path, default=Path(os.environ.get("POLYJUICE_WORKSPACE", "workspace")))
    res = sub.add_parser("results", help="train the laptop presets on the sample data and write assets/results/")
    res.add_argument("--workspace", type=Path, default=Path("workspace-results"))
    res.add_argument("--out", type=Path, default=None, help="default: assets/results in the repository")
    res.add_argument("--quick", action="store_true", help="the quick presets: checks the whole path in minutes")
    res.add_argument("--ugatit-iterations", type=int, default=None, help="shorten the U-GAT-IT schedule (recorded in results.json)")
    res.add_argument("--ugatit-steps-this-run", type=int, default=None,
                     help="stop U-GAT-IT after this many more steps (0: use the run folder as it is; results.json has the step)")
    s = sub.add_parser("strip", help="remove outputs from notebooks")
    s.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo(args.workspace)
    elif args.command == "run":
        demo(args.workspace, quick=not args.full, only=args.keys)
    elif args.command == "results":
        from .env import STEP_FOLDERS, Workspace
        from .results import OUT, make_results

        ws = Workspace(args.workspace.resolve(), "local")
        for sub_folder in STEP_FOLDERS:
            (ws.root / sub_folder).mkdir(parents=True, exist_ok=True)
        result = make_results(ws, args.out or OUT, quick=args.quick, ugatit_iterations=args.ugatit_iterations,
                              ugatit_steps=args.ugatit_steps_this_run)
        print(json.dumps(result, indent=2))
    else:
        for p in args.paths:
            if strip(p):
                print(f"stripped {p}")


if __name__ == "__main__":
    main()
