"""Train U-GAT-IT the official way, faster, without ever losing progress; then translate faces.

    cfg = UGATITConfig.quick()                     # or UGATITConfig(light=True, iterations=300_000)
    trainer = Trainer(cfg, ws.faces, ws.checkpoints / "ugatit", ws.device)
    trainer.train()                                # resumes from the newest checkpoint; Ctrl-C saves
    translator = load_translator(ws.checkpoints / "ugatit", ws.device)
    drag = translator.translate(selfie_crops)      # uint8 (N, H, W, 3) -> same

The recipe is the official one (losses, weights, optimiser, learning-rate
decay, augmentation). What differs is only how the work is done:

- the generators run once per step (the official step runs them twice and
  back-propagates the discriminator loss into them, then throws that away):
  fakes are detached for the discriminator step and reused for the generator step;
- calls that share a network and do not depend on each other are batched
  (every norm here is per image, so this changes no number);
- bf16 autocast on GPUs that have it (fp16 + grad scaler on older ones), with
  the norm statistics and spectral norms in float32; channels-last and fused
  Adam on CUDA; optional torch.compile; discriminator weights frozen while
  the generators learn;
- losses stay on the device and are read every `log_every` steps, so the
  step never waits for the host.

The loop around the step (resume, saves, Ctrl-C, logs, sample grids, the live
view, torchrun) is `helpers.train.fit`, the same one lesson 03 uses.

`reference_mode=True` does the official per-step work instead (float32, eager,
fakes not detached, generators run twice, a host read of the loss every step)
so the benchmark can compare like with like.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import restore_rng
from .data import load_faces
from .train import (
    Hook,
    RunResult,
    autocast,
    autocast_dtype,
    average_gradients,
    enable_tf32,
    fit,
    init_distributed,
    make_adam,
    make_scaler,
    make_timelapse,  # noqa: F401  (the lesson's timelapse: make_timelapse(run_dir / "timelapse"))
    pictures_in,
    rank_slice,
    split_holdout,
    world_size,
    write_picture,
)
from .models.ugatit import (
    NET_NAMES,
    RhoClipper,
    build_networks,
    load_official_state,
    official_state,
    rho_parameters,
)

LOSS_NAMES = ("d_loss", "g_loss", "g_adv", "g_cycle", "g_identity", "g_cam")
ARCH_FIELDS = ("img_size", "light", "ch", "n_res")
SAMPLE_VIDEOS = {"woman": "woman.mp4", "man": "man.mp4", "cartoon": "megamind.avi"}


# ---------------------------------------------------------------- configuration

@dataclass
class UGATITConfig:
    """Everything a run needs; defaults are the official code's (its main.py and UGATIT.py)."""

    # data: face folders under ws.faces; several folders make one domain
    domain_a: tuple = ("selfie",)
    domain_b: tuple = ("drag",)
    img_size: int = 256
    load_size: int | None = None  # resize before the random crop; None = img_size * 286 / 256 (official: 286 for 256)
    flip: bool = True
    holdout: float = 0.1  # fraction of each domain never trained on (sample grids, timelapse, KID); as in helpers.swap
    # networks
    light: bool = False
    ch: int = 64
    n_res: int = 4
    # optimisation
    iterations: int = 1_000_000
    batch_size: int = 1
    lr: float = 1e-4
    betas: tuple = (0.5, 0.999)
    weight_decay: float = 1e-4
    decay_flag: bool = True  # linear decay to 0 over the second half of `iterations`
    adv_weight: float = 1.0
    cycle_weight: float = 10.0
    identity_weight: float = 10.0
    cam_weight: float = 1000.0
    # speed
    amp: str = "auto"  # "auto": bf16 on GPUs with native bf16, fp16 + grad scaler on older GPUs, off on CPU; or "bf16", "fp16", "off"
    channels_last: bool = True  # on CUDA only: on a CPU channels-last convolutions measured slower
    compile: bool = False
    reference_mode: bool = False  # the official per-step work, for honest speed comparisons
    # watching and saving
    log_every: int = 100
    log_minutes: float | None = None  # also a log row this often (None: by steps only)
    preview_every: int = 1000  # sample grid + timelapse frame; official print_freq
    preview_minutes: float | None = None
    kid_every: int = 10_000
    kid_subsets: int = 100
    save_every: int = 1000
    save_minutes: float = 10.0  # and at least this often: a Colab session can end at any moment
    keep_last: int = 2  # full-state checkpoints for resume; README "Checkpoints on Google Drive" sizes a run with 2
    milestone_every: int | None = 100_000  # official save_freq: kept for good (None: no milestones)
    seed: int = 0

    @classmethod
    def quick(cls, **overrides) -> "UGATITConfig":
        """A CPU smoke run: real faces (woman + man) -> cartoon at 64 px, light model, a few steps."""
        base = dict(
            domain_a=("woman", "man"), domain_b=("cartoon",), img_size=64, light=True, ch=16,
            iterations=16, holdout=0.2, log_every=2, preview_every=8, kid_every=8, kid_subsets=20,
            save_every=8, save_minutes=5.0, keep_last=2, milestone_every=None,
        )
        base.update(overrides)
        return cls(**base)

    def __post_init__(self):
        self.domain_a, self.domain_b, self.betas = tuple(self.domain_a), tuple(self.domain_b), tuple(self.betas)
        if self.img_size % 4 or self.img_size < 32:
            raise ValueError(f"img_size must be a multiple of 4 and at least 32, got {self.img_size}")
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', got {self.amp!r}")
        if self.iterations < 1 or self.batch_size < 1:
            raise ValueError("iterations and batch_size must be at least 1")
        if not 0 <= self.holdout < 1:
            raise ValueError(f"holdout is the fraction of faces kept out of training, in [0, 1); got {self.holdout}")

    @property
    def crop_from(self) -> int:
        """Side the faces are resized to before the random crop (286 for 256 px, scaled for other sizes)."""
        return self.load_size or int(round(self.img_size * 286 / 256))


