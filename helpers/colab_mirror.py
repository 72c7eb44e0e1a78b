"""A Colab-mirror environment: Colab's preinstalled versions, then the course installed exactly as the set-up cell does.

    python -m helpers.colab_mirror build    # (re)build .venv-colab when one of its inputs changed
    python -m helpers.colab_mirror report   # what was pinned, skipped, and what the install changed

Colab's package list is a fact about our users' runtime (tests/colab/). The
mirror installs the part of it the course touches at Colab's versions, records
`pip freeze`, runs the notebooks' own set-up cell (as if in Colab) and records
`pip freeze` again. The tests then compare the two and run the notebooks in it.
Building takes a few minutes (torch alone is ~1.5 min); it is redone only when
the pins, requirements.txt, pyproject.toml, the set-up cell or the lists below change.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PINS_FILE = REPO / "tests" / "colab" / "pip-freeze-gpu-2026-08-19.txt"
MIRROR = Path(os.environ.get("POLYJUICE_COLAB_MIRROR", REPO / ".venv-colab"))
COLAB_CLONE = "/content/polyjuice"  # where the set-up cell clones the course in Colab
COLAB_PYTHON = "3.13"  # tests/colab/os-info-gpu-2026-08-19.txt

BUILD_VERSION = 2  # bump when `build` changes what it makes: the mirror is then rebuilt

# Colab packages the course touches directly: the Jupyter/widget stack the notebooks
# run in (ipywidgets 7 and its front-end package, the kernel), what helpers and the
# notebooks import (Gradio for the app among them), and the three OpenCV wheels that share one cv2/ folder. The rest
# of Colab that our install reaches is found by a dry run of that install (`closure`).
# The other ~500 Colab packages are outside our dependency tree: pip neither reads nor
# changes them, so mirroring them would cost minutes and test nothing.
TOUCHED = [
    "pip", "setuptools", "wheel", "packaging",
    "ipykernel", "ipython", "traitlets", "jupyter-client", "jupyter-core", "tornado", "pyzmq",
    "ipywidgets", "widgetsnbextension", "jupyterlab-widgets", "notebook", "nbformat", "nbclient",
    "matplotlib-inline", "tqdm",
    "torch", "torchvision", "triton", "numpy", "scipy", "pillow", "matplotlib", "scikit-image",
    "imageio", "imageio-ffmpeg", "requests", "urllib3", "gdown", "tensorboard",
    "pytest",  # Colab has it; the widget tests run with it in the mirror
    "gradio",  # the live app (helpers.app) is served from the mirror at Colab's Gradio in tests/test_app.py
]
# Installed one command after the other, so that cv2/ ends as in Colab: OpenCV 5.0
# (no CascadeClassifier) over contrib 4.14.
OPENCV_ORDER = [["opencv-contrib-python"], ["opencv-python", "opencv-python-headless"]]

# Colab pins the mirror leaves out, and why.
NOT_MIRRORED = {
    r"nvidia-.*|cuda-.*|cupy-.*|cudf-.*|cuml-.*|cugraph-.*|rmm-.*|pylibraft-.*|raft-.*|dask-cuda|.*-cu12": (
        "CUDA 12 runtime libraries of Colab's GPU image: PyPI's torch 2.11 wheel for this machine brings the CUDA 13 ones,"
        " and the tests run on a CPU"
    ),
}


# Colab's own packages go in without compiling every module to bytecode (torch alone has thousands): Python
# compiles what the tests import, when they import it. The set-up cell's install runs as in Colab.
NO_PYC = ["--no-compile"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def colab_pins(path: Path = PINS_FILE) -> dict[str, str]:
    """{canonical name: version} for every `name==version` line; local labels (+cu128) dropped."""
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[canonical(m.group(1))] = m.group(2).split("+")[0]
    return pins


def not_mirrored(name: str) -> str | None:
    """Why this Colab pin is left out of the mirror, or None."""
    return next((why for pattern, why in NOT_MIRRORED.items() if re.fullmatch(pattern, name)), None)


def setup_cell_source(notebook: Path | None = None) -> str:
    """The first code cell of a notebook (all five share it; tests/test_colab_mirror.py checks that).

    Read as plain JSON, so that `make test` can start building the mirror with the system's Python
    while it installs .venv.
    """
    path = notebook or sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))[0]
    cell = next(c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code")
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def setup_cell_as_in_colab(repo: Path = REPO) -> str:
    """The set-up cell as a script that believes it runs in Colab, with the course already cloned at `repo`."""
    source = setup_cell_source()
    if source.count(f'"{COLAB_CLONE}"') != 1:
        raise ValueError(f"The set-up cell should name the clone folder \"{COLAB_CLONE}\" exactly once; the mirror replaces it")
    prelude = "import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n"
    return prelude + source.replace(f'"{COLAB_CLONE}"', json.dumps(str(repo)))


def inputs_digest() -> str:
    """What the mirror depends on: when this changes, it is rebuilt from scratch."""
    h = hashlib.sha256()
    for path in (PINS_FILE, REPO / "requirements.txt", REPO / "pyproject.toml"):
        h.update(path.read_bytes())
    h.update(json.dumps([BUILD_VERSION, TOUCHED, OPENCV_ORDER, sorted(NOT_MIRRORED)]).encode())
    h.update(setup_cell_source().encode())
    h.update(sys.version.split()[0].encode())
    return h.hexdigest()[:16]


def python(mirror: Path = MIRROR) -> Path:
    return mirror / "bin" / "python"


def pip(mirror: Path, *args: str, log: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(python(mirror)), "-m", "pip", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if log is not None:
        with log.open("a") as f:
            f.write(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}\n")
    if check and done.returncode:
        raise RuntimeError(f"`pip {' '.join(args)}` failed in the Colab mirror:\n{done.stderr[-3000:]}")
    return done


def freeze(mirror: Path) -> dict[str, str]:
    """{canonical name: version} of what is installed (editable installs included)."""
    out = pip(mirror, "list", "--format=json", "--disable-pip-version-check").stdout
    return {canonical(p["name"]): p["version"].split("+")[0] for p in json.loads(out)}


def pins_missing_for_this_python(mirror: Path, pins: dict[str, str], names: list[str], pip_error: str = "") -> dict[str, str]:
    """{name: reason} for pins pip cannot find a build of for this machine's Python.

    pip names the first one in its error; otherwise each pin is tried alone.
    """
    reason = f"no build for Python {sys.version_info.major}.{sys.version_info.minor} on PyPI"
    named = re.search(r"No matching distribution found for ([A-Za-z0-9_.\-]+)==", pip_error)
    if named and canonical(named.group(1)) in names:
        return {canonical(named.group(1)): reason}
    missing = {}
    for name in names:
        done = pip(mirror, "install", "--dry-run", "--no-deps", "--ignore-installed", "-q", f"{name}=={pins[name]}", check=False)
        if done.returncode:
            missing[name] = reason
    return missing


def install_pins(mirror: Path, pins: dict[str, str], names: list[str], log: Path, skipped: dict) -> None:
    """Install `names` at Colab's versions, then `align` whatever else is installed to Colab's versions too."""
    wanted = [n for n in names if n in pins and n not in skipped]
    if wanted:
        done = pip(mirror, "install", "-q", "--prefer-binary", *NO_PYC, *(f"{n}=={pins[n]}" for n in wanted), log=log, check=False)
        if done.returncode:
            found = pins_missing_for_this_python(mirror, pins, wanted, done.stderr)
            if not found:
                raise RuntimeError(f"Installing Colab's pins failed (see {log}):\n{done.stderr[-3000:]}")
            skipped.update(found)
            return install_pins(mirror, pins, names, log, skipped)
    align(mirror, pins, log, skipped)


def align(mirror: Path, pins: dict[str, str], log: Path, skipped: dict) -> None:
    """Put every installed package that Colab also has at Colab's version (dependencies pip chose freely).

    --no-deps, as Colab's own set is what it is; a pin with no build for this
    Python is skipped with its reason and the version pip chose stays.
    """
    for _ in range(20):  # a few rounds at most: one per pin with no build for this Python
        off = [n for n, v in freeze(mirror).items() if n in pins and v != pins[n] and n not in skipped]
        if not off:
            return
        done = pip(mirror, "install", "-q", "--no-deps", "--prefer-binary", *NO_PYC, *(f"{n}=={pins[n]}" for n in off), log=log, check=False)
        found = pins_missing_for_this_python(mirror, pins, off, done.stderr) if done.returncode else {}
        if done.returncode and not found:
            raise RuntimeError(f"Putting Colab's versions in place failed (see {log}):\n{done.stderr[-3000:]}")
        skipped.update(found)


def closure(mirror: Path, pins: dict[str, str], repo: Path = REPO) -> list[str]:
    """Colab packages the set-up cell's install would add to the mirror: they must be there first, as in Colab."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        pip(mirror, "install", "--dry-run", "-q", "--report", str(report), "-e", str(repo))
        adds = [canonical(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]]
    return [n for n in adds if n in pins]


