import hashlib
import io
import tarfile
import zipfile

import pytest

from helpers.download import ArchiveLimits, DownloadError, UnsafeArchiveError, fetch, safe_extract, safe_name


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_fetch_checks_sha_and_skips_on_rerun(http_root, tmp_path):
    root, base, log = http_root
    data = b"pretrained weights" * 1000
    (root / "model.pt").write_bytes(data)
    out = fetch(f"{base}/model.pt", tmp_path / "dl", sha256=sha(data))
    assert out.read_bytes() == data
    fetch(f"{base}/model.pt", tmp_path / "dl", sha256=sha(data))
    assert len(log) == 1  # second call found the verified file and fetched nothing


def test_fetch_resumes_a_partial_download_with_range(http_root, tmp_path):
    root, base, log = http_root
    data = bytes(range(256)) * 4000
    (root / "data.bin").write_bytes(data)
    dest = tmp_path / "dl"
    dest.mkdir()
    (dest / "data.bin.part").write_bytes(data[:300_000])  # an earlier, interrupted attempt
    out = fetch(f"{base}/data.bin", dest, sha256=sha(data))
    assert out.read_bytes() == data
    assert log[-1][1] == "bytes=300000-"


def test_wrong_checksum_is_a_clear_error_and_leaves_no_file(http_root, tmp_path):
    root, base, _ = http_root
    (root / "a.bin").write_bytes(b"changed")
    with pytest.raises(DownloadError, match="SHA-256"):
        fetch(f"{base}/a.bin", tmp_path, sha256="0" * 64)
    assert not (tmp_path / "a.bin").exists()


def test_missing_file_and_bad_scheme_say_what_failed(http_root, tmp_path):
    _, base, _ = http_root
    with pytest.raises(DownloadError, match="404"):
        fetch(f"{base}/nope.zip", tmp_path)
    with pytest.raises(DownloadError, match="http"):
        fetch("file:///etc/passwd", tmp_path)


def test_server_cannot_choose_a_path_outside_the_folder(http_root, tmp_path):
    root, base, _ = http_root
    (root / "x.bin").write_bytes(b"x")
    out = fetch(f"{base}/x.bin", tmp_path / "dl", filename="../../evil.sh")
    assert out.parent == tmp_path / "dl" and out.name == "evil.sh"
    assert safe_name("..\\..\\win.ini") == "win.ini"


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_zip_is_extracted_once(http_root, tmp_path):
    root, base, _ = http_root
    blob = make_zip({"faces/a/1.png": b"png", "faces/b/2.png": b"png2"})
    (root / "faces.zip").write_bytes(blob)
    out = fetch(f"{base}/faces.zip", tmp_path / "dl", sha256=sha(blob), extract=True)
    assert (out / "faces/a/1.png").read_bytes() == b"png"
    (out / "faces/a/1.png").unlink()
    fetch(f"{base}/faces.zip", tmp_path / "dl", sha256=sha(blob), extract=True)
    assert not (out / "faces/a/1.png").exists()  # already extracted: not done twice


def test_zip_with_dotdot_member_is_refused_and_writes_nothing(http_root, tmp_path):
    root, base, _ = http_root
    (root / "evil.zip").write_bytes(make_zip({"ok.txt": b"fine", "../../escaped.txt": b"pwned"}))
    with pytest.raises(UnsafeArchiveError, match="outside"):
        fetch(f"{base}/evil.zip", tmp_path / "dl", extract=True)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not (tmp_path / "dl" / "evil" / "ok.txt").exists()


def test_absolute_and_link_members_are_refused(tmp_path):
    (tmp_path / "abs.zip").write_bytes(make_zip({"/etc/cron.d/x": b"x"}))
    with pytest.raises(UnsafeArchiveError, match="absolute"):
        safe_extract(tmp_path / "abs.zip", tmp_path / "out")
    with tarfile.open(tmp_path / "link.tar", "w") as t:
        info = tarfile.TarInfo("innocent")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        t.addfile(info)
    with pytest.raises(UnsafeArchiveError, match="link"):
        safe_extract(tmp_path / "link.tar", tmp_path / "out")


