"""A class bundle: made once from a workspace, served over HTTP, opened in a fresh workspace; bad ones say why and leave nothing.

The workspace is made here: three face folders and a tiny model of each
lesson, trained for a couple of steps, as the demo leaves them.
"""

import hashlib
import json
import shutil
import textwrap
import zipfile

import numpy as np
import pytest
import torch

from helpers.bundle import BUNDLE_FORMAT, MANIFEST, BundleError, hub_location, make_bundle, start_from_bundle, use_bundle
from helpers.checkpoint import list_checkpoints, list_weights
from helpers.download import DownloadError, fetch
from helpers.env import LessonStop, Workspace
from helpers.facemodel import load_face_model

pytestmark = pytest.mark.usefixtures("one_thread")


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def faces_of(folder, n=6, size=48, seed=0):
    import cv2

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:04d}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory, one_thread):
    """A workspace as the demo leaves it: face folders, a swap run and a U-GAT-IT run (full checkpoints, no milestones)."""
    from helpers.swap import SwapConfig, train_swap
    from helpers.ugatit import Trainer, UGATITConfig

    ws = Workspace(tmp_path_factory.mktemp("demo"), "local")
    for seed, name in enumerate(("woman", "man", "cartoon")):
        faces_of(ws.faces / name, seed=seed)
    torch.manual_seed(0)
    train_swap(SwapConfig.quick(size=32, steps=2, batch_size=4, eval_faces=4, preview_every=0), ws.faces / "woman",
               ws.faces / "man", ws.checkpoints / "swap", "cpu", progress=False)
    cfg = UGATITConfig.quick(img_size=32, ch=4, n_res=1, iterations=2, kid_every=0, preview_every=0, save_every=2)
    Trainer(cfg, ws.faces, ws.checkpoints / "ugatit", "cpu", quiet=True).train()
    return ws


@pytest.fixture(scope="module")
def class_zip(demo_ws, tmp_path_factory):
    return make_bundle(demo_ws, tmp_path_factory.mktemp("made") / "class.zip", faces=["woman", "man"], models=["swap", "ugatit"])


def fresh(tmp_path, name="fresh"):
    ws = Workspace(tmp_path / name, "local")
    for folder in (ws.faces, ws.checkpoints):
        folder.mkdir(parents=True)
    return ws


def serve(http_root, path, name=None):
    www, base, log = http_root
    shutil.copyfile(path, www / (name or path.name))
    return f"{base}/{name or path.name}", log


def crops(n=2, size=40):
    return np.random.default_rng(1).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# ---------------------------------------------------------------- the round trip

def test_a_bundle_holds_inference_weights_and_a_manifest_and_prints_the_lines_to_paste(demo_ws, tmp_path, capsys):
    class_zip = make_bundle(demo_ws, tmp_path / "class.zip", faces=["woman", "man"], models=["swap", "ugatit"])
    manifest = class_zip.manifest
    assert manifest["format"] == BUNDLE_FORMAT and manifest["course"]["version"]
    assert {n: m["kind"] for n, m in manifest["models"].items()} == {"swap": "swap", "ugatit": "ugatit"}
    assert manifest["models"]["ugatit"]["config"]["img_size"] == 32 and manifest["faces"]["woman"]["faces"] == 6
    with zipfile.ZipFile(class_zip.path) as z:
        names = set(z.namelist())
        assert names == {MANIFEST, *manifest["files"]}
        for arcname, info in manifest["files"].items():
            assert hashlib.sha256(z.read(arcname)).hexdigest() == info["sha256"]
        weights = torch.load(z.open(manifest["models"]["ugatit"]["file"]), weights_only=True)
    assert set(weights["nets"]) == {"genA2B", "genB2A"} and "opt_g" not in weights  # inference only, no training state
    assert all(t.dtype == torch.float16 for t in weights["nets"]["genA2B"].values() if t.is_floating_point())
    full = list_checkpoints(demo_ws.checkpoints / "ugatit")[-1][1].stat().st_size
    assert manifest["files"][manifest["models"]["ugatit"]["file"]]["bytes"] < full / 4
    said = capsys.readouterr().out
    assert f'BUNDLE_SHA256 = "{class_zip.sha256}"' in said and "BUNDLE_URL = " in said and "class.zip (" in said


