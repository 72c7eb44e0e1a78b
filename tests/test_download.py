import hashlib
import io
import tarfile
import zipfile

import pytest

from helpers.download import DownloadError, UnsafeArchiveError, fetch, safe_extract, safe_name


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