def test_tar_gz_extracts(tmp_path):
    with tarfile.open(tmp_path / "ck.tar.gz", "w:gz") as t:
        data = b"weights"
        info = tarfile.TarInfo("swap/ckpt-000000100.pt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    written = safe_extract(tmp_path / "ck.tar.gz", tmp_path / "out")
    assert [p.read_bytes() for p in written] == [b"weights"]


# ---------------------------------------------------------------- archive bombs and bad arguments

MiB = 1 << 20


def files_in(folder):
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def zeros_zip(path, size: int, name: str = "zeros.bin") -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open(name, "w") as f:
        for _ in range(size // MiB):
            f.write(bytes(MiB))


def zeros_tar_gz(path, size: int) -> None:
    with tarfile.open(path, "w:gz") as t:
        info = tarfile.TarInfo("zeros.bin")
        info.size = size
        t.addfile(info, io.BytesIO(bytes(size)))


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    zeros_zip(tmp_path / "bomb.zip", 64 * MiB)  # about 64 KB declaring 64 MiB: a ratio near 1000
    assert (tmp_path / "bomb.zip").stat().st_size < MiB
    with pytest.raises(UnsafeArchiveError, match="max_ratio"):
        safe_extract(tmp_path / "bomb.zip", tmp_path / "out")
    assert files_in(tmp_path / "out") == []
    with pytest.raises(UnsafeArchiveError, match="max_total_bytes"):  # the size cap holds even with any ratio allowed
        safe_extract(tmp_path / "bomb.zip", tmp_path / "out", ArchiveLimits(max_ratio=1e9, max_total_bytes=16 * MiB))
    assert files_in(tmp_path / "out") == []


def test_gzipped_tar_of_zeros_is_refused_by_ratio_and_by_size(tmp_path):
    zeros_tar_gz(tmp_path / "bomb.tar.gz", 32 * MiB)
    with pytest.raises(UnsafeArchiveError, match="max_ratio"):  # packed size of the whole file vs declared sizes
        safe_extract(tmp_path / "bomb.tar.gz", tmp_path / "out")
    with pytest.raises(UnsafeArchiveError, match="max_total_bytes"):
        safe_extract(tmp_path / "bomb.tar.gz", tmp_path / "out", ArchiveLimits(max_ratio=1e9, max_total_bytes=16 * MiB))
    assert files_in(tmp_path / "out") == []
    zeros_tar_gz(tmp_path / "small.tar.gz", 2 * MiB)  # a trusted archive with the caps raised unpacks fine
    (written,) = safe_extract(tmp_path / "small.tar.gz", tmp_path / "ok", ArchiveLimits(max_ratio=1e9))
    assert written.stat().st_size == 2 * MiB


def test_member_count_bomb_is_refused(tmp_path):
    make = {f"f{i}.txt": b"" for i in range(301)}
    (tmp_path / "many.zip").write_bytes(make_zip(make))
    with tarfile.open(tmp_path / "many.tar", "w") as t:
        for name in make:
            t.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    for name in ("many.zip", "many.tar"):
        with pytest.raises(UnsafeArchiveError, match="more than 300 members"):
            safe_extract(tmp_path / name, tmp_path / "out", ArchiveLimits(max_members=300))
        assert files_in(tmp_path / "out") == []
    assert len(safe_extract(tmp_path / "many.zip", tmp_path / "out")) == 301  # the default cap is far higher


def test_a_zip_that_lies_about_its_sizes_leaves_nothing_and_says_so(tmp_path):
    """Headers patched to declare 1000 bytes for a member that really unpacks to 4 MiB."""
    data = bytearray(make_zip({"first.txt": b"fine", "liar.bin": bytes(4 * MiB)}))
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size in local and central headers
        at = data.rfind(sig)
        data[at + offset:at + offset + 4] = (1000).to_bytes(4, "little")
    (tmp_path / "liar.zip").write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="damaged|lies"):
        safe_extract(tmp_path / "liar.zip", tmp_path / "out")
    assert files_in(tmp_path / "out") == [], "the member written before the lie was found is removed too"


def test_the_bytes_written_are_counted_too(tmp_path, monkeypatch):
    """If the declared sizes got past the checks, the copy itself stops at the cap and cleans up."""
    import helpers.download as dl

    with tarfile.open(tmp_path / "two.tar", "w") as t:
        for name in ("a.bin", "b.bin"):
            info = tarfile.TarInfo(name)
            info.size = 3 * MiB
            t.addfile(info, io.BytesIO(bytes(info.size)))
    monkeypatch.setattr(dl, "_check_sizes", lambda *a, **kw: None)  # as if the headers had lied
    with pytest.raises(UnsafeArchiveError, match="while writing"):
        safe_extract(tmp_path / "two.tar", tmp_path / "out", ArchiveLimits(max_total_bytes=4 * MiB))
    assert files_in(tmp_path / "out") == []
    budget = dl._Budget(tmp_path / "x.zip", ArchiveLimits())
    with pytest.raises(UnsafeArchiveError, match="declares"):
        budget.copy(io.BytesIO(b"x" * 10), io.BytesIO(), "m", declared=5)


def test_fetch_refuses_bad_arguments_before_downloading(http_root, tmp_path):
    root, base, log = http_root
    (root / "a.bin").write_bytes(b"a")
    (tmp_path / "a-file").write_text("x")
    for kwargs, message in [({"sha256": "abc"}, "64 hex"), ({"timeout": 0}, "timeout"), ({"extract": "yes"}, "extract"),
                            ({"filename": ""}, "filename")]:
        with pytest.raises(DownloadError, match=message):
            fetch(f"{base}/a.bin", tmp_path / "dl", **kwargs)
    with pytest.raises(DownloadError, match="url"):
        fetch(None, tmp_path / "dl")
    with pytest.raises(DownloadError, match="is a file"):
        fetch(f"{base}/a.bin", tmp_path / "a-file")
    with pytest.raises(ValueError, match="max_members"):
        ArchiveLimits(max_members=0)
    assert log == [], "nothing was requested"
    assert fetch(f"{base}/a.bin", tmp_path / "dl", sha256=sha(b"a").upper()).read_bytes() == b"a"


def test_plain_http_download_shows_a_byte_progress_bar(http_root, tmp_path, capsys):
    root, base, _ = http_root
    (root / "big.bin").write_bytes(bytes(3 * MiB))
    (root / "tiny.bin").write_bytes(b"tiny")
    fetch(f"{base}/tiny.bin", tmp_path / "dl")
    assert capsys.readouterr().err == "", "a tiny file downloads quietly"
    fetch(f"{base}/big.bin", tmp_path / "dl")
    err = capsys.readouterr().err
    assert "big.bin" in err and "3.00M" in err and "100%" in err, err
    fetch(f"{base}/big.bin", tmp_path / "quiet", progress=False)
    assert capsys.readouterr().err == ""
