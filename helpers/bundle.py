"""A class bundle: faces and trained models an instructor packs once and thirty learners open.

    make_bundle(ws, "class.zip", faces=["woman", "man"], models=["swap", "ugatit"])   # the instructor, once
    bundle = use_bundle(ws, BUNDLE_URL, BUNDLE_SHA256)                               # every notebook

Why: a workshop lasts a few hours and training takes tens of minutes on a
laptop, hours on a GPU. A bundle carries face folders and models as inference
weights only (the fp16 `weights-*.pt` milestones, a fraction of a full
checkpoint), so a room downloads megabytes, not gigabytes, and lessons 03 and
04 can skip their training.

The archive is one zip: `manifest.json` (format, course commit, each file's
SHA-256 and size, each model's kind, step and config), `faces/<name>/...` and
`models/<name>/weights-<step>.pt`. `use_bundle` fetches it once (helpers.download:
resumable, checksummed, unpacked only if safe; `hf://owner/repo/path` through
huggingface_hub), checks everything in a staging folder, and only then moves
faces to `faces/<name>` and models to `checkpoints/<name>`. A bad bundle stops
with one sentence (BundleError) and leaves nothing of itself in the workspace.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .checkpoint import checkpoint_path, list_checkpoints, list_weights, save_weights
from .data import list_faces
from .download import DownloadError, fetch, safe_extract, sha256_of
from .env import LessonStop
from .facemodel import (KINDS, UGATIT_ARCH, checkpoint_kind, describe_architecture, has_checkpoint, load_face_model,
                        read_weights)
from .storage import atomic_write, human_size, remove

BUNDLE_FORMAT = 1  # raise it when the layout changes: older bundles are then refused by name
MANIFEST = "manifest.json"
HOME = "bundles"  # workspace/bundles: the download, the staging folder, and one record per bundle in use
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")
TEXT_SUFFIXES = (".csv", ".json", ".txt")  # compressed in the zip; photos and weights barely shrink, so they are stored
REPO = Path(__file__).resolve().parent.parent


class BundleError(LessonStop):
    """A bundle that cannot be used here; the sentence says why and what to do. Nothing of it stays in the workspace."""


# ---------------------------------------------------------------- making one

@dataclass(frozen=True)
class BundleFile:
    """What make_bundle wrote: the archive, its checksum and size, and its manifest."""

    path: Path
    sha256: str
    size: int
    manifest: dict

    def paste_lines(self, url: str = "<the link to your copy of it>") -> str:
        return f'BUNDLE_URL = "{url}"\nBUNDLE_SHA256 = "{self.sha256}"'


def course_version() -> dict:
    """The course commit (git), else the installed package's version: which code made a bundle."""
    from importlib.metadata import PackageNotFoundError, version

    commit = None
    if (REPO / ".git").exists():
        try:
            commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                    timeout=10, check=True).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        package = version("polyjuice-helpers")
    except PackageNotFoundError:
        package = None
    return {"commit": commit, "version": package}


def describe_model(kind: str, config: dict, step: int) -> str:
    """'face swap (classic, 64 px, step 20000)' or 'U-GAT-IT (light, 256 px, ch 64, 4 blocks, step 300000)'."""
    if kind == "swap":
        return f"face swap ({config.get('model', 'classic')}, {config.get('size')} px, step {step})"
    return (f"U-GAT-IT ({'light' if config.get('light') else 'full'}, {config.get('img_size')} px, "
            f"ch {config.get('ch')}, {config.get('n_res')} blocks, step {step})")


def _names(names, what: str) -> list[str]:
    names = [names] if isinstance(names, str) else list(names or [])
    for name in names:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ValueError(f"{what} takes folder names such as 'woman' or 'swap', not {name!r}")
    return names


