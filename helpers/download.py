"""Fetch a shared file (Google Drive link or any URL) into the workspace.

An instructor can share a prepared data set or a pre-trained checkpoint so a
workshop skips hours of training. Downloads resume on re-run, are checked
against a SHA-256 when one is given, and archives are extracted only if no
member would land outside the target folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import requests

CHUNK = 1 << 20
DRIVE_HOSTS = ("drive.google.com", "docs.google.com")


class DownloadError(RuntimeError):
    """A download failed in a way the user can act on (the message says how)."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the target folder."""


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def safe_name(name: str, fallback: str = "download") -> str:
    """A file name the server cannot use to escape the folder: last path part, tame characters."""
    name = unquote(name).replace("\\", "/").split("/")[-1]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return name[:200] or fallback


def is_drive_link(url: str) -> bool:
    return urlparse(url).netloc in DRIVE_HOSTS


def _http_download(url: str, dest: Path, timeout: float = 30.0) -> Path:
    """Stream `url` into `dest`, resuming a `.part` file left by an earlier attempt."""
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "polyjuice-course/0.1", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as r:
            if r.status_code == 416:  # we already have every byte
                pass
            elif r.status_code == 206:
                with open(part, "ab") as f:
                    for block in r.iter_content(CHUNK):
                        f.write(block)
            elif r.status_code == 200:  # server ignores Range: start over
                with open(part, "wb") as f:
                    for block in r.iter_content(CHUNK):
                        f.write(block)
            else:
                raise DownloadError(f"{url} answered HTTP {r.status_code}; check the link is public and try again.")
    except requests.RequestException as exc:
        raise DownloadError(f"Could not download {url}: {exc}. Re-run to resume; the partial file is kept.") from exc
    os.replace(part, dest)
    return dest


def _drive_download(url: str, folder: Path, filename: str | None) -> Path:
    import gdown  # imported lazily: only Drive links need it

    if "/folders/" in url:
        files = gdown.download_folder(url, output=str(folder), quiet=False, resume=True)
        if not files:
            raise DownloadError(f"Google Drive folder {url} gave no files; is it shared as 'Anyone with the link'?")
        return folder
    out = str(folder / filename) if filename else str(folder) + os.sep
    path = gdown.download(url, output=out, quiet=False, fuzzy=True, resume=True)
    if not path:
        raise DownloadError(f"Google Drive refused {url}; is it shared as 'Anyone with the link'?")
    return Path(path)


def _check_member(target: Path, name: str) -> Path:
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path")
    dest = (target / name).resolve()
    if dest != target and target not in dest.parents:
        raise UnsafeArchiveError(f"archive member {name!r} would land outside {target}")
    return dest


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> list[Path]:
    """Extract a zip or tar into `target`; refuse the whole archive if any member escapes it.

    Every member is checked before anything is written, so a hostile archive leaves no files behind.
    Links and device files in tars are refused too.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    target = target.resolve()
    written = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
            for info in infos:
                _check_member(target, info.filename)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise UnsafeArchiveError(f"archive member {info.filename!r} is a symbolic link")
            for info in infos:
                dest = _check_member(target, info.filename)
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
                written.append(dest)
        return written
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            members = t.getmembers()
            for m in members:
                _check_member(target, m.name)
                if not (m.isfile() or m.isdir()):
                    raise UnsafeArchiveError(f"archive member {m.name!r} is a link or device, not a plain file")
            for m in members:
                dest = _check_member(target, m.name)
                if m.isdir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with t.extractfile(m) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
                written.append(dest)
        return written
    raise DownloadError(f"{archive} is neither a zip nor a tar archive")


def fetch(
    url: str,
    folder: str | os.PathLike,
    sha256: str | None = None,
    filename: str | None = None,
    extract: bool = False,
) -> Path:
    """Download `url` (a Google Drive file/folder link or any http(s) URL) into `folder`.

    Returns the file (or, with `extract=True`, the folder it was unpacked into).
    A re-run with the file already present and matching `sha256` does nothing;
    an interrupted download resumes.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scheme = urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise DownloadError(f"Only http(s) and Google Drive links can be fetched, not {url!r}.")
    if filename is not None:
        filename = safe_name(filename)
    elif not is_drive_link(url):
        filename = safe_name(PurePosixPath(urlparse(url).path).name)

    path = folder / filename if filename else None
    if path is None or not (path.exists() and (sha256 is None or sha256_of(path) == sha256)):
        path = _drive_download(url, folder, filename) if is_drive_link(url) else _http_download(url, folder / filename)
    if sha256 is not None and path.is_file():
        got = sha256_of(path)
        if got != sha256:
            path.unlink()
            raise DownloadError(
                f"{path.name} has SHA-256 {got}, expected {sha256}: the shared file changed or was damaged. "
                "Ask for the current checksum, or pass sha256=None to accept it."
            )
    if not extract or path.is_dir():
        return path
    out = folder / (path.name.split(".")[0] or "extracted")
    marker = out / f".extracted-{sha256_of(path)[:16]}"
    if not marker.exists():
        safe_extract(path, out)
        marker.touch()
    return out


def fetch_weight_files(url: str, folder: str | os.PathLike, sha256: str | None = None) -> list[Path]:
    """Fetch a shared checkpoint (a .pt/.pth file, an archive of them or a Drive folder) into `folder`.

    Returns the candidate weight files; the caller checks which one it can use.
    A .pt file is a zip too, so only other archives are unpacked.
    """
    got = fetch(url, folder, sha256=sha256)
    if got.is_file() and got.suffix.lower() not in (".pt", ".pth"):
        unpacked = got.with_name(got.name.split(".")[0] + "-unpacked")
        safe_extract(got, unpacked)
        got = unpacked
    return [got] if got.is_file() else sorted(list(got.rglob("*.pt")) + list(got.rglob("*.pth")))