@contextlib.contextmanager
def build_lock(mirror: Path):
    import fcntl

    mirror.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{mirror}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def is_current(mirror: Path = MIRROR) -> bool:
    record = mirror / "mirror.json"
    return record.is_file() and json.loads(record.read_text()).get("digest") == inputs_digest()


def build(mirror: Path = MIRROR, force: bool = False, say=print) -> dict:
    """Make `mirror` current; return its record (see `report`)."""
    with build_lock(mirror):
        if is_current(mirror) and not force:
            return load_record(mirror)
        t0 = time.time()
        say(f"Building the Colab mirror in {mirror} (a few minutes; redone only when its inputs change) ...")
        if mirror.exists():
            shutil.rmtree(mirror)
        subprocess.run([sys.executable, "-m", "venv", str(mirror)], check=True)
        log = mirror / "build.log"
        pins = colab_pins()
        skipped = {n: why for n in pins if (why := not_mirrored(n))}

        pip(mirror, "install", "-q", f"pip=={pins['pip']}", log=log)  # Colab's pip resolves the set-up cell's install
        install_pins(mirror, pins, TOUCHED, log, skipped)
        for names in OPENCV_ORDER:
            install_pins(mirror, pins, names, log, skipped)
        reached = []
        for _ in range(5):  # usually one or two rounds
            new = [n for n in closure(mirror, pins) if n not in reached and n not in skipped]
            if not new:
                break
            reached += new
            install_pins(mirror, pins, new, log, skipped)
        before = freeze(mirror)

        script = mirror / "setup_cell.py"
        script.write_text(setup_cell_as_in_colab())
        done = subprocess.run([str(python(mirror)), str(script)], capture_output=True, text=True, cwd=tempfile.gettempdir())
        with log.open("a") as f:
            f.write(f"$ set-up cell\n{done.stdout}{done.stderr}\n")
        if done.returncode:
            raise RuntimeError(f"The set-up cell failed in the Colab mirror:\n{done.stderr[-3000:]}")
        after = freeze(mirror)
        record = {
            "digest": inputs_digest(),
            "pins_file": PINS_FILE.name,
            "touched": TOUCHED + [n for names in OPENCV_ORDER for n in names],
            "reached_by_install": reached,
            "skipped": skipped,
            "before": before,
            "after": after,
            "pip_check": pip(mirror, "check", check=False).stdout.strip(),
            "setup_cell_output": (done.stdout + done.stderr)[-4000:],
            "build_seconds": round(time.time() - t0),
        }
        (mirror / "mirror.json").write_text(json.dumps(record, indent=1))
        say(f"Colab mirror ready in {record['build_seconds']} s.")
        return record