def _face_files(folder: Path, name: str) -> dict[str, Path]:
    """Archive name -> file, for every file of a face folder (temp and hidden files left out)."""
    if not folder.is_dir() or not list_faces(folder):
        raise ValueError(f"No kept faces in {folder}: crop them with notebook 02 first, or leave {name!r} out of faces=[...].")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
                   and p.suffix not in (".tmp", ".part"))
    return {f"faces/{name}/{p.relative_to(folder).as_posix()}": p for p in files}


def _inference_weights(run: Path, name: str, scratch: Path) -> tuple[Path, dict]:
    """The run's newest model as an fp16 milestone file (its own, or one made from the newest checkpoint) and its state."""
    saved = sorted([(step, 1, p) for step, p in list_weights(run)] + [(step, 0, p) for step, p in list_checkpoints(run)])
    if not saved:
        raise ValueError(f"No trained model in {run} (no ckpt-*.pt or weights-*.pt): train it with notebook 03 or 04, "
                         f"or leave {name!r} out of models=[...].")
    step, is_milestone, path = saved[-1]  # the newest step; at equal steps the milestone, already half precision
    state = read_weights(path)
    kind = checkpoint_kind(state)
    if kind not in KINDS:
        raise ValueError(f"{path} is not a model of this course (swap or U-GAT-IT), so it cannot go into a bundle.")
    if is_milestone:
        return path, state
    keep = {"model": state["model"]} if kind == "swap" else {"nets": {n: state["nets"][n] for n in ("genA2B", "genB2A")}}
    made = save_weights(scratch / name, step, {**keep, "config": state["config"]})
    return made, read_weights(made)


def _write_zip(f, members: dict[str, Path], manifest: dict) -> None:
    with zipfile.ZipFile(f, "w") as z:
        z.writestr(MANIFEST, json.dumps(manifest, indent=1, default=str), compress_type=zipfile.ZIP_DEFLATED)
        for arcname, src in members.items():
            packed = zipfile.ZIP_DEFLATED if src.suffix.lower() in TEXT_SUFFIXES else zipfile.ZIP_STORED
            z.write(src, arcname, compress_type=packed)


def make_bundle(ws, out: str | os.PathLike, faces=(), models=()) -> BundleFile:
    """Pack face folders (`faces/<name>`) and trained models (`checkpoints/<name>`, as fp16 inference weights) into one zip.

    `ws` is the workspace (or its folder). Prints the archive's size and the
    two lines to paste into each notebook's parameters, and returns them too.
    """
    root = Path(getattr(ws, "root", ws))
    faces, models = _names(faces, "faces"), _names(models, "models")
    if not faces and not models:
        raise ValueError("make_bundle needs at least one face folder (faces=[...]) or model (models=[...]).")
    out = Path(out)
    if out.suffix.lower() != ".zip":
        raise ValueError(f"out must name a .zip file (e.g. 'class.zip'), not {str(out)!r}")
    with tempfile.TemporaryDirectory(prefix="bundle-") as scratch:
        members: dict[str, Path] = {}
        face_info, model_info = {}, {}
        for name in faces:
            files = _face_files(root / "faces" / name, name)
            members.update(files)
            face_info[name] = {"faces": len(list_faces(root / "faces" / name)), "files": len(files)}
        for name in models:
            path, state = _inference_weights(root / "checkpoints" / name, name, Path(scratch))
            kind, step = checkpoint_kind(state), int(state["step"])
            arcname = f"models/{name}/{path.name}"
            members[arcname] = path
            model_info[name] = {"kind": kind, "step": step, "file": arcname, "config": state["config"],
                                "about": describe_model(kind, state["config"], step)}
        files = {arc: {"sha256": sha256_of(src), "bytes": src.stat().st_size} for arc, src in members.items()}
        manifest = {"format": BUNDLE_FORMAT, "course": course_version(),
                    "made": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "faces": face_info, "models": model_info, "files": files,
                    "bytes": sum(f["bytes"] for f in files.values())}
        atomic_write(out, lambda f: _write_zip(f, members, manifest), manifest["bytes"] + (1 << 20), what=out.name)
    made = BundleFile(out, sha256_of(out), out.stat().st_size, manifest)
    print(f"{out} ({human_size(made.size)}): {summary(face_info, model_info)}.")
    print("Host it (README, 'A class bundle'), then paste into each notebook's parameters:")
    print(made.paste_lines())
    return made


