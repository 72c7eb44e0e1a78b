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

`reference_mode=True` does the official per-step work instead (float32, eager,
fakes not detached, generators run twice, a host read of the loss every step)
so the benchmark can compare like with like.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import Checkpointer, list_checkpoints, restore_rng
from .data import load_faces
from .models.ugatit import (
    NET_NAMES,
    RhoClipper,
    build_networks,
    infer_official_config,
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
    holdout: int = 50  # faces per domain kept out of training, for sample grids, the timelapse and KID
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
    sample_every: int = 1000  # official print_freq
    kid_every: int = 10_000
    kid_subsets: int = 100
    ckpt_every: int = 1000
    ckpt_minutes: float = 10.0
    keep_last: int = 3
    milestone_every: int = 100_000  # official save_freq: these checkpoints are never pruned
    seed: int = 0

    @classmethod
    def quick(cls, **overrides) -> "UGATITConfig":
        """A CPU smoke run: real faces (woman + man) -> cartoon at 64 px, light model, a few steps."""
        base = dict(
            domain_a=("woman", "man"), domain_b=("cartoon",), img_size=64, light=True, ch=16,
            iterations=16, holdout=8, log_every=2, sample_every=8, kid_every=8, kid_subsets=20,
            ckpt_every=8, ckpt_minutes=5.0, keep_last=2, milestone_every=0,
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


def pick_amp(cfg: UGATITConfig, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for this device, or None for float32."""
    if cfg.reference_mode or cfg.amp == "off":
        return None
    if cfg.amp == "bf16":
        return torch.bfloat16
    if cfg.amp == "fp16":
        return torch.float16
    if device.type != "cuda":
        return None  # CPU autocast is slower than float32 on most CPUs
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16  # T4/V100 emulate bf16 slowly: fp16 + scaler there


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


def _load_domain(faces_root: Path, names: Sequence[str], crop_from: int, img_size: int, holdout: int):
    """Training faces (uint8 N,3,L,L tensor at the pre-crop size) and held-out faces (uint8 N,S,S,3 at img_size)."""
    faces = np.concatenate([load_faces(faces_root / n, crop_from) for n in names])
    n_hold = min(holdout, len(faces) // 5)
    if len(faces) - n_hold < 1:
        raise ValueError(f"Too few faces in {list(names)} ({len(faces)}): crop more in notebook 02.")
    hold_idx = np.unique(np.linspace(0, len(faces) - 1, n_hold).round().astype(int)) if n_hold else np.array([], int)
    keep = np.setdiff1d(np.arange(len(faces)), hold_idx)
    held = np.stack([cv2.resize(f, (img_size, img_size), interpolation=cv2.INTER_AREA) for f in faces[hold_idx]]) if n_hold else np.zeros((0, img_size, img_size, 3), np.uint8)
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


# ---------------------------------------------------------------- interrupts

@contextlib.contextmanager
def deferred_interrupt():
    """Turn the first Ctrl-C (Jupyter's stop button) into a flag the loop reads between steps.

    A step interrupted half-way would leave the discriminators updated and the
    generators not; finishing the step and then saving keeps the checkpoint
    consistent. A second Ctrl-C interrupts at once. Outside the main thread
    there is no signal handler and KeyboardInterrupt is caught by the caller.
    """
    flag = {"hit": False}
    if threading.current_thread() is not threading.main_thread():
        yield lambda: flag["hit"]
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if flag["hit"]:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        flag["hit"] = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: flag["hit"]
    finally:
        signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------- the trainer

class Trainer:
    """Six networks, two optimisers, the data and the run folder; `train()` continues where it stopped.

    Run folder: ckpt-*.pt (full state), log.csv (losses), kid.csv, samples/*.png
    (grids with CAM heatmaps), timelapse/*.png (fixed selfies over time).
    """

    def __init__(self, cfg: UGATITConfig, faces_root: str | os.PathLike, run_dir: str | os.PathLike, device: torch.device | str | None = None, resume: bool = True, quiet: bool = False):
        self.cfg = cfg
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.quiet = quiet
        self.amp_dtype = pick_amp(cfg, self.device)
        self.channels_last = cfg.channels_last and not cfg.reference_mode and self.device.type == "cuda"
        if self.device.type == "cuda" and not cfg.reference_mode:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

        # data
        faces_root = Path(faces_root)
        train_a, self.held_a = _load_domain(faces_root, cfg.domain_a, cfg.crop_from, cfg.img_size, cfg.holdout)
        train_b, self.held_b = _load_domain(faces_root, cfg.domain_b, cfg.crop_from, cfg.img_size, cfg.holdout)
        self.stream_a = FaceStream(train_a, cfg.img_size, cfg.batch_size, cfg.seed, 0, cfg.flip, self.device)
        self.stream_b = FaceStream(train_b, cfg.img_size, cfg.batch_size, cfg.seed, 1, cfg.flip, self.device)

        # networks and optimisers
        torch.manual_seed(cfg.seed)
        self.nets = build_networks(cfg.img_size, cfg.light, cfg.ch, cfg.n_res).to(self.device)
        if self.channels_last:
            self.nets.to(memory_format=torch.channels_last)
        self.run = {n: self.nets[n] for n in NET_NAMES}
        if cfg.compile and not cfg.reference_mode:
            self.run = {n: torch.compile(self.nets[n], dynamic=False) for n in NET_NAMES}  # two batch sizes: two graphs
        fused = {"fused": True} if self.device.type == "cuda" and not cfg.reference_mode else {}
        gen_params = [p for n in ("genA2B", "genB2A") for p in self.nets[n].parameters()]
        self.dis_params = [p for n in ("disGA", "disGB", "disLA", "disLB") for p in self.nets[n].parameters()]
        self.opt_g = torch.optim.Adam(gen_params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **fused)
        self.opt_d = torch.optim.Adam(self.dis_params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **fused)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.rhos = rho_parameters(self.nets["genA2B"]) + rho_parameters(self.nets["genB2A"])

        # progress
        self.step = 0
        self.lr = cfg.lr
        self._sums = torch.zeros(len(LOSS_NAMES), device=self.device)
        self._count = 0
        self._interval_start = time.perf_counter()
        self.checkpointer = Checkpointer(self.run_dir, cfg.ckpt_every, cfg.ckpt_minutes, cfg.keep_last, cfg.milestone_every or None)
        self.kid_name = None
        self._kid_features = None
        if resume:
            self.resume()

    # ------------------------------------------------------------ state

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
            "data": {"seed": self.cfg.seed, "n_a": self.stream_a.n, "n_b": self.stream_b.n},
            "log": {"sums": self._sums.detach().cpu().clone(), "count": self._count},
        }

    def save(self) -> Path:
        if self._count and not torch.isfinite(self._sums).all():
            raise FloatingPointError(f"Losses are not finite near step {self.step}; not saving. The last good checkpoint is in {self.run_dir}.")
        path = self.checkpointer.save(self.step, self.state())
        return path

    def resume(self) -> bool:
        """Load the newest readable checkpoint of the run folder, if any; return whether one was found."""
        state = self.checkpointer.latest(map_location=self.device)
        if state is None:
            self._truncate_logs(0)
            return False
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
        self._truncate_logs(self.step)
        self.say(f"Resumed from step {self.step} ({self.run_dir}).")
        return True

    def load_pretrained(self, path: str | os.PathLike) -> None:
        """Start from shared weights: an official `*_params_*.pt` file or one of our checkpoints (networks only)."""
        params = torch.load(path, map_location=self.device, weights_only=True)
        load_official_state(self.nets, params.get("nets", params))
        self.say(f"Loaded the six networks from {Path(path).name}; optimisers start fresh.")

    def export_official(self, path: str | os.PathLike) -> Path:
        """The six networks in the official layout (what the official test script loads)."""
        from .checkpoint import atomic_save

        return atomic_save(official_state(self.nets), path)

    # ------------------------------------------------------------ the step

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

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

    def train_step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> torch.Tensor:
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

    # ------------------------------------------------------------ the loop

    def train(self, steps: int | None = None, callback: Callable[[int, "Trainer"], None] | None = None) -> dict:
        """Train until `cfg.iterations` (or `steps` more); save on schedule, at the end and on Ctrl-C.

        Returns {"step", "stopped" ("done", "interrupted" or "steps"), "seconds", "sec_per_step"}.
        """
        from tqdm.auto import tqdm

        cfg = self.cfg
        until = cfg.iterations if steps is None else min(cfg.iterations, self.step + steps)
        start_step, t0 = self.step, time.perf_counter()
        if self.step == 0 and cfg.sample_every:
            self.sample()  # step 0 of the timelapse: the untrained generator
        if self.step >= until:
            self.say(f"Already at step {self.step} of {cfg.iterations}: nothing to train.")
            return {"step": self.step, "stopped": "done", "seconds": 0.0, "sec_per_step": None}
        stopped = "done" if until == cfg.iterations else "steps"
        self.nets.train()
        self._interval_start = time.perf_counter()
        bar = tqdm(total=until, initial=self.step, desc="U-GAT-IT", disable=self.quiet, dynamic_ncols=True)
        try:
            with deferred_interrupt() as interrupted:
                while self.step < until:
                    step = self.step + 1
                    real_a = self.stream_a.batch(step, self.channels_last)
                    real_b = self.stream_b.batch(step, self.channels_last)
                    self._set_lr(step)
                    self._sums += self.train_step(real_a, real_b)
                    self._count += 1
                    self.step = step
                    if step % cfg.log_every == 0 or step == until:
                        row = self._write_log()
                        bar.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row['g_loss']:.3f}", refresh=False)
                    if cfg.sample_every and step % cfg.sample_every == 0:
                        self.sample()
                    if cfg.kid_every and step % cfg.kid_every == 0:
                        self.kid()
                    if self.checkpointer.due(step) or step == until:
                        self.save()
                    bar.update(1)
                    if callback is not None:
                        callback(step, self)
                    if interrupted() and self.step < until:
                        stopped = "interrupted"
                        break
        except KeyboardInterrupt:  # a second Ctrl-C, or no signal handler (not the main thread)
            stopped = "interrupted"
        finally:
            bar.close()
        if stopped == "interrupted":
            path = self.save()
            self.say(f"Interrupted: saved step {self.step} to {path.name}. Run the cell again to continue.")
        seconds = time.perf_counter() - t0
        done = self.step - start_step
        return {"step": self.step, "stopped": stopped, "seconds": seconds, "sec_per_step": seconds / done if done else None}

    # ------------------------------------------------------------ logs

    @property
    def log_path(self) -> Path:
        return self.run_dir / "log.csv"

    @property
    def kid_path(self) -> Path:
        return self.run_dir / "kid.csv"

    def _truncate_logs(self, step: int) -> None:
        """Drop log rows past `step`: they were written after the checkpoint we resume from."""
        for path in (self.log_path, self.kid_path):
            if not path.exists():
                continue
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            if not rows:
                continue
            kept = [rows[0]] + [r for r in rows[1:] if r and int(float(r[0])) <= step]
            if len(kept) != len(rows):
                tmp = path.with_suffix(".tmp")
                with open(tmp, "w", newline="") as f:
                    csv.writer(f).writerows(kept)
                os.replace(tmp, path)

    def _append_csv(self, path: Path, row: dict) -> None:
        new = not path.exists() or path.stat().st_size == 0
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def _write_log(self) -> dict:
        """Average the losses since the last row (the one host read per `log_every` steps) and append them."""
        means = (self._sums / max(self._count, 1)).tolist()
        now = time.perf_counter()
        row = {"step": self.step, "lr": f"{self.lr:.6g}"}
        row.update({k: f"{v:.6g}" for k, v in zip(LOSS_NAMES, means)})
        row["sec_per_step"] = f"{(now - self._interval_start) / max(self._count, 1):.4g}"
        if not all(math.isfinite(v) for v in means):
            raise FloatingPointError(
                f"Losses became {means} near step {self.step}. The last checkpoint in {self.run_dir} is intact: "
                "try amp='off' or a lower lr, then run again."
            )
        self._append_csv(self.log_path, row)
        self._sums.zero_()
        self._count = 0
        self._interval_start = now
        return {k: float(v) for k, v in row.items()}

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
        """Sample grid (rows: input, CAM, identity, CAM, translation, CAM, cycle; A2B left, B2A right, labelled) + a timelapse frame."""
        if not len(self.held_a) or not len(self.held_b):
            return None
        blocks = []
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
                self._timelapse_frame(held, to_uint8_images(out["fake"]))
        gap = np.full((blocks[0].shape[0], 8, 3), 255, np.uint8)
        blocks[3] = _fit_width(blocks[3], blocks[1].shape[1])
        grid = np.concatenate([blocks[0], blocks[1], gap, blocks[2], blocks[3]], axis=1)
        path = self.run_dir / "samples" / f"step_{self.step:09d}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        return path

    def _timelapse_frame(self, real: np.ndarray, fake: np.ndarray) -> None:
        frame = np.concatenate([np.concatenate(list(real), 1), np.concatenate(list(fake), 1)], 0)
        frame = cv2.resize(frame, None, fx=max(1, 128 // real.shape[1]), fy=max(1, 128 // real.shape[1]), interpolation=cv2.INTER_NEAREST)
        label = np.full((22, frame.shape[1], 3), 255, np.uint8)
        cv2.putText(label, f"step {self.step:,}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        path = self.run_dir / "timelapse" / f"{self.step:09d}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(np.concatenate([label, frame], 0), cv2.COLOR_RGB2BGR))

    def kid(self) -> float | None:
        """KID between translated held-out selfies and held-out target faces; appended to kid.csv."""
        n = min(len(self.held_a), len(self.held_b))
        if n < 2:
            return None
        if self._kid_features is None:
            self._kid_features, self.kid_name = kid_feature_extractor(self.device)
        fakes = []
        for i in range(0, len(self.held_a), 16):
            fakes.append(self.generate(self.held_a[i:i + 16], "A2B")["fake"].float())
        value, std = kernel_inception_distance(self._kid_features, to_tensor(self.held_b, self.device), torch.cat(fakes), subsets=self.cfg.kid_subsets)
        self._append_csv(self.kid_path, {"step": self.step, f"kid_{self.kid_name}": f"{value:.6g}", f"kid_{self.kid_name}_std": f"{std:.6g}", "n_real": len(self.held_b), "n_fake": len(self.held_a)})
        return value


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


def make_timelapse(run_dir: str | os.PathLike, path: str | os.PathLike | None = None, seconds_per_frame: float = 0.4) -> Path | None:
    """GIF of the timelapse frames (fixed held-out selfies translated at each sample step)."""
    from PIL import Image

    frames = sorted((Path(run_dir) / "timelapse").glob("*.png"))
    if not frames:
        return None
    path = Path(path or Path(run_dir) / "timelapse.gif")
    images = [Image.open(f).convert("RGB") for f in frames]
    size = images[-1].size
    images = [im if im.size == size else im.resize(size) for im in images]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(seconds_per_frame * 1000), loop=0)
    return path


def latest_sample(run_dir: str | os.PathLike) -> Path | None:
    found = sorted((Path(run_dir) / "samples").glob("step_*.png"))
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