def official_lr(step: int, cfg: UGATITConfig) -> float:
    """Learning rate of step `step` (1-based): constant, then linear to 0 over the second half.

    The official loop subtracts lr/(iterations//2) before every step past the
    half-way point; this is the same number computed from the step, so a
    resumed run cannot drift from it. (With an odd number of iterations the
    official rate ends one decrement below zero; we stop at zero.)
    """
    half = cfg.iterations // 2
    if not cfg.decay_flag or step <= half or half == 0:
        return cfg.lr
    return max(0.0, cfg.lr - cfg.lr / half * (step - half))


# ---------------------------------------------------------------- data

def ensure_faces(faces_root: str | os.PathLike, names: Sequence[str], samples_dir: str | os.PathLike | None = None, frames: int = 24) -> dict:
    """Make the face folders a QUICK run needs from the sample videos when notebook 02 has not run.

    Only the sample domains ("woman", "man", "cartoon") can be made here;
    "selfie" and "drag" come from notebooks 01 and 02. Returns {name: report or "present"}.
    """
    from .data import list_faces

    faces_root = Path(faces_root)
    done = {}
    for name in names:
        folder = faces_root / name
        try:
            if list_faces(folder):
                done[name] = "present"
                continue
        except FileNotFoundError:
            pass
        if name not in SAMPLE_VIDEOS:
            raise FileNotFoundError(f"No faces in {folder}: run notebooks 01 and 02 for '{name}' first (or use QUICK = True).")
        try:
            from .faces import crop_video
        except ImportError as exc:
            raise ImportError(f"helpers.faces is needed to crop '{name}' from the samples: {exc}. Run notebook 02 first.") from None
        from .samples import fetch_samples
        from .video import probe

        samples_dir = Path(samples_dir) if samples_dir else faces_root.parent / "samples"
        video = fetch_samples(samples_dir)[SAMPLE_VIDEOS[name]]
        every = max(1, probe(video).frame_count // frames)
        done[name] = crop_video(video, folder, size=256, every=every, progress=False)
    return done


def _load_domain(faces_root: Path, names: Sequence[str], crop_from: int, img_size: int, holdout: float, seed: int):
    """Training faces (uint8 N,3,L,L tensor at the pre-crop size) and held-out faces (uint8 N,S,S,3 at img_size)."""
    faces = np.concatenate([load_faces(faces_root / n, crop_from) for n in names])
    if len(faces) < 2:
        raise ValueError(f"Too few faces in {list(names)} ({len(faces)}): crop more in notebook 02.")
    keep, hold_idx = (t.numpy() for t in split_holdout(len(faces), holdout, seed))
    held = np.stack([cv2.resize(f, (img_size, img_size), interpolation=cv2.INTER_AREA) for f in faces[hold_idx]]) if len(hold_idx) else np.zeros((0, img_size, img_size, 3), np.uint8)
    train = torch.from_numpy(faces[keep]).permute(0, 3, 1, 2).contiguous()
    return train, held


def _mix(*values: int) -> int:
    """A seed for a torch.Generator from a few integers (stable across runs and machines)."""
    h = 0x243F6A8885A308D3
    for v in values:
        h = (h ^ (int(v) & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3 & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


class FaceStream:
    """Batches of one domain: shuffled epochs, random flip, random crop - the official augmentation.

    The batch of step s is a pure function of (seed, stream, s): a resumed run
    draws exactly the batches an uninterrupted one would, with no loader state
    to save. Images stay uint8 (on the device when they fit) until the crop.
    """

    def __init__(self, images: torch.Tensor, img_size: int, batch_size: int, seed: int, stream: int, flip: bool = True, device: torch.device | str = "cpu"):
        self.n, self.size, self.batch_size, self.seed, self.stream, self.flip = len(images), img_size, batch_size, seed, stream, flip
        device = torch.device(device)
        fits = device.type != "cpu" and images.numel() < 2**30
        self.images = images.to(device) if fits else images
        self.device = device
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            g = torch.Generator().manual_seed(_mix(self.seed, self.stream, epoch))
            self._perms[epoch] = torch.randperm(self.n, generator=g)
        return self._perms[epoch]

    def indices(self, step: int) -> list[int]:
        pos = [(step - 1) * self.batch_size + i for i in range(self.batch_size)]
        return [int(self._perm(p // self.n)[p % self.n]) for p in pos]

    def batch(self, step: int, channels_last: bool = False) -> torch.Tensor:
        """Float batch in [-1, 1], (B, 3, img_size, img_size), on the device."""
        g = torch.Generator().manual_seed(_mix(self.seed, self.stream, step, 1))
        side = self.images.shape[-1]
        flips = (torch.rand(self.batch_size, generator=g) < 0.5).tolist()
        offsets = torch.randint(0, side - self.size + 1, (self.batch_size, 2), generator=g).tolist()
        crops = []
        for i, flip, (y, x) in zip(self.indices(step), flips, offsets):
            img = self.images[i]
            if self.flip and flip:
                img = img.flip(-1)
            crops.append(img[:, y:y + self.size, x:x + self.size])
        out = torch.stack(crops).to(self.device, non_blocking=True).float().div_(127.5).sub_(1)
        return out.contiguous(memory_format=torch.channels_last) if channels_last else out


def to_tensor(images: np.ndarray, device) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1] on `device`."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1)


def to_uint8_images(t: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3)."""
    return ((t.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


# ---------------------------------------------------------------- losses

def _mse(x, target: float):
    return F.mse_loss(x.float(), torch.full_like(x, target, dtype=torch.float32))


def _bce(x, target: float):
    return F.binary_cross_entropy_with_logits(x.float(), torch.full_like(x, target, dtype=torch.float32))


def _l1(x, y):
    return F.l1_loss(x.float(), y.float())


# ---------------------------------------------------------------- the trainer

class Trainer:
    """Six networks, two optimisers, the data and the run folder; `train()` continues where it stopped.

    Run folder: ckpt-*.pt (full state), log.csv (losses), kid.csv, samples/*.png
    (grids with CAM heatmaps), timelapse/*.png (fixed selfies over time). The
    loop itself is `helpers.train.fit`; this class holds what is U-GAT-IT's own.
    Constructing it reads the newest checkpoint (so `trainer.step` is known) but
    touches no file: logs and pictures follow the checkpoint when `train()` starts.
    """

    picture_dirs = ("samples", "timelapse")
    timelapse_dir = "timelapse"

    def __init__(self, cfg: UGATITConfig, faces_root: str | os.PathLike, run_dir: str | os.PathLike, device: torch.device | str | None = None, resume: bool = True, quiet: bool = False):
        self.cfg = cfg
        self.device = init_distributed(device)
        self.run_dir = Path(run_dir)
        self.quiet = quiet
        self.amp_dtype = None if cfg.reference_mode else autocast_dtype(self.device, cfg.amp)
        self.channels_last = cfg.channels_last and not cfg.reference_mode and self.device.type == "cuda"
        if not cfg.reference_mode:
            enable_tf32(self.device)

        # data
        faces_root = Path(faces_root)
        train_a, self.held_a = _load_domain(faces_root, cfg.domain_a, cfg.crop_from, cfg.img_size, cfg.holdout, cfg.seed)
        train_b, self.held_b = _load_domain(faces_root, cfg.domain_b, cfg.crop_from, cfg.img_size, cfg.holdout, cfg.seed + 1)
        self.stream_a = FaceStream(train_a, cfg.img_size, cfg.batch_size, cfg.seed, 0, cfg.flip, self.device)
        self.stream_b = FaceStream(train_b, cfg.img_size, cfg.batch_size, cfg.seed, 1, cfg.flip, self.device)

        self._build_networks()

        # progress
        self.step = 0
        self.lr = cfg.lr
        self._sums = torch.zeros(len(LOSS_NAMES), device=self.device)
        self._count = 0
        self.kid_name = None
        self._kid_features = None
        self.hooks = [Hook("kid", self.kid, every=cfg.kid_every)] if cfg.kid_every else []
        self.loaded = False
        if resume:
            self.resume()

    # ------------------------------------------------------------ state

    @property
    def folder(self) -> Path:
        return self.run_dir

    @property
    def total_steps(self) -> int:
        return self.cfg.iterations

    def say(self, *args):
        if not self.quiet:
            print(*args, flush=True)

    def state(self) -> dict:
        """Everything needed to continue exactly (RNG is added by the checkpointer)."""
        return {
            "nets": official_state(self.nets),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler": self.scaler.state_dict(),
            "lr": float(self.lr),
            "config": asdict(self.cfg),
            "data": {"seed": self.cfg.seed, "n_a": self.stream_a.n, "n_b": self.stream_b.n, "world_size": world_size()},
            "log": {"sums": self._sums.detach().cpu().clone(), "count": self._count},
        }

    def inference_state(self) -> dict:
        """What a milestone keeps: the two generators and the config (helpers.checkpoint stores them in half precision)."""
        return {"nets": {n: self.nets[n].state_dict() for n in ("genA2B", "genB2A")}, "config": asdict(self.cfg)}

    def resume(self) -> bool:
        """Load the newest readable checkpoint of the run folder, if any; return whether one was found. Touches no file."""
        from .train import resume

        self.loaded = False
        return resume(self)

    def load_state(self, state: dict) -> None:
        saved = state.get("config", {})
        clash = {k: (saved.get(k), getattr(self.cfg, k)) for k in ARCH_FIELDS if k in saved and saved[k] != getattr(self.cfg, k)}
        if clash:
            raise ValueError(
                f"{self.run_dir} holds a run with different networks {clash} (saved, asked). "
                "Use another run folder, or move this one away to start over."
            )
        if saved.get("iterations") not in (None, self.cfg.iterations):
            warnings.warn(f"iterations changed from {saved['iterations']} to {self.cfg.iterations}: the learning-rate decay follows the new length.", stacklevel=2)
        load_official_state(self.nets, state["nets"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.lr = official_lr(self.step, self.cfg) if self.step else self.cfg.lr
        log = state.get("log") or {}
        if "sums" in log:
            self._sums = log["sums"].to(self.device).clone()
            self._count = int(log["count"])
        if "rng" in state:
            restore_rng(state["rng"])
        data = state.get("data", {})
        if data.get("n_a") not in (None, self.stream_a.n) or data.get("n_b") not in (None, self.stream_b.n):
            self.say(f"Note: the face folders changed since the checkpoint ({data.get('n_a')}/{data.get('n_b')} -> {self.stream_a.n}/{self.stream_b.n}); the data order differs from here on.")
        if data.get("world_size", 1) != world_size():
            self.say(f"Note: saved with {data.get('world_size', 1)} process(es), continuing with {world_size()}: "
                     "the same batches in the same order, split differently, so sums may differ in the last bits.")
        self.say(f"Resumed from step {self.step} ({self.run_dir}).")

    def load_pretrained(self, path: str | os.PathLike) -> None:
        """Start from shared weights: an official `*_params_*.pt` file or one of our checkpoints (networks only).

        Light or full, width and depth come from the file (as in `load_translator`):
        a fresh run whose config differs is rebuilt to match, with one line saying so.
        The image size of a full model is in the file too; a different one is refused
        with the size to set (the faces are already loaded at the configured size).
        """
        from dataclasses import replace

        from .facemodel import describe_architecture as _describe, pretrained_networks

        name = Path(path).name
        nets, arch = pretrained_networks(path, self.cfg.img_size)
        asked = {k: getattr(self.cfg, k) for k in ARCH_FIELDS}
        if arch != asked:
            if arch["img_size"] != asked["img_size"] or self.step:
                raise ValueError(
                    f"{name} holds {_describe(arch)}, but this run is {_describe(asked)}"
                    + (f" at step {self.step}" if self.step else "")
                    + f": start a fresh run folder with img_size={arch['img_size']} (notebook 04: IMG_SIZE = {arch['img_size']})."
                )
            self.say(f"{name} holds {_describe(arch)}, not the configured {_describe(asked)}: building that one instead.")
            self.cfg = replace(self.cfg, **arch)
            self._build_networks()
        load_official_state(self.nets, nets)
        self.say(f"Loaded the six networks from {name}; optimisers start fresh.")

    def _build_networks(self) -> None:
        """The six networks, their optimisers and rho list for self.cfg (what __init__ builds; load_pretrained rebuilds)."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        self.nets = build_networks(cfg.img_size, cfg.light, cfg.ch, cfg.n_res).to(self.device)
        if self.channels_last:
            self.nets.to(memory_format=torch.channels_last)
        self.run = {n: self.nets[n] for n in NET_NAMES}
        if cfg.compile and not cfg.reference_mode:
            self.run = {n: torch.compile(self.nets[n], dynamic=False) for n in NET_NAMES}
        fused = not cfg.reference_mode
        self.gen_params = [p for n in ("genA2B", "genB2A") for p in self.nets[n].parameters()]
        self.dis_params = [p for n in ("disGA", "disGB", "disLA", "disLB") for p in self.nets[n].parameters()]
        self.opt_g = make_adam(self.gen_params, self.device, cfg.lr, cfg.betas, cfg.weight_decay, fused)
        self.opt_d = make_adam(self.dis_params, self.device, cfg.lr, cfg.betas, cfg.weight_decay, fused)
        self.scaler = make_scaler(self.device, self.amp_dtype)
        self.rhos = rho_parameters(self.nets["genA2B"]) + rho_parameters(self.nets["genB2A"])

    def export_official(self, path: str | os.PathLike) -> Path:
        """The six networks in the official layout (what the official test script loads)."""
        from .checkpoint import atomic_save

        return atomic_save(official_state(self.nets), path)

    # ------------------------------------------------------------ the step

    def _autocast(self):
        return autocast(self.device, self.amp_dtype)

    def _set_lr(self, step: int) -> None:
        self.lr = official_lr(step, self.cfg)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = self.lr

    def _clip_rho(self) -> None:
        with torch.no_grad():
            for rho in self.rhos:
                rho.clamp_(0.0, 1.0)

    def _dis_loss_pair(self, dis, real, fake):
        """LSGAN loss of one discriminator on real and (detached) fake images, in one batched call."""
        logit, cam, _ = dis(torch.cat([real, fake]))
        n = real.shape[0]
        return _mse(logit[:n], 1.0) + _mse(logit[n:], 0.0) + _mse(cam[:n], 1.0) + _mse(cam[n:], 0.0)

    def _gen_adv(self, dis, fake):
        logit, cam, _ = dis(fake)
        return _mse(logit, 1.0) + _mse(cam, 1.0)

    def train_step(self) -> None:
        """Step `self.step + 1`: its batches (a function of seed and step; under torchrun this rank's share), one update."""
        step = self.step + 1
        real_a = self.stream_a.batch(step, self.channels_last)
        real_b = self.stream_b.batch(step, self.channels_last)
        if world_size() > 1:
            part = rank_slice(self.cfg.batch_size)
            real_a, real_b = real_a[part], real_b[part]
        self._set_lr(step)
        self._sums += self.update(real_a, real_b)
        self._count += 1
        self.step = step

    def update(self, real_a: torch.Tensor, real_b: torch.Tensor) -> torch.Tensor:
        """One discriminator and one generator update; returns the losses (on the device, detached)."""
        if self.cfg.reference_mode:
            return self._reference_step(real_a, real_b)
        cfg, r = self.cfg, self.run
        n = real_a.shape[0]
        with self._autocast():
            # every generator call that does not depend on the discriminator update, batched per generator
            out_ab, cam_ab, _ = r["genA2B"](torch.cat([real_a, real_b]))
            out_ba, cam_ba, _ = r["genB2A"](torch.cat([real_b, real_a]))
            fake_a2b, fake_b2b = out_ab[:n], out_ab[n:]
            fake_b2a, fake_a2a = out_ba[:n], out_ba[n:]
            d_a = self._dis_loss_pair(r["disGA"], real_a, fake_b2a.detach()) + self._dis_loss_pair(r["disLA"], real_a, fake_b2a.detach())
            d_b = self._dis_loss_pair(r["disGB"], real_b, fake_a2b.detach()) + self._dis_loss_pair(r["disLB"], real_b, fake_a2b.detach())
            d_loss = cfg.adv_weight * (d_a + d_b)
        self.scaler.scale(d_loss).backward()
        average_gradients(self.dis_params)  # under torchrun: what DistributedDataParallel would do (it cannot follow D/G alternation)
        self.scaler.step(self.opt_d)
        self.opt_d.zero_grad(set_to_none=True)  # free the gradients now, not at the next step (full model: GBs)

        for p in self.dis_params:  # the generator step needs gradients through D, not for D's weights
            p.requires_grad_(False)
        with self._autocast():
            fake_a2b2a, _, _ = r["genB2A"](fake_a2b)
            fake_b2a2b, _, _ = r["genA2B"](fake_b2a)
            adv = (self._gen_adv(r["disGA"], fake_b2a) + self._gen_adv(r["disLA"], fake_b2a)
                   + self._gen_adv(r["disGB"], fake_a2b) + self._gen_adv(r["disLB"], fake_a2b))
            cycle = _l1(fake_a2b2a, real_a) + _l1(fake_b2a2b, real_b)
            identity = _l1(fake_a2a, real_a) + _l1(fake_b2b, real_b)
            cam = _bce(cam_ba[:n], 1.0) + _bce(cam_ba[n:], 0.0) + _bce(cam_ab[:n], 1.0) + _bce(cam_ab[n:], 0.0)
            g_loss = cfg.adv_weight * adv + cfg.cycle_weight * cycle + cfg.identity_weight * identity + cfg.cam_weight * cam
        self.scaler.scale(g_loss).backward()
        average_gradients(self.gen_params)
        self.scaler.step(self.opt_g)
        self.scaler.update()
        self.opt_g.zero_grad(set_to_none=True)
        for p in self.dis_params:
            p.requires_grad_(True)
        self._clip_rho()
        return torch.stack([d_loss, g_loss, adv, cycle, identity, cam]).detach().float()

    def _reference_step(self, real_a, real_b) -> torch.Tensor:
        """The official step, call for call: fakes not detached, generators run twice, one call per image set."""
        cfg, nets = self.cfg, self.nets

        def d_terms(dis, real, fake):
            rl, rc, _ = dis(real)
            fl, fc, _ = dis(fake)
            return _mse(rl, 1.0) + _mse(fl, 0.0) + _mse(rc, 1.0) + _mse(fc, 0.0)

        self.opt_d.zero_grad()
        fake_a2b, _, _ = nets["genA2B"](real_a)
        fake_b2a, _, _ = nets["genB2A"](real_b)
        d_loss = cfg.adv_weight * (d_terms(nets["disGA"], real_a, fake_b2a) + d_terms(nets["disLA"], real_a, fake_b2a)
                                   + d_terms(nets["disGB"], real_b, fake_a2b) + d_terms(nets["disLB"], real_b, fake_a2b))
        d_loss.backward()
        self.opt_d.step()

        self.opt_g.zero_grad()
        fake_a2b, cam_a2b, _ = nets["genA2B"](real_a)
        fake_b2a, cam_b2a, _ = nets["genB2A"](real_b)
        fake_a2b2a, _, _ = nets["genB2A"](fake_a2b)
        fake_b2a2b, _, _ = nets["genA2B"](fake_b2a)
        fake_a2a, cam_a2a, _ = nets["genB2A"](real_a)
        fake_b2b, cam_b2b, _ = nets["genA2B"](real_b)
        adv = (self._gen_adv(nets["disGA"], fake_b2a) + self._gen_adv(nets["disLA"], fake_b2a)
               + self._gen_adv(nets["disGB"], fake_a2b) + self._gen_adv(nets["disLB"], fake_a2b))
        cycle = _l1(fake_a2b2a, real_a) + _l1(fake_b2a2b, real_b)
        identity = _l1(fake_a2a, real_a) + _l1(fake_b2b, real_b)
        cam = _bce(cam_b2a, 1.0) + _bce(cam_a2a, 0.0) + _bce(cam_a2b, 1.0) + _bce(cam_b2b, 0.0)
        g_loss = cfg.adv_weight * adv + cfg.cycle_weight * cycle + cfg.identity_weight * identity + cfg.cam_weight * cam
        g_loss.backward()
        self.opt_g.step()
        nets["genA2B"].apply(RhoClipper(0, 1))
        nets["genB2A"].apply(RhoClipper(0, 1))
        d_loss.item(), g_loss.item()  # the official loop prints both every step: a host sync per step
        return torch.stack([d_loss, g_loss, adv, cycle, identity, cam]).detach().float()

    # ------------------------------------------------------------ the loop (helpers.train.fit)

    def train(self, steps: int | None = None, callback: Callable[[int, "Trainer"], None] | None = None, show: bool = False) -> RunResult:
        """Train until `cfg.iterations` (or `steps` more); save on schedule, at the end and on Ctrl-C.

        Returns a RunResult (`result.stopped` or `result["stopped"]`: "done",
        "interrupted" or "steps"). `show` keeps the newest sample grid and loss
        line live in the notebook.
        """
        self.nets.train()
        return fit(self, steps=steps, progress=not self.quiet, show=show, callback=callback, name="U-GAT-IT")

    # ------------------------------------------------------------ logs

    @property
    def log_path(self) -> Path:
        return self.run_dir / "log.csv"

    @property
    def kid_path(self) -> Path:
        return self.run_dir / "kid.csv"

    def pending_losses(self) -> torch.Tensor:
        return self._sums

    def log_row(self, seconds: float) -> dict | None:
        """The losses averaged since the last row (the one host read per `log_every` steps); None before any step."""
        if not self._count:
            return None
        means = (self._sums / self._count).tolist()
        row = {"step": self.step, "lr": f"{self.lr:.6g}"}
        row.update({k: f"{v:.6g}" for k, v in zip(LOSS_NAMES, means)})
        row["sec_per_step"] = f"{seconds / self._count:.4g}"
        self._sums.zero_()
        self._count = 0
        return row

    # ------------------------------------------------------------ watching

    @torch.no_grad()
    def generate(self, images: np.ndarray, direction: str = "A2B") -> dict:
        """Translate uint8 faces with the current generators: fake, identity and cycle images plus CAM heatmaps."""
        g_fwd, g_back = (self.nets["genA2B"], self.nets["genB2A"]) if direction == "A2B" else (self.nets["genB2A"], self.nets["genA2B"])
        was_training = self.nets.training
        self.nets.eval()
        x = to_tensor(images, self.device)
        with self._autocast():
            fake, _, heat_fake = g_fwd(x)
            same, _, heat_same = g_back(x)
            cycle, _, heat_cycle = g_back(fake)
        self.nets.train(was_training)
        return {"real": x, "identity": same, "identity_cam": heat_same, "fake": fake, "fake_cam": heat_fake, "cycle": cycle, "cycle_cam": heat_cycle}

    def sample(self, n: int = 4) -> Path | None:
        """Write this step's sample grid and timelapse frame (atomically); return the grid's path."""
        paths = [write_picture(self.run_dir / rel, rgb) for rel, rgb in self.pictures(n).items()]
        return paths[0] if paths else None

    def pictures(self, n: int = 4) -> dict:
        """Sample grid (rows: input, CAM, identity, CAM, translation, CAM, cycle; A2B left, B2A right, labelled) + a timelapse frame."""
        if not len(self.held_a) or not len(self.held_b):
            return {}
        blocks, frame = [], None
        for direction, held in (("A2B", self.held_a[:n]), ("B2A", self.held_b[:n])):
            out = self.generate(held, direction)
            src, dst = direction[0], direction[2]
            rows = [to_uint8_images(out["real"])]
            for key in ("identity", "fake", "cycle"):
                rows.append(cam_overlay(out[key + "_cam"], to_uint8_images(out["real"] if key != "cycle" else out["fake"])))
                rows.append(to_uint8_images(out[key]))
            labels = [src, "CAM", f"{src}2{src}", "CAM", f"{src}2{dst}", "CAM", f"{src}2{dst}2{src}"]
            strips = [np.concatenate(list(r), axis=1) for r in rows]
            blocks.append(np.concatenate([_label_strip(label, strip.shape[0]) for label, strip in zip(labels, strips)], axis=0))
            blocks.append(np.concatenate(strips, axis=0))
            if direction == "A2B":
                frame = self._timelapse_frame(held, to_uint8_images(out["fake"]))
        gap = np.full((blocks[0].shape[0], 8, 3), 255, np.uint8)
        blocks[3] = _fit_width(blocks[3], blocks[1].shape[1])
        grid = np.concatenate([blocks[0], blocks[1], gap, blocks[2], blocks[3]], axis=1)
        return {f"samples/step_{self.step:09d}.png": grid, f"timelapse/{self.step:09d}.png": frame}

    def _timelapse_frame(self, real: np.ndarray, fake: np.ndarray) -> np.ndarray:
        frame = np.concatenate([np.concatenate(list(real), 1), np.concatenate(list(fake), 1)], 0)
        frame = cv2.resize(frame, None, fx=max(1, 128 // real.shape[1]), fy=max(1, 128 // real.shape[1]), interpolation=cv2.INTER_NEAREST)
        label = np.full((22, frame.shape[1], 3), 255, np.uint8)
        cv2.putText(label, f"step {self.step:,}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        return np.concatenate([label, frame], 0)

    def kid(self) -> dict | None:
        """KID between translated held-out selfies and held-out target faces: a row for kid.csv (the loop appends it)."""
        n = min(len(self.held_a), len(self.held_b))
        if n < 2:
            return None
        if self._kid_features is None:
            self._kid_features, self.kid_name = kid_feature_extractor(self.device)
        fakes = []
        for i in range(0, len(self.held_a), 16):
            fakes.append(self.generate(self.held_a[i:i + 16], "A2B")["fake"].float())
        value, std = kernel_inception_distance(self._kid_features, to_tensor(self.held_b, self.device), torch.cat(fakes), subsets=self.cfg.kid_subsets)
        return {"step": self.step, f"kid_{self.kid_name}": f"{value:.6g}", f"kid_{self.kid_name}_std": f"{std:.6g}", "n_real": len(self.held_b), "n_fake": len(self.held_a)}


def _label_strip(text: str, height: int, width: int = 52) -> np.ndarray:
    """A white tile with a short row label, for the left edge of a sample grid."""
    tile = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(tile, text, (3, height // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def _fit_width(img: np.ndarray, width: int) -> np.ndarray:
    if img.shape[1] == width:
        return img
    pad = np.full((img.shape[0], abs(width - img.shape[1]), 3), 255, np.uint8)
    return np.concatenate([img, pad], 1) if img.shape[1] < width else img[:, :width]


def cam_overlay(heatmap: torch.Tensor, images: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """CAM heatmaps (N, 1, h, w) as a jet colour map blended over the images (N, H, W, 3) they explain."""
    out = []
    for h, img in zip(heatmap.float().cpu().numpy()[:, 0], images):
        h = (h - h.min()) / (h.max() - h.min() + 1e-8)
        h = cv2.resize((h * 255).astype(np.uint8), img.shape[1::-1], interpolation=cv2.INTER_CUBIC)
        color = cv2.cvtColor(cv2.applyColorMap(h, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
        out.append((alpha * color + (1 - alpha) * img).round().astype(np.uint8))
    return np.stack(out)


def latest_sample(run_dir: str | os.PathLike) -> Path | None:
    found = pictures_in(Path(run_dir) / "samples")
    return found[-1] if found else None


# ---------------------------------------------------------------- KID

class ONetFeatures(nn.Module):
    """Offline fallback for KID: the 256-d face embedding of MTCNN's ONet (weights ship in facenet-pytorch).

    Inception features (the paper's KID) need torch-fidelity and a weight
    download; ONet is a face network already on disk. Its numbers are only
    comparable with other ONet KIDs, which is why the CSV column says so.
    """

    def __init__(self):
        super().__init__()
        from facenet_pytorch.models.mtcnn import ONet

        self.onet = ONet(pretrained=True).eval()
        for p in self.onet.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def forward(self, x):  # float [-1, 1], (N, 3, H, W) RGB
        o = self.onet
        x = F.interpolate(x.float(), size=(48, 48), mode="bilinear", antialias=True, align_corners=False) * (127.5 / 128)
        x = o.pool1(o.prelu1(o.conv1(x)))
        x = o.pool2(o.prelu2(o.conv2(x)))
        x = o.pool3(o.prelu3(o.conv3(x)))
        x = o.prelu4(o.conv4(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)  # the flattening order ONet's dense layer was trained with
        return o.prelu5(o.dense5(x)).double()


class InceptionFeatures(nn.Module):
    """The paper's KID features: torch-fidelity's Inception v3 pool features (2048-d)."""

    def __init__(self):
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"])

    @torch.no_grad()
    def forward(self, x):
        return self.net(((x.float().clamp(-1, 1) + 1) * 127.5).round().byte()).double()


def kid_feature_extractor(device, offline: bool | None = None) -> tuple[nn.Module, str]:
    """(module, name): Inception when torch-fidelity and its weights can be had, else the labelled ONet fallback."""
    offline = os.environ.get("POLYJUICE_OFFLINE") == "1" if offline is None else offline
    if not offline:
        try:
            return InceptionFeatures().to(device), "inception"
        except Exception as exc:  # not installed, or the weight download failed
            warnings.warn(f"KID: Inception features unavailable ({type(exc).__name__}: {exc}); using the ONet fallback.", stacklevel=2)
    return ONetFeatures().to(device), "onet_fallback"


def kernel_inception_distance(features: nn.Module, real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000) -> tuple[float, float]:
    """KID (torchmetrics) of two image sets in [-1, 1] with the given feature extractor; the global RNG is untouched."""
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = KernelInceptionDistance(feature=features, subsets=subsets, subset_size=size).to(real.device)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        mean, std = metric.compute()
    return float(mean), float(std)


# ---------------------------------------------------------------- inference

# The Translator, loading and a shared checkpoint live in helpers.facemodel, shared with the face swap.
from .facemodel import Translator, load_translator  # noqa: E402,F401
from .facemodel import fetch_shared_ugatit as fetch_shared_checkpoint  # noqa: E402,F401
from .facemodel import read_weights as _read_weights  # noqa: E402,F401


@dataclass
class TranslatedImage:
    image: np.ndarray  # the picture with translated faces pasted back (the input when paste=False or no face)
    crops: np.ndarray  # aligned input crops (N, S, S, 3)
    translated: np.ndarray  # translated crops (N, S, S, 3)
    matrices: list = field(default_factory=list)  # image -> crop pixel maps, one per face


def translate_image(rgb: np.ndarray, translator: Translator, detector="mtcnn", size: int = 256, paste: bool = True, mask: str = "hull", feather: float = 0.05) -> TranslatedImage:
    """Find faces with notebook 02's detector and aligner, translate them, optionally paste them back.

    Paste-back is helpers.blend's feathered inverse-affine blend, without colour
    transfer: matching the old skin colour would wash the makeup out.
    """
    from .blend import blend_face
    from .faces import align_face, make_detector

    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be a uint8 (H, W, 3) RGB array, got {getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}")
    detector = make_detector(detector)
    faces = detector.detect(rgb)
    empty = np.zeros((0, size, size, 3), np.uint8)
    if not faces:
        return TranslatedImage(rgb.copy(), empty, empty)
    aligned = [align_face(rgb, face, size=size) for face in faces]
    crops = np.stack([a.image for a in aligned])
    out = translator.translate(crops)
    image = rgb
    if paste:
        for crop, a, face in zip(out, aligned, faces):
            image = blend_face(image, crop, a.matrix, landmarks=face.landmarks, mask=mask, color=None, feather=feather)
    return TranslatedImage(image.copy(), crops, out, [a.matrix for a in aligned])


# ---------------------------------------------------------------- command line

def main(argv=None) -> None:
    """python -m helpers.ugatit --faces ROOT --run-dir DIR [--quick] [--set domain_a="('selfie',)" --set iterations=300000 ...]

    Data-parallel: torchrun --nproc_per_node 2 -m helpers.ugatit ... (batch_size must divide by the process count).
    """
    from .train import command_line, finish_distributed, is_main

    def arguments(parser):
        parser.add_argument("--faces", required=True, help="the faces root: one folder per name in domain_a and domain_b")
        parser.add_argument("--run-dir", "--run", dest="run", required=True, help="run folder: checkpoints, log.csv, samples (resumed when it has them)")

    args, cfg = command_line("Train U-GAT-IT (lesson 04).", UGATITConfig, arguments, argv)
    try:
        run = Trainer(cfg, args.faces, args.run, args.device, quiet=not is_main()).train(steps=args.steps_this_run)
        if is_main():
            print(f"{run.stopped}: step {run.step} of {cfg.iterations} in {run.folder}")
    finally:
        finish_distributed()


if __name__ == "__main__":
    main()