def summary(faces: dict, models: dict) -> str:
    """'faces woman (72), man (70); models swap: face swap (...)': what a bundle holds, in one line."""
    parts = []
    if faces:
        parts.append("faces " + ", ".join(f"{n} ({i['faces']})" for n, i in faces.items()))
    if models:
        parts.append("models " + ", ".join(f"{n}: {i['about']}" for n, i in models.items()))
    return "; ".join(parts) or "nothing"


# ---------------------------------------------------------------- using one

@dataclass(frozen=True)
class BundleModel:
    kind: str
    step: int
    path: Path
    about: str


@dataclass
class Bundle:
    """What use_bundle put into the workspace; empty when no BUNDLE_URL is set."""

    name: str = ""
    faces: dict[str, Path] = field(default_factory=dict)
    models: dict[str, BundleModel] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.faces or self.models)

    def run_name(self, kind: str, asked: str) -> str:
        """The run folder a lesson should use: `asked`, unless the bundle's one model of `kind` lives in another."""
        mine = [name for name, m in self.models.items() if m.kind == kind]
        if asked in mine or not mine:
            return asked
        if len(mine) > 1:
            print(f"The bundle holds several models of this kind ({', '.join(mine)}): set RUN_NAME to the one you want.")
            return asked
        print(f"Using the bundle's model in checkpoints/{mine[0]} (instead of {asked!r}).")
        return mine[0]

    def skip_training(self, kind: str, run_name: str, train_on_bundle: bool = False) -> str | None:
        """Why a lesson skips its training (the bundle's model of `kind` is in `run_name`), or None to train."""
        model = self.models.get(run_name)
        if model is None or model.kind != kind or train_on_bundle:
            return None
        return (f"The bundle's {model.about} is in checkpoints/{run_name}, so this lesson skips training and uses it "
                "(to train on top of it, set TRAIN_ON_BUNDLE = True).")


def _key(url: str, sha256: str | None) -> str:
    return (sha256 or hashlib.sha256(url.encode()).hexdigest())[:16]


def hub_location(url: str) -> dict:
    """hf://[datasets/|spaces/]owner/repo[@revision]/path/in/repo -> hf_hub_download's arguments."""
    parts = url[len("hf://"):].strip("/").split("/")
    repo_type = None
    if parts and parts[0] in ("datasets", "spaces", "models"):
        repo_type = None if parts[0] == "models" else parts[0][:-1]
        parts = parts[1:]
    if len(parts) < 3 or not all(parts):
        raise BundleError(f"{url} is not a Hub file link: write hf://<owner>/<repo>/<file in the repo>, e.g. "
                          "hf://me/class-bundle/class.zip (hf://datasets/... for a dataset repository).")
    repo, _, revision = parts[1].partition("@")
    return {"repo_id": f"{parts[0]}/{repo}", "filename": "/".join(parts[2:]), "repo_type": repo_type, "revision": revision or None}


def _from_hub(url: str, sha256: str | None) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise BundleError("An hf:// link needs the huggingface_hub package (Colab has it): pip install huggingface_hub, "
                          "or use the file's https://huggingface.co/<repo>/resolve/main/<file> link, which needs nothing.") from None
    where = hub_location(url)
    try:
        path = Path(hf_hub_download(**where))  # resumable, cached outside the workspace
    except Exception as exc:  # network, 404, a private repository: huggingface_hub's many error types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BundleError(f"The Hugging Face Hub did not give {url} ({first}): check that the repository is public "
                          "(or log in with huggingface_hub.login()) and that the file is there.") from None
    if sha256 and sha256_of(path) != sha256:
        raise BundleError(f"{url} has another SHA-256 than BUNDLE_SHA256: the file changed or is damaged; "
                          "ask for the current checksum (make_bundle prints it).")
    return path