def load_record(mirror: Path = MIRROR) -> dict:
    record = mirror / "mirror.json"
    if not record.is_file():
        raise SystemExit(f"No Colab mirror in {mirror} yet: run `python -m helpers.colab_mirror build` (or `make test`).")
    return json.loads(record.read_text())


def replaced_pins(record: dict, pins: dict[str, str] | None = None) -> dict[str, tuple[str, str | None]]:
    """{name: (Colab's version, version after the set-up cell)} for every mirrored pin the install changed or removed."""
    pins = pins or colab_pins()
    return {
        n: (pins[n], record["after"].get(n))
        for n, v in record["before"].items()
        if n in pins and record["after"].get(n) != v
    }


def unmirrored_pins(record: dict, pins: dict[str, str] | None = None) -> dict[str, str]:
    """Pins the mirror meant to hold that are at another version before the install (a broken mirror)."""
    pins = pins or colab_pins()
    meant = set(record["touched"]) | set(record["reached_by_install"])
    return {n: record["before"].get(n, "missing") for n in meant if n in pins and n not in record["skipped"] and record["before"].get(n) != pins[n]}


def report(record: dict) -> str:
    pins = colab_pins()
    added = sorted(set(record["after"]) - set(record["before"]))
    lines = [
        f"Colab pins mirrored: {sum(1 for n in record['before'] if n in pins)} (built in {record['build_seconds']} s)",
        f"reached by the course's install: {', '.join(record['reached_by_install']) or 'none'}",
        f"added by the set-up cell: {', '.join(added)}",
        f"replaced by the set-up cell: {replaced_pins(record, pins) or 'none'}",
        "skipped pins:",
    ]
    reasons: dict[str, list[str]] = {}
    for name, why in record["skipped"].items():
        reasons.setdefault(why, []).append(name)
    lines += [f"  {len(names)} ({', '.join(sorted(names)[:6])}{', ...' if len(names) > 6 else ''}): {why}" for why, names in reasons.items()]
    return "\n".join(lines)


