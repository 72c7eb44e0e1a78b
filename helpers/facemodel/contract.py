"""Trained face models behind one contract, so lesson 05 (and anyone) can use either.

    model = load_face_model(ws.checkpoints / "swap", ws.device)   # or load_swapper / load_translator
    new_faces = model(faces)          # uint8 (N, H, W, 3) RGB aligned crops -> the same shape
    model.kind, model.size, model.name

Two kinds of model keep this contract:
- `Swapper`: lesson 03's autoencoder; paints the faces as identity A or B.
- `Translator`: lesson 04's U-GAT-IT generator; translates A->B or B->A.

Both take uint8 (N, H, W, 3) RGB crops (numpy or tensor) or a float tensor
(N, 3, H, W) in [-1, 1], of any size: they resize to the model's size and back
and return the same kind, size and device. Loading reads only what inference
needs, says what is wrong with a folder (empty, unreadable, or a checkpoint of
the other kind), and `fetch_shared_checkpoint` brings a checkpoint someone
shared (URL or Drive link) into a run folder for either kind.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import checkpoint_path, list_checkpoints, list_weights, save_checkpoint

KINDS = {"swap": "face-swap autoencoder checkpoint (lesson 03)", "ugatit": "U-GAT-IT checkpoint (lesson 04)"}
LOADERS = {"swap": "load_swapper", "ugatit": "load_translator"}
UGATIT_ARCH = ("img_size", "light", "ch", "n_res")
UGATIT_NETS = ("genA2B", "genB2A", "disGA", "disGB", "disLA", "disLB")
DIRECTIONS = ("A2B", "B2A")
IDENTITIES = ("A", "B")


class WrongCheckpointKind(ValueError):
    """A checkpoint of the other lesson's model was given to a loader."""


# ---------------------------------------------------------------- arguments, devices, precision

def as_device(device: torch.device | str | None) -> torch.device:
    """A torch.device from None (the best one here), a string or a device; a clear error when it cannot be used."""
    if device is None:
        from .env import pick_device

        return pick_device()
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', or a torch.device, not {type(device).__name__}")
    try:
        device = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"{device!r} is not a device: use 'cpu', 'cuda' or 'cuda:0' ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but this runtime has no GPU: pass 'cpu', or switch the runtime to a GPU.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"{device} does not exist: this machine has {torch.cuda.device_count()} GPU(s).")
    return device


def inference_dtype(device: torch.device) -> torch.dtype | None:
    """Autocast dtype for inference: helpers.train's one policy, the same for both models and for training
    (bf16 on Ampere and newer GPUs, fp16 on older ones such as the T4, float32 on a CPU)."""
    from .train import autocast_dtype

    return autocast_dtype(device, "auto")


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, not {batch_size!r}")
    return int(batch_size)