def _download(url: str, folder: Path, sha256: str | None) -> Path:
    if url.startswith("hf://"):
        return _from_hub(url, sha256)
    try:
        return fetch(url, folder, sha256=sha256)
    except DownloadError as exc:
        raise BundleError(str(exc)) from None


def _remove_tree(folder: Path) -> None:
    """Delete a folder we made, file by file through storage.remove (Drive's trash keeps nothing)."""
    if not folder.exists():
        return
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        else:
            remove(path)
    folder.rmdir()


def _read_manifest(staging: Path, name: str) -> dict:
    path = staging / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{name} is not a class bundle (it has no {MANIFEST}): make one with helpers.bundle.make_bundle.") from None
    except ValueError:
        raise BundleError(f"{name}'s {MANIFEST} is not readable JSON: ask for a fresh copy of the bundle.") from None
    fmt = manifest.get("format", 0) if isinstance(manifest, dict) else 0
    if not isinstance(fmt, int) or fmt < BUNDLE_FORMAT:
        raise BundleError(f"{name} was made by an older version of the course (bundle format {fmt}, this course reads "
                          f"{BUNDLE_FORMAT}): ask your instructor to make it again with the current course's make_bundle.")
    if fmt > BUNDLE_FORMAT:
        raise BundleError(f"{name} was made by a newer version of the course (bundle format {fmt}, this one reads "
                          f"{BUNDLE_FORMAT}): update the course (a new Colab session runs the set-up again; elsewhere git pull).")
    for section in ("faces", "models", "files"):
        if not isinstance(manifest.get(section), dict):
            raise BundleError(f"{name}'s {MANIFEST} has no {section!r} table: ask for a bundle made with make_bundle.")
    bad = [n for n in (*manifest["faces"], *manifest["models"]) if not isinstance(n, str) or not NAME_RE.match(n)]
    if bad:
        raise BundleError(f"{name} names a folder {bad[0]!r} that could land outside the workspace: refused.")
    return manifest


def _check_files(staging: Path, manifest: dict, name: str) -> None:
    """Every file is listed, every listed file is there with the SHA-256 make_bundle wrote down."""
    listed = manifest["files"]
    present = {p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()} - {MANIFEST}
    odd = sorted(set(listed) ^ present)
    if odd:
        raise BundleError(f"{name} does not match its manifest ({odd[0]} is {'missing' if odd[0] in listed else 'not listed'}): "
                          "it was changed after make_bundle wrote it; ask for a fresh copy.")
    for arcname, info in listed.items():
        if sha256_of(staging / arcname) != (info or {}).get("sha256"):
            raise BundleError(f"{name}: {arcname} is not the file make_bundle packed (its SHA-256 differs); ask for a fresh copy.")


def _check_models(staging: Path, manifest: dict, name: str) -> None:
    """Every model is of a kind this course knows and loads into the network its config describes."""
    for model_name, info in manifest["models"].items():
        kind = info.get("kind") if isinstance(info, dict) else None
        if kind not in KINDS:
            raise BundleError(f"{name} holds a model {model_name!r} of kind {kind!r}, which this course cannot use "
                              f"(it knows {' and '.join(KINDS)}): ask for a bundle made with this course.")
        path = staging / str(info.get("file", ""))
        if info.get("file") not in manifest["files"] or not path.is_file():
            raise BundleError(f"{name} lists a model {model_name!r} without its weights file: ask for a fresh copy.")
        try:
            loaded = load_face_model(path, "cpu").kind  # builds the network its config describes, loads strictly
        except Exception as exc:  # shape mismatch, missing keys, an unknown variant: all mean "not for this course"
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise BundleError(f"{name}: the model {model_name!r} does not fit this course's {KINDS[kind].split(' checkpoint')[0]} "
                              f"network ({first}); ask for a bundle made with this version of the course.") from None
        if loaded != kind:
            raise BundleError(f"{name}: the model {model_name!r} is a {KINDS[loaded]}, not the {kind} its manifest says.")


