"""Fetch a shared file (Google Drive link or any URL) into the workspace.

An instructor can share a prepared data set or a pre-trained checkpoint so a
workshop skips hours of training. Downloads resume on re-run, show their bytes
as they come, are checked against a SHA-256 when one is given, and archives
are extracted only if no member would land outside the target folder and the
whole stays within size, member-count and compression-ratio caps (a "zip bomb"
is refused before anything is written).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

import requests

from .storage import remove

CHUNK = 1 << 20
DRIVE_HOSTS = ("drive.google.com", "docs.google.com")
QUIET_BELOW = 1 << 20  # files smaller than this download without a progress bar


class DownloadError(RuntimeError):
    """A download failed in a way the user can act on (the message says how)."""


class UnsafeArchiveError(DownloadError):
    """An archive we refuse to unpack: a member outside the target folder, a link or device file, or a bomb."""


class ArchiveTooLargeError(UnsafeArchiveError):
    """An archive would unpack to more bytes or members than the limits allow, or is compressed suspiciously well."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on what one archive may unpack to. Raise them (`fetch(..., limits=ArchiveLimits(...))`) for a big data set.

    `max_ratio` is unpacked bytes per packed byte: photos and weights barely
    compress (about 1), text about 5-10, a gigabyte of zeros about 1000. It is
    checked for each zip member and for the whole archive, once more than
    `ratio_floor` bytes are involved (small files may compress as they like).
    """

    max_total_bytes: int = 10 * 2**30
    max_members: int = 100_000
    max_ratio: float = 100.0
    ratio_floor: int = 1 << 20

    def __post_init__(self) -> None:
        for name in ("max_total_bytes", "max_members", "max_ratio", "ratio_floor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= (0 if name == "ratio_floor" else 1):
                raise ValueError(f"ArchiveLimits.{name}={value!r}: use a number >= {0 if name == 'ratio_floor' else 1}")


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


def _progress_bar(name: str, total: int | None, initial: int, enabled: bool):
    """A byte counter (tqdm.auto: a widget in notebooks), silent when asked or for a small file of known size."""
    from tqdm.auto import tqdm

    quiet = not enabled or (total is not None and total < QUIET_BELOW)
    return tqdm(total=total, initial=initial, desc=name, unit="B", unit_scale=True, unit_divisor=1024, disable=quiet)


def _http_download(url: str, dest: Path, timeout: float = 30.0, progress: bool = True) -> Path:
    """Stream `url` into `dest`, resuming a `.part` file left by an earlier attempt."""
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "polyjuice-course/0.1", **({"Range": f"bytes={have}-"} if have else {})}
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as r:
            if r.status_code == 416:  # we already have every byte
                pass
            elif r.status_code in (200, 206):  # 200: the server ignores Range, so start over
                start = have if r.status_code == 206 else 0
                length = r.headers.get("content-length", "")
                total = start + int(length) if length.isdigit() else None
                with open(part, "ab" if start else "wb") as f, _progress_bar(dest.name, total, start, progress) as bar:
                    for block in r.iter_content(CHUNK):
                        f.write(block)
                        bar.update(len(block))
            else:
                raise DownloadError(f"{url} answered HTTP {r.status_code}; check the link is public and try again.")
    except requests.RequestException as exc:
        raise DownloadError(f"Could not download {url}: {exc}. Re-run to resume; the partial file is kept.") from exc
    os.replace(part, dest)
    return dest


def too_many_users(url: str, exc: BaseException) -> DownloadError | None:
    """Drive's answer to a file many people fetched lately (a class at once), as what to do; None for other errors.

    gdown passes Drive's page text on in its error, wrapped over several lines.
    """
    if "too many users" not in " ".join(str(exc).split()).lower():
        return None
    return DownloadError(f"Google Drive refused {url}: too many people downloaded this file recently, a limit a whole class "
                         "reaches at once; wait an hour or two and run this cell again, or host the file on the Hugging Face "
                         "Hub or any web server and use that link instead.")


def _drive_download(url: str, folder: Path, filename: str | None, progress: bool = True) -> Path:
    import gdown  # imported lazily: only Drive links need it

    try:
        return _gdown(gdown, url, folder, filename, progress)
    except Exception as exc:
        refused = too_many_users(url, exc)
        if refused is None:
            raise
        raise refused from None


def _gdown(gdown, url: str, folder: Path, filename: str | None, progress: bool) -> Path:
    if "/folders/" in url:
        files = gdown.download_folder(url, output=str(folder), quiet=not progress, resume=True)
        if not files:
            raise DownloadError(f"Google Drive folder {url} gave no files; is it shared as 'Anyone with the link'?")
        return folder
    out = str(folder / filename) if filename else str(folder) + os.sep
    path = gdown.download(url, output=out, quiet=not progress, fuzzy=True, resume=True)
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


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.1f} MiB"


def _check_sizes(archive: Path, target: Path, sizes: list[tuple[str, int, int | None]], limits: ArchiveLimits) -> None:
    """Refuse a bomb from what the archive declares: (name, unpacked size, packed size or None) per file member."""
    raise_it = "; raise the cap with limits=ArchiveLimits(...) if you trust this archive"
    if len(sizes) > limits.max_members:
        raise ArchiveTooLargeError(f"{archive.name} holds more than {limits.max_members} members{raise_it}")
    total = sum(size for _, size, _ in sizes)
    if total > limits.max_total_bytes:
        raise ArchiveTooLargeError(f"{archive.name} would unpack to {_gib(total)}, over max_total_bytes "
                                   f"({_gib(limits.max_total_bytes)}){raise_it}")
    for name, size, packed in sizes:
        if packed is not None and size > limits.ratio_floor and size > limits.max_ratio * max(packed, 1):
            raise ArchiveTooLargeError(f"{archive.name}: member {name!r} unpacks {size / max(packed, 1):.0f}x "
                                       f"({_gib(size)} from {_gib(packed)}), over max_ratio={limits.max_ratio:g}: "
                                       f"a zip bomb?{raise_it}")
    packed_total = archive.stat().st_size
    if total > limits.ratio_floor and total > limits.max_ratio * max(packed_total, 1):
        raise ArchiveTooLargeError(f"{archive.name} unpacks {total / max(packed_total, 1):.0f}x ({_gib(total)} from "
                                   f"{_gib(packed_total)}), over max_ratio={limits.max_ratio:g}: an archive bomb?{raise_it}")
    free = shutil.disk_usage(next(p for p in (target, *target.parents) if p.exists())).free
    if total > free:
        raise DownloadError(f"{archive.name} unpacks to {_gib(total)} but only {_gib(free)} is free at {target}; "
                            "make room (on Google Drive, empty the trash too) and run again.")


class _Budget:
    """Counts the bytes really written, member by member: a lying header cannot get past the caps."""

    def __init__(self, archive: Path, limits: ArchiveLimits):
        self.archive, self.limits, self.total = archive, limits, 0

    def copy(self, src, out, name: str, declared: int) -> None:
        written = 0
        for block in iter(lambda: src.read(CHUNK), b""):
            written += len(block)
            self.total += len(block)
            if written > declared:
                raise ArchiveTooLargeError(f"{self.archive.name}: member {name!r} unpacks past the {declared} bytes "
                                           "its header declares; the archive lies about its sizes (a bomb?)")
            if self.total > self.limits.max_total_bytes:
                raise ArchiveTooLargeError(f"{self.archive.name} unpacked past max_total_bytes "
                                           f"({_gib(self.limits.max_total_bytes)}) while writing")
            out.write(block)


def _list_tar(t: tarfile.TarFile, limits: ArchiveLimits, archive: Path) -> list:
    """The members, read one by one so a member-count or size bomb is stopped early, not listed in full."""
    members, total = [], 0
    ratio_cap = max(limits.ratio_floor, limits.max_ratio * archive.stat().st_size)
    for m in t:  # reading the next header means decompressing this member: stop before a bomb's
        members.append(m)
        total += m.size if m.isfile() else 0
        if len(members) > limits.max_members or total > limits.max_total_bytes or total > ratio_cap:
            break  # _check_sizes names the cap that was passed
    return members


def _unpack(archive: Path, target: Path, plan: list, open_member, budget: _Budget) -> list[Path]:
    """Write the checked plan [(dest, is_dir, name, declared size, member)]; on any failure remove what we wrote."""
    written: list[Path] = []
    made: list[Path] = []

    def mkdirs(folder: Path) -> None:
        missing = [d for d in (folder, *folder.parents) if not d.exists()]
        for d in reversed(missing):
            d.mkdir()
            made.append(d)

    try:
        mkdirs(target)
        for dest, is_dir, name, declared, member in plan:
            if is_dir:
                mkdirs(dest)
                continue
            mkdirs(dest.parent)
            written.append(dest)
            with open_member(member) as src, open(dest, "wb") as out:
                budget.copy(src, out, name, declared)
        return written
    except BaseException as exc:
        for path in written:
            remove(path)
        for d in reversed(made):
            try:
                d.rmdir()
            except OSError:
                pass  # not empty: something else lives there
        if isinstance(exc, (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error)):
            raise DownloadError(f"{archive.name} is damaged ({type(exc).__name__}: {exc}); nothing was kept. "
                                "Delete it and download it again.") from exc
        raise


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike, limits: ArchiveLimits | None = None) -> list[Path]:
    """Extract a zip or tar into `target`; refuse the whole archive if any member escapes it or it is a bomb.

    Every member is checked before anything is written, so a hostile archive
    leaves no files behind: paths outside `target`, links and device files,
    and more members, more bytes or a higher compression ratio than `limits`
    allows. The bytes written are counted too (a header can lie), and a
    failure half way removes what this call wrote.
    """
    archive, target = Path(archive), Path(target)
    limits = limits or ArchiveLimits()
    if not isinstance(limits, ArchiveLimits):
        raise TypeError(f"limits must be an ArchiveLimits, not {type(limits).__name__}")
    if not archive.is_file():
        raise DownloadError(f"{archive} is not a file")
    target = target.resolve()
    budget = _Budget(archive, limits)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
            for info in infos:
                _check_member(target, info.filename)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise UnsafeArchiveError(f"archive member {info.filename!r} is a symbolic link")
            files = [i for i in infos if not i.is_dir()]
            _check_sizes(archive, target, [(i.filename, i.file_size, i.compress_size) for i in files], limits)
            plan = [(_check_member(target, i.filename), i.is_dir(), i.filename, i.file_size, i) for i in infos]
            return _unpack(archive, target, plan, z.open, budget)
    if tarfile.is_tarfile(archive):
        try:
            with tarfile.open(archive) as t:
                members = _list_tar(t, limits, archive)
                for m in members:
                    _check_member(target, m.name)
                    if not (m.isfile() or m.isdir()):
                        raise UnsafeArchiveError(f"archive member {m.name!r} is a link or device, not a plain file")
                _check_sizes(archive, target, [(m.name, m.size, None) for m in members if m.isfile()], limits)
                plan = [(_check_member(target, m.name), m.isdir(), m.name, m.size, m) for m in members]
                return _unpack(archive, target, plan, t.extractfile, budget)
        except (tarfile.TarError, EOFError, zlib.error) as exc:  # while listing: nothing written yet
            raise DownloadError(f"{archive.name} is damaged ({type(exc).__name__}: {exc}); "
                                "delete it and download it again.") from exc
    raise DownloadError(f"{archive} is neither a zip nor a tar archive")


def _check_fetch_args(url, sha256, filename, extract, timeout) -> str | None:
    """One clear error for a bad argument, before any download starts; returns the checksum in lower case."""
    if not isinstance(url, str) or not url.strip():
        raise DownloadError(f"url must be a link (a string such as 'https://…'), not {url!r}")
    if sha256 is not None:
        if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256.strip()):
            raise DownloadError(f"sha256 must be 64 hex digits (from `sha256sum FILE`), or None to skip the check; got {sha256!r}")
        sha256 = sha256.strip().lower()
    if filename is not None and (not isinstance(filename, str) or not filename.strip()):
        raise DownloadError(f"filename must be a non-empty name or None, not {filename!r}")
    if not isinstance(extract, bool):
        raise DownloadError(f"extract must be True or False, not {extract!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise DownloadError(f"timeout must be a number of seconds > 0, not {timeout!r}")
    return sha256


def fetch(
    url: str,
    folder: str | os.PathLike,
    sha256: str | None = None,
    filename: str | None = None,
    extract: bool = False,
    progress: bool = True,
    timeout: float = 30.0,
    limits: ArchiveLimits | None = None,
) -> Path:
    """Download `url` (a Google Drive file/folder link or any http(s) URL) into `folder`.

    Returns the file (or, with `extract=True`, the folder it was unpacked into).
    A re-run with the file already present and matching `sha256` does nothing;
    an interrupted download resumes. `progress` shows a byte counter for files
    of 1 MiB or more; `limits` caps what an archive may unpack to.
    """
    sha256 = _check_fetch_args(url, sha256, filename, extract, timeout)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DownloadError(f"{folder} is a file; fetch() needs a folder to download into")
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
        if is_drive_link(url):
            path = _drive_download(url, folder, filename, progress)
        else:
            path = _http_download(url, folder / filename, timeout, progress)
    if sha256 is not None and path.is_file():
        got = sha256_of(path)
        if got != sha256:
            remove(path)
            raise DownloadError(
                f"{path.name} has SHA-256 {got}, expected {sha256}: the shared file changed or was damaged. "
                "Ask for the current checksum, or pass sha256=None to accept it."
            )
    if not extract or path.is_dir():
        return path
    out = folder / (path.name.split(".")[0] or "extracted")
    marker = out / f".extracted-{sha256_of(path)[:16]}"
    if not marker.exists():
        safe_extract(path, out, limits)
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