def resolve_as_in_colab(python_version: str = COLAB_PYTHON, requirements: Path = REPO / "requirements.txt") -> dict[str, tuple[str, str]]:
    """{name: (Colab's version, resolved version)}: what pip would have to change to install our requirements
    on Colab's own Python, every Colab pin held as a constraint (the mirror itself runs this machine's Python).

    A dry run against PyPI for Linux x86-64 wheels; CUDA pins stay out as in the mirror. Empty means none.
    """
    pins = colab_pins()
    platforms = [f"manylinux_2_{minor}_x86_64" for minor in range(17, 40)] + ["manylinux2014_x86_64", "linux_x86_64"]
    with tempfile.TemporaryDirectory() as tmp:
        constraints, report_file = Path(tmp) / "colab.txt", Path(tmp) / "report.json"
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items()) if not not_mirrored(n)))
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "-q", "--ignore-installed", "--only-binary=:all:",
               "--python-version", python_version, *(a for p in platforms for a in ("--platform", p)),
               "--target", str(Path(tmp) / "target"), "-c", str(constraints), "--report", str(report_file), "-r", str(requirements)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"Our requirements do not resolve for Python {python_version} with Colab's pins held:\n{done.stderr[-3000:]}")
        resolved = {canonical(i["metadata"]["name"]): i["metadata"]["version"].split("+")[0] for i in json.loads(report_file.read_text())["install"]}
    return {n: (pins[n], v) for n, v in resolved.items() if n in pins and not not_mirrored(n) and v != pins[n]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.colab_mirror")
    parser.add_argument("command", choices=["build", "report"])
    parser.add_argument("--force", action="store_true", help="rebuild even when the inputs did not change")
    args = parser.parse_args(argv)
    record = build(force=args.force) if args.command == "build" else load_record()
    if args.command == "report":
        print(report(record))


if __name__ == "__main__":
    main()