def workspace_has_model(ws) -> bool:
    """Whether any run folder in the workspace holds a model of either lesson."""
    runs = [d for d in ws.checkpoints.iterdir() if d.is_dir()] if ws.checkpoints.is_dir() else []
    return any(has_checkpoint(run, kind) for run in runs for kind in KINDS)


def _install(ws, staging: Path, manifest: dict) -> tuple[dict, list[str]]:
    """Move the checked faces and models into place (what is already there wins); all or nothing. Returns (record, kept)."""
    moves, kept = [], []
    record = {"faces": {}, "models": {}}
    for name in manifest["faces"]:
        dest = ws.faces / name
        if dest.is_dir() and any(dest.iterdir()):
            kept.append(f"faces/{name}")
            continue
        moves.append((staging / "faces" / name, dest))
        record["faces"][name] = f"faces/{name}"
    for name, info in manifest["models"].items():
        run = ws.checkpoints / name
        if list_checkpoints(run) or list_weights(run):
            kept.append(f"checkpoints/{name}")
            continue
        # a swap resumes from a weights-only ckpt (fresh optimiser); a U-GAT-IT milestone lacks the discriminators
        dest = checkpoint_path(run, info["step"]) if info["kind"] == "swap" else run / Path(info["file"]).name
        moves.append((staging / info["file"], dest))
        record["models"][name] = {k: info[k] for k in ("kind", "step", "about")} | {"path": dest.relative_to(ws.root).as_posix()}
    done = []
    try:
        for src, dest in moves:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_dir():
                dest.rmdir()  # an empty folder: nothing of the learner's is lost
            os.replace(src, dest)
            done.append((src, dest))
    except BaseException:
        for src, dest in reversed(done):
            os.replace(dest, src)  # back into staging, which the caller removes
        raise
    return record, kept


def _as_bundle(ws, record: dict) -> Bundle:
    return Bundle(record["name"], {n: ws.root / p for n, p in record["faces"].items()},
                  {n: BundleModel(m["kind"], m["step"], ws.root / m["path"], m["about"]) for n, m in record["models"].items()})


def _still_there(bundle: Bundle) -> bool:
    return all(p.exists() for p in bundle.faces.values()) and all(m.path.exists() for m in bundle.models.values())


def _needs_a_model(ws, bundle: Bundle, needs_model: bool) -> None:
    if needs_model and not bundle.models and not workspace_has_model(ws):
        raise BundleError(f"The bundle {bundle.name} holds faces but no trained model, and this workspace has none either: "
                          "this lesson needs one, so run lesson 03 or 04 first, or ask your instructor for a bundle with a model.")