def resize_faces(x: torch.Tensor, size) -> torch.Tensor:
    """Float NCHW to `size`: antialiased bilinear when shrinking, bicubic when growing (callers clamp)."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    smaller = size[0] < x.shape[-2]
    return F.interpolate(x, size=size, mode="bilinear" if smaller else "bicubic", antialias=smaller, align_corners=False)


# ---------------------------------------------------------------- the contract

class FaceModel:
    """Aligned faces in, the same faces changed out: `model(faces)`.

    A subclass supplies `_forward(x)`: float (n, 3, size, size) in [-1, 1] on
    the model's device -> (the same shape, an optional (n, 1, h, w) heatmap).
    """

    kind = "face model"

    def __init__(self, net: nn.Module, size: int, device: torch.device | str | None, batch_size: int, step: int | None = None):
        self.device = as_device(device)
        self.net = net.to(self.device).eval()
        self.size = int(size)
        self.dtype = inference_dtype(self.device)
        self.batch_size = _check_batch_size(batch_size)
        self.step = step

    @property
    def label(self) -> str:
        return self.kind

    @property
    def name(self) -> str:
        """What the model does, for titles and file names: "swap to A (step 1200)", "U-GAT-IT A2B (step 1000)"."""
        return self.label + ("" if self.step is None else f" (step {self.step})")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, {self.size} px, {self.device})"

    def _forward(self, x: torch.Tensor, **kw):
        raise NotImplementedError

    @torch.no_grad()
    def _run(self, faces: torch.Tensor, batch_size: int, **kw) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 (N, H, W, 3) or float (N, 3, H, W) faces -> the same kind, size and device, plus (N, 1, H, W) heatmaps or None.

        Each batch travels to the model's device as it came (uint8 is a quarter
        of float32's bytes) and comes back as it went in.
        """
        from .train import autocast

        is_uint8 = faces.dtype == torch.uint8
        h, w = faces.shape[1:3] if is_uint8 else faces.shape[-2:]
        outs, heats = [], []
        for chunk in faces.split(batch_size):
            x = chunk.to(self.device)
            x = x.permute(0, 3, 1, 2).float() / 127.5 - 1 if is_uint8 else x.float()
            with autocast(self.device, self.dtype):
                out, heat = self._forward(resize_faces(x, self.size), **kw)
            out = resize_faces(out.float(), (h, w)).clamp(-1, 1)
            out = ((out + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous() if is_uint8 else out.to(faces.dtype)
            outs.append(out.to(faces.device))
            if heat is not None:
                heats.append(resize_faces(heat.float(), (h, w)).to(faces.device))
        if not outs:
            return faces.clone(), torch.zeros((0, 1, h, w), device=faces.device)
        return torch.cat(outs), (torch.cat(heats) if heats else None)

    def apply(self, faces, batch_size: int | None = None, return_cam: bool = False, **kw):
        """The contract: faces of any size and kind in, the same kind, size and device out."""
        batch_size = self.batch_size if batch_size is None else _check_batch_size(batch_size)
        if isinstance(faces, np.ndarray):
            if faces.dtype != np.uint8 or faces.ndim != 4 or faces.shape[-1] != 3:
                raise ValueError(f"faces must be uint8 (N, H, W, 3) RGB crops, got {faces.dtype} {faces.shape}")
            out, heat = self._run(torch.from_numpy(np.ascontiguousarray(faces)), batch_size, **kw)
            out, heat = out.numpy(), (None if heat is None else heat.numpy())
        elif isinstance(faces, torch.Tensor) and faces.dtype == torch.uint8:
            if faces.ndim != 4 or faces.shape[-1] != 3:
                raise ValueError(f"uint8 faces must be (N, H, W, 3) RGB, got shape {tuple(faces.shape)}")
            out, heat = self._run(faces, batch_size, **kw)
        elif isinstance(faces, torch.Tensor):
            if faces.ndim != 4 or faces.shape[1] != 3:
                raise ValueError(f"A float tensor of faces must be (N, 3, H, W) in [-1, 1], got shape {tuple(faces.shape)}")
            out, heat = self._run(faces.detach(), batch_size, **kw)
        else:
            raise TypeError(f"faces must be a uint8 (N, H, W, 3) array or a float (N, 3, H, W) tensor, not {type(faces).__name__}")
        if return_cam:
            if heat is None:
                raise ValueError(f"{type(self).__name__} has no attention heatmaps; return_cam is for the U-GAT-IT Translator.")
            return out, heat[:, 0] if isinstance(faces, np.ndarray) or faces.dtype == torch.uint8 else heat
        return out

    def __call__(self, faces):
        return self.apply(faces)


class Swapper(FaceModel):
    """Lesson 03's autoencoder: `swap(faces, to="B")` paints faces as B; `model(faces)` paints them as `self.to`."""

    kind = "swap"

    def __init__(self, model: nn.Module, device: torch.device | str | None = "cpu", batch_size: int = 64, step: int | None = None, to: str = "B"):
        super().__init__(model, model.spec.size, device, batch_size, step)
        self.to = _check_identity(to)

    @property
    def model(self) -> nn.Module:
        return self.net

    @property
    def label(self) -> str:
        return f"swap to {self.to}"

    def _forward(self, x: torch.Tensor, to: str = "B"):
        return self.net((x + 1) / 2, to).float() * 2 - 1, None

    def swap(self, faces, to: str | None = None):
        """Faces of one identity painted as identity `to` ("A" or "B"; default self.to)."""
        return self.apply(faces, to=self.to if to is None else _check_identity(to))

    def __call__(self, faces):
        return self.swap(faces)


class Translator(FaceModel):
    """Lesson 04's U-GAT-IT generator: `translate(faces)`; `return_cam=True` adds the attention heatmaps."""

    kind = "ugatit"

    def __init__(self, generator: nn.Module, size: int, direction: str = "A2B", device=None, amp: torch.dtype | None = None,
                 batch_size: int = 8, step: int | None = None):
        if device is None:
            device = next(generator.parameters()).device
        super().__init__(generator, size, device, batch_size, step)
        self.direction = _check_direction(direction)
        if amp is not None:
            self.dtype = amp

    @property
    def label(self) -> str:
        return f"U-GAT-IT {self.direction}"

    @property
    def generator(self) -> nn.Module:
        return self.net

    @property
    def amp(self) -> torch.dtype | None:
        return self.dtype

    def _forward(self, x: torch.Tensor):
        out, _, heat = self.net(x)
        return out, heat

    def translate(self, faces, batch_size: int | None = None, return_cam: bool = False):
        """Translated faces (and CAM heatmaps at the input size, (N, H, W), when `return_cam`)."""
        return self.apply(faces, batch_size, return_cam)

    def __call__(self, faces):
        return self.translate(faces)


def _check_identity(to) -> str:
    if to not in IDENTITIES:
        raise ValueError(f'to must be "A" or "B", not {to!r}')
    return to


def _check_direction(direction) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'A2B' or 'B2A', got {direction!r}")
    return direction


# ---------------------------------------------------------------- reading checkpoints

def read_weights(path: str | os.PathLike) -> dict:
    """A checkpoint's tensors, safely (weights_only), memory-mapped where the file allows it.

    mmap: a full-model checkpoint carries gigabytes of optimiser state that
    inference never reads. Files in PyTorch's pre-1.6 format (the official
    U-GAT-IT code is from 2019) cannot be mapped: they are read normally.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc) and "zipfile" not in str(exc):
            raise
    return torch.load(path, map_location="cpu", weights_only=True)


def checkpoint_kind(state) -> str | None:
    """'swap', 'ugatit' (one of our runs), 'ugatit-official' (six networks) or None for anything else."""
    if not isinstance(state, dict):
        return None
    config = state.get("config")
    if "model" in state and isinstance(config, dict) and "size" in config:
        return "swap"
    if "nets" in state and isinstance(config, dict) and "img_size" in config:
        return "ugatit"
    nets = state.get("nets", state)
    if isinstance(nets, dict) and all(n in nets for n in ("genA2B", "genB2A")):
        return "ugatit-official" if "nets" not in state else "ugatit"
    return None


def _wrong_kind(source: Path, found: str, wanted: str) -> WrongCheckpointKind:
    where = "folder" if source.is_dir() else "file"
    return WrongCheckpointKind(
        f"{source}: this {where} holds a {KINDS[found]}, not a {KINDS[wanted]}; use {LOADERS[found]}"
        f" (or load_face_model, which takes either)."
    )


def _candidates(source: Path) -> list[Path]:
    """Newest step first: the run folder's ckpt-*.pt and weights-*.pt milestones, else any .pt/.pth in it (official files, shared/)."""
    if source.is_file():
        return [source]
    saved = list_checkpoints(source) + list_weights(source)
    found = [p for _, p in sorted(saved, key=lambda sp: (sp[0], sp[1].name.startswith("ckpt-")), reverse=True)]
    if not found:
        loose = [p for p in source.rglob("*") if p.suffix.lower() in (".pt", ".pth") and p.is_file()]
        found = sorted(loose, key=lambda p: p.stat().st_mtime, reverse=True)
    return found


def read_checkpoint(source: str | os.PathLike, wanted: str, hint: str) -> tuple[Path, dict, str]:
    """(file, state, kind) of the newest readable checkpoint of kind `wanted` at `source` (a run folder or a file).

    Raises FileNotFoundError (with `hint`) when there is none, and
    WrongCheckpointKind when what is there belongs to the other lesson.
    """
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"No {KINDS[wanted]} at {source}: {hint}")
    paths = _candidates(source)
    if not paths:
        raise FileNotFoundError(f"No {KINDS[wanted]} in {source}: {hint}")
    errors, other = [], None
    for path in paths:
        try:
            state = read_weights(path)
        except Exception as exc:  # truncated, not a torch file, or not weights_only-safe
            errors.append(f"{path.name}: {type(exc).__name__}")
            continue
        kind = checkpoint_kind(state)
        if kind is None:
            errors.append(f"{path.name}: not a model checkpoint")
            continue
        if kind.split("-")[0] == wanted:
            if errors:
                warnings.warn(f"Skipped unreadable checkpoints in {source} ({'; '.join(errors)}); using {path.name}.", stacklevel=3)
            return path, state, kind
        other = other or kind.split("-")[0]
    if other is not None:
        raise _wrong_kind(source, other, wanted)
    raise FileNotFoundError(f"No readable checkpoint in {source} ({'; '.join(errors)}): {hint}")


# ---------------------------------------------------------------- loaders

SWAP_HINT = "train one with notebook 03 (train_swap), or download a shared one with fetch_shared_checkpoint."
UGATIT_HINT = "train in notebook 04 or fetch a shared one (SHARED_CHECKPOINT_URL)."


def load_swapper(folder: str | os.PathLike, device: torch.device | str | None = None, to: str = "B", batch_size: int = 64) -> Swapper:
    """The newest checkpoint in `folder` (or a checkpoint file) as a Swapper on `device`."""
    from .models.autoencoder import FaceSwapAutoencoder, spec_for

    device, to, batch_size = as_device(device), _check_identity(to), _check_batch_size(batch_size)
    _, state, _ = read_checkpoint(folder, "swap", SWAP_HINT)
    cfg = state["config"]
    model = FaceSwapAutoencoder(spec_for(cfg.get("model", "classic"), cfg["size"]))
    model.load_state_dict(state["model"])
    step = state.get("step")
    return Swapper(model, device, batch_size, step=None if step is None else int(step), to=to)


def ugatit_architecture(state: dict, img_size: int | None = None) -> dict:
    """img_size, light, ch, n_res of a U-GAT-IT checkpoint: from its config, else from its tensor shapes."""
    from .models.ugatit import infer_official_config

    if isinstance(state.get("config"), dict) and all(k in state["config"] for k in UGATIT_ARCH):
        return {k: state["config"][k] for k in UGATIT_ARCH}
    if img_size is not None:
        _check_img_size(img_size)
    return infer_official_config(state.get("nets", state), img_size or 256)


def _check_img_size(img_size) -> int:
    if isinstance(img_size, bool) or not isinstance(img_size, (int, np.integer)) or img_size < 32 or img_size % 4:
        raise ValueError(f"img_size must be a whole number of pixels >= 32 and divisible by 4 (e.g. 256), not {img_size!r}")
    return int(img_size)


def describe_architecture(arch: dict) -> str:
    """'a light U-GAT-IT at 256 px (ch 64, 4 blocks)': for messages."""
    return f"a {'light' if arch['light'] else 'full'} U-GAT-IT at {arch['img_size']} px (ch {arch['ch']}, {arch['n_res']} blocks)"


def pretrained_networks(path: str | os.PathLike, img_size: int = 256) -> tuple[dict, dict]:
    """(the six networks' state dicts, their architecture) from one U-GAT-IT file, ours or official, any torch format.

    `img_size` is the size assumed for light official files, which do not record it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No U-GAT-IT checkpoint file at {path}: fetch one with fetch_shared_checkpoint, or pass the path of a .pt file.")
    state = read_weights(path)
    kind = checkpoint_kind(state)
    if kind == "swap":
        raise _wrong_kind(path, "swap", "ugatit")
    nets = state.get("nets", state) if isinstance(state, dict) else None
    if kind is None or not all(n in nets for n in UGATIT_NETS):
        raise ValueError(f"{path.name} is not a full U-GAT-IT checkpoint: it lacks the six networks {list(UGATIT_NETS)} (a weights-*.pt milestone holds only the generators: use load_translator).")
    return nets, ugatit_architecture(state, img_size)


def load_translator(source: str | os.PathLike, device=None, direction: str = "A2B", img_size: int | None = None,
                    batch_size: int = 8) -> Translator:
    """A Translator from a run folder (newest readable checkpoint), one of our checkpoint files,
    or an official `*_params_*.pt` file (light files do not record their size: pass `img_size`, default 256)."""
    from .models.ugatit import build_networks

    direction, batch_size = _check_direction(direction), _check_batch_size(batch_size)
    if img_size is not None:
        _check_img_size(img_size)
    device = as_device(device)
    _, state, _ = read_checkpoint(source, "ugatit", UGATIT_HINT)
    arch = ugatit_architecture(state, img_size)
    gen = build_networks(arch["img_size"], arch["light"], arch["ch"], arch["n_res"])["gen" + direction]
    gen.load_state_dict(state.get("nets", state)["gen" + direction])
    step = state.get("step")
    return Translator(gen, arch["img_size"], direction, device, batch_size=batch_size, step=None if step is None else int(step))


def load_face_model(source: str | os.PathLike, device=None, to: str = "B", direction: str = "A2B", batch_size: int | None = None) -> FaceModel:
    """Whichever face model `source` holds: a Swapper (painting as `to`) or a Translator (`direction`)."""
    source = Path(source)
    try:
        return load_swapper(source, device, to, batch_size or 64)
    except WrongCheckpointKind:
        return load_translator(source, device, direction, batch_size=batch_size or 8)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc} A U-GAT-IT run of notebook 04 would do too.") from None


def checkpoint_config(folder: str | os.PathLike):
    """The SwapConfig saved with the newest swap checkpoint in `folder`, or None when there is none."""
    from .checkpoint import load_latest
    from .swap import _config_from_dict

    state = load_latest(folder, "cpu")
    return None if state is None else _config_from_dict(state.get("config", {}))


# ---------------------------------------------------------------- a checkpoint someone shared

def fetch_checkpoint(url: str, folder: str | os.PathLike, kind: str, sha256: str | None = None) -> Path:
    """Download a shared checkpoint of `kind` ('swap' or 'ugatit') into the run folder `folder`.

    The URL may be a Google Drive file or folder link or any URL, to a .pt or
    an archive holding one (helpers.download checks the SHA-256 and unpacks
    safely). One of our full checkpoints is written into the run folder as
    ckpt-<step>.pt, so training continues from it and the loaders find it; an
    official U-GAT-IT `*_params_*.pt` (networks only) stays in folder/shared,
    where `load_translator(folder)` and `Trainer.load_pretrained` read it.
    Returns that file. A checkpoint of the other kind is refused by name.
    """
    from .download import DownloadError, fetch_weight_files

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, not {kind!r}")
    if not isinstance(url, str) or not url.strip():
        raise ValueError("url must be a Google Drive link or an http(s) URL to a checkpoint (a .pt, or a zip/tar holding one).")
    folder = Path(folder)
    candidates = fetch_weight_files(url, folder / "shared", sha256=sha256)
    other = None
    for path in candidates:
        try:
            state = read_weights(path)
        except Exception as exc:  # not a torch file, or not weights_only-safe
            warnings.warn(f"Skipping {path.name}: not a loadable checkpoint ({type(exc).__name__}).", stacklevel=2)
            continue
        found = checkpoint_kind(state)
        if found is None:
            continue
        if found.split("-")[0] != kind:
            other = found.split("-")[0]
            continue
        if found == "ugatit-official":
            return path
        step = int(state.get("step", 0))
        if kind == "ugatit":
            target = checkpoint_path(folder, step)
            shutil.copyfile(path, target)
            return target
        return save_checkpoint(folder, step, {k: v for k, v in state.items() if k != "step"})
    if other is not None:
        raise WrongCheckpointKind(f"What {url} gave holds a {KINDS[other]}, not a {KINDS[kind]}; use it with {LOADERS[other]}.")
    names = [p.name for p in candidates]
    raise DownloadError(f"No {KINDS[kind]} in what {url} gave ({len(candidates)} weight files: {names}).")


def fetch_shared_swap(url: str, folder: str | os.PathLike, sha256: str | None = None) -> Path:
    """Lesson 03's shared start: does nothing when `folder` already has checkpoints (your own run wins) and returns the newest."""
    if list_checkpoints(folder):
        print(f"{folder} already has checkpoints; not downloading the shared one.")
        return list_checkpoints(folder)[-1][1]
    return fetch_checkpoint(url, folder, "swap", sha256)


def fetch_shared_ugatit(url: str, run_dir: str | os.PathLike, sha256: str | None = None) -> Path | None:
    """Lesson 04's shared start: None when the run folder already has checkpoints (your own run wins)."""
    if list_checkpoints(run_dir):
        print(f"{run_dir} already has checkpoints; not downloading the shared one.")
        return None
    return fetch_checkpoint(url, run_dir, "ugatit", sha256)


# ---------------------------------------------------------------- lesson 05's choice

TOY_SAMPLES = (("woman", "woman.mp4", 8), ("man", "man.mp4", 1))  # (identity folder, sample video, every nth frame)


def model_for_render(ws, mode: str = "swap", swap_run: str = "swap", ugatit_run: str = "ugatit", to: str = "A",
                     direction: str = "A2B", quick: bool = False, detector="mtcnn") -> FaceModel:
    """Lesson 05's face model: the kind `mode` asks for, else the other lesson's, else (quick) a toy swap trained now.

    Without any trained model and outside quick mode it stops with one
    sentence that names the notebook to run first.
    """
    from .env import LessonStop

    if mode not in KINDS:
        raise ValueError(f"mode must be 'swap' or 'ugatit', not {mode!r}")
    device = as_device(ws.device)
    runs = {"swap": ws.checkpoints / swap_run, "ugatit": ws.checkpoints / ugatit_run}
    lesson = {"swap": "lesson 03", "ugatit": "lesson 04"}
    for kind in [mode] + [k for k in KINDS if k != mode]:
        try:
            model = load_face_model(runs[kind], device, to=to, direction=direction)
        except FileNotFoundError:
            continue
        if kind != mode:
            print(f"No {KINDS[mode].split(' (')[0]} in {runs[mode]}: using {lesson[kind]}'s {model.name} instead.")
        return model
    if not quick:
        raise LessonStop(
            f"No trained model in this workspace ({runs['swap']} and {runs['ugatit']} are empty): run notebook 03 (face swap) "
            "or notebook 04 (U-GAT-IT) first, set SHARED_CHECKPOINT_URL there, or set QUICK = True for a toy model.")
    print(f"No swap checkpoint in {runs['swap']}: lesson 03 has not run in this workspace. "
          "Training a toy model with SwapConfig.quick() so this lesson can run; run lesson 03 for a real one.")
    return train_toy_swapper(ws, runs["swap"], to, detector)


def train_toy_swapper(ws, folder: Path, to: str = "A", detector="mtcnn") -> Swapper:
    """A few quick steps of lesson 03 on the sample identities: blurry, but every step of lesson 05 runs."""
    from .data import require_faces
    from .faces import crop_video
    from .samples import fetch_samples
    from .swap import SwapConfig, train_swap

    samples = fetch_samples(ws.samples)
    for name, video, every in TOY_SAMPLES:
        if not (ws.faces / name / "faces.csv").exists():
            print(crop_video(samples[video], ws.faces / name, every=every, detector=detector))
        require_faces(ws.faces / name, lesson="02")
    train_swap(SwapConfig.quick(), ws.faces / "woman", ws.faces / "man", folder, ws.device)
    return load_swapper(folder, ws.device, to=to)


# ---------------------------------------------------------------- lesson 04 without training faces

def has_checkpoint(folder: str | os.PathLike, kind: str) -> bool:
    """Whether `folder` holds a readable checkpoint of `kind` ('swap' or 'ugatit'), without building a model."""
    try:
        read_checkpoint(folder, kind, "")
    except (FileNotFoundError, WrongCheckpointKind):
        return False
    return True


def translate_only(run_dir: str | os.PathLike, faces_root: str | os.PathLike, domains) -> str | None:
    """Why lesson 04 should skip training and go straight to translating, or None to train.

    That is when the run folder holds a U-GAT-IT (trained here or shared) and
    a domain has no faces to train on: the sample domains can always be cropped.
    """
    from .data import list_faces
    from .ugatit import SAMPLE_VIDEOS

    def has_faces(name: str) -> bool:
        folder = Path(faces_root) / name
        return name in SAMPLE_VIDEOS or (folder.is_dir() and bool(list_faces(folder)))

    missing = [d for d in domains if not has_faces(d)]
    if not missing or not has_checkpoint(run_dir, "ugatit"):
        return None
    return (f"A trained U-GAT-IT is ready in {run_dir} and there are no faces of {', '.join(missing)} to train on, "
            "so the training sections are skipped and the lesson goes straight to translating (section 6).")


def portrait_crops(samples_dir: str | os.PathLike, size: int = 256, detector="mtcnn") -> np.ndarray:
    """Aligned faces of the sample portraits (uint8 (N, size, size, 3)): faces to try a model on when no face folder exists."""
    import cv2

    from .faces import align_face, make_detector
    from .samples import fetch_samples

    detector = make_detector(detector) if isinstance(detector, str) else detector
    crops = []
    for path in fetch_samples(samples_dir, ["grace_hopper.jpg", "astronaut.png"]).values():
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        crops += [align_face(rgb, face, size=size).image for face in detector.detect(rgb)]
    return np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