def test_a_fresh_workspace_gets_the_faces_and_models_that_transform_faces_like_the_originals(demo_ws, class_zip, http_root, tmp_path, capsys):
    url, log = serve(http_root, class_zip.path)
    ws = fresh(tmp_path)
    bundle = use_bundle(ws, url, class_zip.sha256)
    assert sorted(p.name for p in (ws.faces / "woman").iterdir()) == sorted(p.name for p in (demo_ws.faces / "woman").iterdir())
    assert bundle.models["swap"].kind == "swap" and bundle.models["ugatit"].step == 2
    for name in ("swap", "ugatit"):
        ours, theirs = load_face_model(ws.checkpoints / name, "cpu"), load_face_model(demo_ws.checkpoints / name, "cpu")
        assert ours.step == theirs.step
        diff = np.abs(ours(crops()).astype(int) - theirs(crops()).astype(int))
        assert diff.max() <= 3 and diff.mean() < 0.5, f"{name}: fp16 weights changed the faces by {diff.max()} levels"
    assert "faces woman (6), man (6)" in capsys.readouterr().out
    assert not list((ws.root / "bundles").rglob("*.zip")) and not list((ws.root / "bundles").glob(".unpack*"))

    requests_before = len(log)
    assert use_bundle(ws, url, class_zip.sha256).models.keys() == bundle.models.keys()
    assert len(log) == requests_before and "already in this workspace" in capsys.readouterr().out


def test_what_the_workspace_already_holds_is_kept(demo_ws, class_zip, http_root, tmp_path, capsys):
    url, _ = serve(http_root, class_zip.path)
    ws = fresh(tmp_path)
    faces_of(ws.faces / "woman", n=2, seed=7)  # the learner's own faces and U-GAT-IT run
    shutil.copytree(demo_ws.checkpoints / "ugatit", ws.checkpoints / "ugatit")
    bundle = use_bundle(ws, url)
    assert len(list((ws.faces / "woman").iterdir())) == 2 and "woman" not in bundle.faces and "ugatit" not in bundle.models
    assert "Kept what this workspace already had in faces/woman, checkpoints/ugatit" in capsys.readouterr().out


# ---------------------------------------------------------------- lessons 03 and 04: skip, or train on top

def test_a_lesson_skips_training_for_the_bundles_model_unless_asked_and_finds_it_under_another_name(class_zip, http_root, tmp_path, capsys):
    url, _ = serve(http_root, class_zip.path)
    bundle = use_bundle(fresh(tmp_path), url)
    assert "skips training" in bundle.skip_training("swap", "swap") and "TRAIN_ON_BUNDLE = True" in bundle.skip_training("ugatit", "ugatit")
    assert bundle.skip_training("swap", "swap", train_on_bundle=True) is None
    assert bundle.skip_training("swap", "ugatit") is None and bundle.skip_training("swap", "mine") is None
    assert bundle.run_name("swap", "swap") == "swap"
    bundle.models["celebs"] = bundle.models.pop("swap")
    assert bundle.run_name("swap", "swap") == "celebs" and "checkpoints/celebs" in capsys.readouterr().out


def test_training_on_top_continues_from_the_bundles_weights(demo_ws, class_zip, http_root, tmp_path, capsys):
    from helpers.swap import SwapConfig, train_swap
    from helpers.ugatit import Trainer, UGATITConfig

    url, _ = serve(http_root, class_zip.path)
    ws = fresh(tmp_path)
    use_bundle(ws, url)
    run = train_swap(SwapConfig.quick(size=32, steps=3, batch_size=4, eval_faces=4, preview_every=0),
                     ws.faces / "woman", ws.faces / "man", ws.checkpoints / "swap", "cpu", progress=False)
    assert (run.start_step, run.step) == (2, 3)  # one more step on the bundle's swap, fresh optimiser

    cfg = UGATITConfig.quick(img_size=32, ch=4, n_res=1, iterations=3, kid_every=0, preview_every=0, save_every=3)
    shutil.copytree(demo_ws.faces / "cartoon", ws.faces / "cartoon")
    trainer = Trainer(cfg, ws.faces, ws.checkpoints / "ugatit", "cpu", quiet=True)
    assert start_from_bundle(trainer) and trainer.step == 2
    bundled = torch.load(list_weights(ws.checkpoints / "ugatit")[-1][1], weights_only=True)["nets"]["genA2B"]
    assert all(torch.equal(v.float(), trainer.nets["genA2B"].state_dict()[k].float()) for k, v in bundled.items())
    assert "discriminators and optimisers start fresh" in capsys.readouterr().out
    trainer.train()
    assert load_face_model(ws.checkpoints / "ugatit", "cpu").step == 3  # the learner's newer checkpoint wins over the bundle's
    assert not start_from_bundle(Trainer(cfg, ws.faces, ws.checkpoints / "ugatit", "cpu", quiet=True))  # resumes its own run

    asked = UGATITConfig.quick(img_size=32, ch=8, n_res=1, iterations=3, kid_every=0, preview_every=0)
    other = fresh(tmp_path, "other")
    use_bundle(other, url)
    shutil.copytree(demo_ws.faces / "cartoon", other.faces / "cartoon")
    with pytest.raises(LessonStop, match="set LIGHT and IMG_SIZE to match it"):
        start_from_bundle(Trainer(asked, other.faces, other.checkpoints / "ugatit", "cpu", quiet=True))


