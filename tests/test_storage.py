"""helpers.storage: Drive detection, delete-by-emptying on Drive, temp files of killed writers, free space."""

import errno
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from helpers import storage


@pytest.fixture
def unlink_sizes(monkeypatch):
    """Record the size of every file at the moment it is deleted, whichever call deletes it."""
    sizes = {}

    def recording(real):
        def unlink(path, *args, **kwargs):
            p = Path(path)
            if p.is_file():
                sizes[p.name] = p.stat().st_size
            return real(path, *args, **kwargs)
        return unlink

    monkeypatch.setattr(os, "unlink", recording(os.unlink))
    monkeypatch.setattr(os, "remove", recording(os.remove))
    real_path_unlink = Path.unlink

    def path_unlink(self, missing_ok=False):
        if self.is_file():
            sizes[self.name] = self.stat().st_size
        return real_path_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", path_unlink)
    return sizes


def test_on_drive_from_the_path_or_forced(monkeypatch):
    monkeypatch.delenv("POLYJUICE_STORAGE", raising=False)
    assert storage.on_drive("/content/drive/MyDrive/polyjuice/checkpoints")
    assert not storage.on_drive("/content/polyjuice") and not storage.on_drive("/content/drive-copy/x")
    monkeypatch.setenv("POLYJUICE_STORAGE", "drive")
    assert storage.on_drive("/tmp/anything")
    monkeypatch.setenv("POLYJUICE_STORAGE", "local")
    assert not storage.on_drive("/content/drive/MyDrive/x")
    monkeypatch.setenv("POLYJUICE_STORAGE", "dropbox")
    with pytest.raises(ValueError, match="'drive' or 'local'"):
        storage.on_drive("/tmp")


def test_remove_empties_files_on_drive_before_deleting(tmp_path, monkeypatch, unlink_sizes):
    for name in ("a.pt", "b.png"):
        (tmp_path / name).write_bytes(b"x" * 1000)
    monkeypatch.setenv("POLYJUICE_STORAGE", "local")
    assert storage.remove(tmp_path / "a.pt")
    monkeypatch.setenv("POLYJUICE_STORAGE", "drive")
    assert storage.remove(tmp_path / "b.png")
    assert not storage.remove(tmp_path / "missing.pt")  # a missing file is fine
    assert unlink_sizes == {"a.pt": 1000, "b.png": 0}  # the recorder sees real sizes; on Drive only 0 bytes
    assert not list(tmp_path.iterdir())


def test_remove_leaves_the_target_of_a_link_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYJUICE_STORAGE", "drive")
    (tmp_path / "data.bin").write_bytes(b"precious")
    (tmp_path / "link.bin").symlink_to(tmp_path / "data.bin")
    assert storage.remove(tmp_path / "link.bin")
    assert (tmp_path / "data.bin").read_bytes() == b"precious"


def test_atomic_write_uses_the_umask_not_0600(tmp_path):
    old = os.umask(0o027)
    try:
        storage.atomic_write(tmp_path / "f.bin", lambda f: f.write(b"abc"))
    finally:
        os.umask(old)
    assert (tmp_path / "f.bin").read_bytes() == b"abc"
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o640


def test_atomic_write_full_disk_is_one_sentence_and_leaves_no_temp(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYJUICE_STORAGE", "drive")
    (tmp_path / "f.bin").write_bytes(b"old")

    def fill_disk(f):
        f.write(b"partial" * 100)
        f.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(storage.NoSpaceError) as info:
        storage.atomic_write(tmp_path / "f.bin", fill_disk, expected_size=5 * 2**30)
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, OSError)
    assert "5.00 GiB" in message and "is free" in message and "empty Drive's trash" in message
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"] and (tmp_path / "f.bin").read_bytes() == b"old"
    assert info.value._render_traceback_() == [f"\033[1;31mNo space:\033[0m {message}"]  # a notebook shows only this


def test_check_free_space(tmp_path, monkeypatch):
    monkeypatch.setenv("POLYJUICE_STORAGE", "local")
    free = storage.check_free_space(tmp_path, 1)
    assert free > 0
    with pytest.raises(storage.NoSpaceError, match="needs about .* is free") as info:
        storage.check_free_space(tmp_path / "not" / "yet", free + 2**40)
    assert "Drive" not in str(info.value)
    (tmp_path / ".ckpt-000000009.pt.4242@elsewhere.0123abcd.tmp").write_bytes(b"z" * 2048)
    with pytest.raises(storage.NoSpaceError, match=r"unfinished save\(s\) from another session hold 2.00 KiB: delete \.ckpt-000000009"):
        storage.check_free_space(tmp_path, free + 2**40)


WRITER = textwrap.dedent(
    """
    import sys, time
    from helpers.storage import atomic_write
    def slow(f):
        f.write(b"x" * 4096)
        f.flush()
        print("writing", flush=True)
        time.sleep(120)
    atomic_write(sys.argv[1], slow)
    """
)


def test_temp_files_of_dead_writers_go_live_ones_stay(tmp_path):
    """A killed writer's temp file is removed on the next clean-up; one that is still being written is not."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "ckpt-000000001.pt")], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "writing"
        live = list(tmp_path.glob(".*.tmp"))
        assert len(live) == 1
        old = time.time() - 5 * 60  # a slow save on Drive: untouched for minutes, writer alive
        os.utime(live[0], (old, old))
        # leftovers: an old mkstemp name of earlier versions, and one from another machine
        legacy = tmp_path / ".ckpt-000000002.pt.abc123.tmp"
        other_host = tmp_path / ".ckpt-000000003.pt.4242@elsewhere.0123abcd.tmp"
        for p in (legacy, other_host):
            p.write_bytes(b"y" * 100)
        ancient = time.time() - 2 * 3600
        os.utime(legacy, (ancient, ancient))
        assert storage.clean_stale_temp_files(tmp_path) == [legacy]
        assert live[0].exists() and other_host.exists()
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert storage.clean_stale_temp_files(tmp_path) == live  # its writer is gone now
    assert other_host.exists()  # another machine's: only the age rule applies
