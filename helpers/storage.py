"""Files in the workspace: write atomically, delete so that Google Drive frees the space, know the free space.

In Colab the workspace lives on Google Drive. A file deleted through the Drive
mount goes to Drive's trash and keeps counting against the quota (15 GB on a
free account) for 30 days; a file truncated to 0 bytes first leaves only an
empty file there. So everything in the course that deletes a workspace file
calls `remove(path)`, never `os.remove` or `Path.unlink`.

    on_drive(path)               True when `path` is on Google Drive ($POLYJUICE_STORAGE=drive/local forces it)
    remove(path)                 delete a file; on Drive empty it first; a missing file is fine
    atomic_write(path, write)    write(f) into a temp file next to `path`, fsync, rename; readable mode (umask)
    clean_stale_temp_files(dir)  remove temp files of writers that were killed (see `is_stale_temp`)
    free_bytes(path), check_free_space(path, needed)   free space, and `NoSpaceError` before a doomed write
    human_size(n)                "0.92 GiB"

Temp files are named `.<target>.<pid>@<host>.<random>.tmp`. One is stale, and
is removed by `clean_stale_temp_files`, when the process that wrote it is gone
(its pid no longer runs on this machine) or when it has not been written for
`STALE_TEMP_MINUTES` minutes (covers files from another machine sharing the
Drive folder, and a pid reused by another program). A live writer in another
notebook of the same Colab machine is therefore never disturbed.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Callable, IO

DRIVE_MOUNT = Path("/content/drive")
STALE_TEMP_MINUTES = 60.0
NO_SPACE_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
TEMP_RE = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]*)\.[0-9a-f]{8}\.tmp$")
LEGACY_TEMP_RE = re.compile(r"^\.ckpt-\d{9}\.pt\..+\.tmp$")  # tempfile.mkstemp names of earlier versions


class NoSpaceError(OSError):
    """Not enough room for a file we are about to write (or were writing). The message says what to do."""

    def __init__(self, message: str):
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror

    def _render_traceback_(self) -> list[str]:  # Jupyter/Colab show the sentence alone: the fix is not in our code
        return [f"\033[1;31mNo space:\033[0m {self}"]


# ---------------------------------------------------------------- where am I

def on_drive(path: str | os.PathLike | None = None) -> bool:
    """Is `path` on Google Drive? $POLYJUICE_STORAGE=drive or =local overrides (tests, unusual mounts)."""
    forced = os.environ.get("POLYJUICE_STORAGE", "").strip().lower()
    if forced in ("drive", "local"):
        return forced == "drive"
    if forced:
        raise ValueError(f"POLYJUICE_STORAGE must be 'drive' or 'local', got {forced!r}; unset it to detect Drive from the path.")
    if path is None:
        return False
    p = Path(path).expanduser().absolute()
    return p == DRIVE_MOUNT or DRIVE_MOUNT in p.parents


def human_size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- deleting

def remove(path: str | os.PathLike) -> bool:
    """Delete a file, emptying it first on Drive so the trash keeps 0 bytes of it. False if it was not there."""
    path = Path(path)
    if on_drive(path) and not path.is_symlink():  # a link's target is not ours to empty
        try:
            os.truncate(path, 0)
        except FileNotFoundError:
            return False
        except OSError:
            pass  # read-only or odd file: deleting it is still right
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


# ---------------------------------------------------------------- free space

def free_bytes(path: str | os.PathLike) -> int:
    """Free bytes on the file system of `path` (its nearest existing parent; on Drive the quota left)."""
    p = Path(path).expanduser().absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def no_space_message(folder: str | os.PathLike, needed: int, free: int, what: str = "the checkpoint") -> str:
    """The one sentence a learner sees when the disk (or the Drive quota) is full."""
    advice = ("delete old runs you no longer need and empty Drive's trash (deleted files count against the "
              "quota for 30 days: drive.google.com > Trash > Empty trash)") if on_drive(folder) else "delete files you no longer need"
    temps = _temp_files(Path(folder))
    if temps:
        held = sum(_size(p) for p in temps)
        advice += (f" ({len(temps)} unfinished save(s) from another session hold {human_size(held)}: delete "
                   f"{', '.join(p.name for p in temps[:3])}{' …' if len(temps) > 3 else ''} if nothing else writes to this folder)")
    return (f"Not enough space to save {what} in {folder}: it needs about {human_size(needed)} and "
            f"{human_size(free)} is free. To continue, {advice}, then run the cell again; the checkpoints "
            f"already saved are intact.")


def check_free_space(folder: str | os.PathLike, needed: int, what: str = "the checkpoint") -> int:
    """Raise NoSpaceError when `needed` bytes do not fit in `folder`; return the free bytes otherwise."""
    free = free_bytes(folder)
    if needed > free:
        raise NoSpaceError(no_space_message(folder, needed, free, what))
    return free


def _is_no_space(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT anywhere in the exception chain (torch wraps it in a RuntimeError 'unexpected pos')."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


# ---------------------------------------------------------------- writing

def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]


def temp_path(path: str | os.PathLike) -> Path:
    """A fresh temp name next to `path` that records who writes it (see the module docstring)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}@{_host()}.{secrets.token_hex(4)}.tmp")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems (Windows, Drive FUSE) refuse: the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any], expected_size: int | None = None,
                 what: str | None = None) -> Path:
    """Call write(f) on a temp file next to `path`, fsync, rename over `path`: a kill leaves the old file or the new one.

    The file gets the normal mode (0666 minus the umask). A full disk raises
    NoSpaceError with one sentence (`expected_size` helps it say how much was
    needed) and leaves no partial temp file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            written = tmp.stat().st_size
            remove(tmp)
        except OSError:  # never there, or the disk is in trouble: the original error matters
            written = 0
        if isinstance(exc, Exception) and _is_no_space(exc):
            needed = max(expected_size or 0, written)
            raise NoSpaceError(no_space_message(path.parent, needed, free_bytes(path.parent), what or path.name)) from exc
        raise
    _fsync_dir(path.parent)
    return path


# ---------------------------------------------------------------- cleaning up after kills

def _pid_running(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # on Windows os.kill(pid, 0) would send Ctrl-C: age rule only
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it is someone else's
        return True
    except OSError:
        return True  # cannot tell (e.g. Windows quirks): let the age rule decide
    return True


def is_stale_temp(path: Path, now: float | None = None, max_age_minutes: float = STALE_TEMP_MINUTES) -> bool:
    """A temp file whose writer is gone (dead pid on this host) or that nobody wrote for `max_age_minutes`."""
    try:
        age = (now or time.time()) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if age > max_age_minutes * 60:
        return True
    m = TEMP_RE.match(path.name)
    return bool(m) and m.group("host") == _host() and not _pid_running(int(m.group("pid")))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _temp_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (TEMP_RE.match(p.name) or LEGACY_TEMP_RE.match(p.name)) and p.is_file())


def clean_stale_temp_files(folder: str | os.PathLike, max_age_minutes: float = STALE_TEMP_MINUTES) -> list[Path]:
    """Remove the temp files that killed writers left in `folder` (not recursive); return them."""
    folder = Path(folder)
    removed = []
    now = time.time()
    for p in _temp_files(folder):
        if is_stale_temp(p, now, max_age_minutes):
            if remove(p):
                removed.append(p)
    return removed