def use_bundle(ws, url: str, sha256: str | None = None, needs_model: bool = False) -> Bundle:
    """Fetch a class bundle once into the workspace and install its faces and models; an empty `url` does nothing.

    `url`: any http(s) link, a Google Drive link, or hf://owner/repo/path (the
    Hugging Face Hub, where huggingface_hub is installed). `sha256` (what
    make_bundle printed) pins the file. A second call finds its record and
    does nothing. What the workspace already holds (a face folder, a run
    folder with checkpoints) is kept and said. `needs_model`: stop with one
    sentence when neither the bundle nor the workspace holds a model.
    """
    if not isinstance(url, str) or not url.strip():
        return Bundle()
    url, sha256 = url.strip(), (sha256 or "").strip().lower() or None
    if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise BundleError(f"BUNDLE_SHA256 must be the 64 hex digits make_bundle printed, not {sha256!r}.")
    home = ws.root / HOME
    key = _key(url, sha256)
    record_path = home / f"{key}.json"
    if record_path.is_file():
        bundle = _as_bundle(ws, json.loads(record_path.read_text()))
        if _still_there(bundle):
            print(f"The bundle {bundle.name} is already in this workspace.")
            _needs_a_model(ws, bundle, needs_model)
            return bundle
    archive = _download(url, home / "download" / key, sha256)
    staging = home / f".unpack-{key}"
    try:
        _remove_tree(staging)  # what a killed earlier call left
        if not zipfile.is_zipfile(archive):
            raise BundleError(f"{archive.name} is not a whole bundle (not a readable zip: cut off during the download, "
                              "or another file): run this cell again to download it again, or ask for the link to the .zip make_bundle wrote.")
        try:
            safe_extract(archive, staging)
        except DownloadError as exc:  # a member outside the folder, a link, a bomb, a damaged member
            raise BundleError(f"{archive.name} was refused and nothing of it was kept ({exc}): "
                              "ask your instructor for the bundle make_bundle wrote.") from None
        manifest = _read_manifest(staging, archive.name)
        _check_files(staging, manifest, archive.name)
        _check_models(staging, manifest, archive.name)
        bundle = Bundle(archive.name, models={n: BundleModel(i["kind"], i["step"], Path(), i["about"])
                                              for n, i in manifest["models"].items()})
        _needs_a_model(ws, bundle, needs_model)
        installed, kept = _install(ws, staging, manifest)
    finally:
        _remove_tree(staging)
        if home in archive.parents:
            remove(archive)  # installed, or refused: either way the archive is not needed (a cut-off .part stays to resume)
    record = {"name": archive.name, "url": url, "sha256": sha256, "course": manifest.get("course"), **installed}
    atomic_write(record_path, lambda f: f.write(json.dumps(record, indent=1).encode()))
    bundle = _as_bundle(ws, record)
    print(f"Bundle {archive.name} (made by course {str((manifest.get('course') or {}).get('commit'))[:7]}): "
          f"{summary(manifest['faces'], manifest['models'])}.")
    if kept:
        print(f"Kept what this workspace already had in {', '.join(kept)}; the bundle's copy of it was not installed.")
    return bundle


def start_from_bundle(trainer) -> bool:
    """Lesson 04 with TRAIN_ON_BUNDLE: a fresh U-GAT-IT run in a folder that holds only the bundle's milestone starts from it.

    The bundle carries the generators only (inference weights), so the
    discriminators and optimisers start fresh; the step, and with it the
    learning-rate schedule, continues from the bundle's. Returns whether it did.
    """
    folder = Path(trainer.folder)
    if trainer.step or list_checkpoints(folder) or not list_weights(folder) or not hasattr(trainer, "opt_d"):
        return False
    step, path = list_weights(folder)[-1]
    state = read_weights(path)
    if checkpoint_kind(state) != "ugatit":
        return False
    arch = {k: state["config"][k] for k in UGATIT_ARCH}
    asked = {k: getattr(trainer.cfg, k) for k in UGATIT_ARCH}
    if arch != asked:
        raise LessonStop(f"The bundle's model in {folder} is {describe_architecture(arch)} and this run is "
                         f"{describe_architecture(asked)}: set LIGHT and IMG_SIZE to match it (QUICK = True for a quick "
                         "model) to train on top of it, or another RUN_NAME to train your own.")
    from .models.ugatit import official_state

    nets = {**official_state(trainer.nets), **state["nets"]}  # fresh discriminators, the bundle's generators
    trainer.load_state({"nets": nets, "opt_g": trainer.opt_g.state_dict(), "opt_d": trainer.opt_d.state_dict(),
                        "step": step, "config": arch})
    more = "" if trainer.cfg.iterations > step else f" Raise ITERATIONS above {step} to train on top of it."
    print(f"Starting from the bundle's generators (step {step}); the discriminators and optimisers start fresh.{more}")
    return True