# ---------------------------------------------------------------- six bad bundles: one sentence, nothing left behind

def repack(good, out, edit):
    """A copy of the bundle `good` with `edit(folder, manifest)` applied, every checksum recomputed: one defect only."""
    folder = out.with_suffix("")
    with zipfile.ZipFile(good) as z:
        z.extractall(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    edit(folder, manifest)
    manifest["files"] = {a: {"sha256": sha(folder / a), "bytes": (folder / a).stat().st_size} for a in manifest["files"] if (folder / a).exists()}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with zipfile.ZipFile(out, "w") as z:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            z.write(path, path.relative_to(folder).as_posix())
    return out


def assert_refused(ws, url, match, sha256=None, **kw):
    with pytest.raises(BundleError) as refused:
        use_bundle(ws, url, sha256, **kw)
    said = str(refused.value)
    assert "\n" not in said and said.rstrip().endswith(".") and len(said) < 400, said
    assert match in said, said
    assert not any(ws.faces.iterdir()) and not any(ws.checkpoints.iterdir())
    assert not [p for p in (ws.root / "bundles").rglob("*") if p.is_file()], "the archive or its staging copy was left"
    return said


def test_a_truncated_bundle_is_refused(class_zip, http_root, tmp_path):
    cut = tmp_path / "cut.zip"
    cut.write_bytes(class_zip.path.read_bytes()[: class_zip.size // 2])
    url, _ = serve(http_root, cut)
    assert_refused(fresh(tmp_path), url, "not a whole bundle")


def test_a_bundle_with_another_checksum_is_refused(class_zip, http_root, tmp_path):
    url, _ = serve(http_root, class_zip.path)
    assert_refused(fresh(tmp_path), url, "SHA-256", sha256="0" * 64)


def test_a_member_that_escapes_the_folder_is_refused(class_zip, http_root, tmp_path):
    evil = tmp_path / "evil.zip"
    shutil.copyfile(class_zip.path, evil)
    with zipfile.ZipFile(evil, "a") as z:
        z.writestr("../../faces/evil/0000.png", b"x")
    url, _ = serve(http_root, evil)
    ws = fresh(tmp_path)
    assert_refused(ws, url, "would land outside")
    assert not (tmp_path / "faces").exists() and not (ws.root / "faces" / "evil").exists()


def test_a_bundle_from_an_older_course_is_refused(class_zip, http_root, tmp_path):
    old = repack(class_zip.path, tmp_path / "old.zip", lambda folder, m: m.pop("format"))
    url, _ = serve(http_root, old)
    assert_refused(fresh(tmp_path), url, "made by an older version of the course")


def test_a_model_this_course_cannot_use_is_refused(demo_ws, class_zip, http_root, tmp_path):
    def unknown_kind(folder, manifest):
        manifest["models"]["swap"]["kind"] = "diffusion"

    url, _ = serve(http_root, repack(class_zip.path, tmp_path / "kind.zip", unknown_kind))
    assert_refused(fresh(tmp_path, "a"), url, "of kind 'diffusion', which this course cannot use")

    def other_network(folder, manifest):  # weights of a tiny model filed as the classic one
        path = folder / manifest["models"]["swap"]["file"]
        state = torch.load(path, weights_only=True)
        torch.save({**state, "config": {**state["config"], "model": "classic"}}, path)

    url, _ = serve(http_root, repack(class_zip.path, tmp_path / "arch.zip", other_network))
    assert_refused(fresh(tmp_path, "b"), url, "does not fit this course's face-swap autoencoder network")


def test_a_bundle_with_faces_but_no_model_stops_a_lesson_that_needs_one_and_serves_the_others(demo_ws, http_root, tmp_path, capsys):
    faces_only = make_bundle(demo_ws, tmp_path / "faces.zip", faces=["woman"])
    url, _ = serve(http_root, faces_only.path)
    said = assert_refused(fresh(tmp_path, "a"), url, "holds faces but no trained model", needs_model=True)
    assert "run lesson 03 or 04 first" in said
    ws = fresh(tmp_path, "b")
    bundle = use_bundle(ws, url)  # lessons 01-04 only need faces: they go on
    assert list(bundle.faces) == ["woman"] and not bundle.models and bundle.skip_training("swap", "swap") is None
    assert len(list((ws.faces / "woman").iterdir())) == 6


# ---------------------------------------------------------------- hosting: Drive's limit, the Hub

def test_drives_too_many_users_becomes_one_sentence_with_what_to_do(monkeypatch, tmp_path):
    import gdown
    from gdown.exceptions import FileURLRetrievalError

    page = ("Too many users have viewed or downloaded this file recently. Please try accessing the file again later. "
            "If the file you are trying to access is particularly large or is shared with many people, it may take up "
            "to 24 hours to be able to view or download the file.")
    wrapped = "Failed to retrieve file url:\n\n" + textwrap.indent("\n".join(textwrap.wrap(page, 50)), "\t")  # as gdown words it

    def refuse(*args, **kwargs):
        raise FileURLRetrievalError(wrapped)

    monkeypatch.setattr(gdown, "download", refuse)
    with pytest.raises(DownloadError) as refused:  # helpers.download itself, for any Drive file
        fetch("https://drive.google.com/file/d/abc123/view", tmp_path / "dl")
    said = str(refused.value)
    assert "too many people downloaded this file recently" in said and "Hugging Face Hub or any web server" in said
    assert "\n" not in said and "wait" in said
    with pytest.raises(BundleError, match="too many people downloaded this file recently"):  # and as the bundle cell's stop
        use_bundle(fresh(tmp_path), "https://drive.google.com/file/d/abc123/view", None)
    monkeypatch.setattr(gdown, "download", lambda *a, **k: (_ for _ in ()).throw(FileURLRetrievalError("other")))
    with pytest.raises(FileURLRetrievalError):  # other Drive errors are not dressed up as this one
        fetch("https://drive.google.com/file/d/abc123/view", tmp_path / "dl")


def test_hub_links_go_through_huggingface_hub_or_say_it_is_missing(class_zip, monkeypatch, tmp_path):
    import sys

    assert hub_location("hf://me/class-bundle/2026/class.zip") == {
        "repo_id": "me/class-bundle", "filename": "2026/class.zip", "repo_type": None, "revision": None}
    assert hub_location("hf://datasets/me/faces@v2/class.zip")["repo_type"] == "dataset"
    with pytest.raises(BundleError, match="hf://<owner>/<repo>/<file in the repo>"):
        hub_location("hf://me/class.zip")

    asked = []

    class FakeHub:
        @staticmethod
        def hf_hub_download(**where):
            asked.append(where)
            return str(class_zip.path)

    monkeypatch.setitem(sys.modules, "huggingface_hub", FakeHub)
    ws = fresh(tmp_path)
    bundle = use_bundle(ws, "hf://me/class-bundle@main/class.zip", class_zip.sha256)
    assert asked == [{"repo_id": "me/class-bundle", "filename": "class.zip", "repo_type": None, "revision": "main"}]
    assert set(bundle.models) == {"swap", "ugatit"} and class_zip.path.exists()  # the Hub's cache is not ours to delete
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(BundleError, match="needs the huggingface_hub package"):
        use_bundle(fresh(tmp_path, "other"), "hf://me/class-bundle/class.zip")


# ---------------------------------------------------------------- done when: lessons 04 and 05 run on a bundle without training

@pytest.mark.notebook
def test_lessons_04_and_05_run_on_a_served_bundle_without_training(class_zip, http_root, tmp_path, monkeypatch):
    import nbformat

    from helpers.course import find_notebook, run_notebook

    url, _ = serve(http_root, class_zip.path)
    monkeypatch.setenv("POLYJUICE_DEVICE", "cpu")
    monkeypatch.setenv("POLYJUICE_OFFLINE", "1")
    ws = tmp_path / "learner"
    bundle = {"BUNDLE_URL": url, "BUNDLE_SHA256": class_zip.sha256}

    def printed(path):
        return "".join(o.get("text", "") for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code" for o in c.outputs)

    out04 = printed(run_notebook(find_notebook("04"), tmp_path / "04.ipynb", bundle, ws))  # QUICK = False: no CPU stop either
    assert "The bundle's U-GAT-IT (light, 32 px" in out04 and "skips training" in out04
    assert "U-GAT-IT A2B (step 2), 32 px" in out04
    out05 = printed(run_notebook(find_notebook("05"), tmp_path / "05.ipynb", {**bundle, "QUICK": True, "SECONDS": 0.5}, ws))
    assert "already in this workspace" in out05 and "swap to A (step 2)" in out05
    assert [p.name for _, p in list_checkpoints(ws / "checkpoints" / "swap")] == ["ckpt-000000002.pt"]  # the bundle's, no toy
    assert not list_checkpoints(ws / "checkpoints" / "ugatit") and len(list_weights(ws / "checkpoints" / "ugatit")) == 1
    assert not (ws / "checkpoints" / "ugatit" / "log.csv").exists() and list((ws / "renders").glob("*_swap.mp4"))
