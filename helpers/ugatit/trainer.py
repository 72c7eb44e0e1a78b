"""The U-GAT-IT trainer: six networks, two optimisers, the data, and the step.

The step is `Trainer.update` (the fast one) and `Trainer._reference_step`
(the official one, call for call); the loop around them is `helpers.train.fit`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import restore_rng
from ..models.ugatit import (
    NET_NAMES,
    RhoClipper,
    build_networks,
    load_official_state,
    official_power_iterations,
    official_state,
    rho_parameters,
)
from ..train import (
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
    rank_slice,
    world_size,
    write_picture,
)
from .config import ARCH_FIELDS, LOSS_NAMES, UGATITConfig, official_lr
from .data import FaceStream, load_domain, to_tensor
from .kid import kernel_inception_distance, kid_feature_extractor
from .pictures import sample_grid, timelapse_frame


def _mse(x, target: float):
    return F.mse_loss(x.float(), torch.full_like(x, target, dtype=torch.float32))


def _bce(x, target: float):
    return F.binary_cross_entropy_with_logits(x.float(), torch.full_like(x, target, dtype=torch.float32))


def _l1(x, y):
    return F.l1_loss(x.float(), y.float())


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
        train_a, self.held_a = load_domain(faces_root, cfg.domain_a, cfg.crop_from, cfg.img_size, cfg.holdout, cfg.seed)
        train_b, self.held_b = load_domain(faces_root, cfg.domain_b, cfg.crop_from, cfg.img_size, cfg.holdout, cfg.seed + 1)
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
        self._kid_untranslated = None
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
        from ..train import resume

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

        from ..facemodel import describe_architecture as _describe, pretrained_networks

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

    def describe(self) -> str:
        """Two lines for the notebook: which model, where and in what precision, with its size; how many faces."""
        cfg = self.cfg
        sizes = ", ".join(f"{name} {sum(p.numel() for p in net.parameters()) / 1e6:.1f} M" for name, net in self.nets.items())
        return (f"{'light' if cfg.light else 'full'} U-GAT-IT at {cfg.img_size} px on {self.device} ({self.amp_dtype or 'float32'}): {sizes}\n"
                f"A: {self.stream_a.n} training + {len(self.held_a)} held-out faces; B: {self.stream_b.n} + {len(self.held_b)}")

    def export_official(self, path: str | os.PathLike) -> Path:
        """The six networks in the official layout (what the official test script loads)."""
        from ..checkpoint import atomic_save

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
        """LSGAN loss of one discriminator on real and (detached) fake images, in one batched call.

        The official code makes two calls, so each spectral norm runs two power
        iterations and the fake call sees the second estimate; the batched call
        does the same (`official_power_iterations`), so the numbers are the official ones.
        """
        n = real.shape[0]
        with official_power_iterations(dis, n):
            logit, cam, _ = dis(torch.cat([real, fake]))
        return _mse(logit[:n], 1.0) + _mse(logit[n:], 0.0) + _mse(cam[:n], 1.0) + _mse(cam[n:], 0.0)

    def _gen_adv(self, dis, fake):
        logit, cam, _ = dis(fake)
        return _mse(logit, 1.0) + _mse(cam, 1.0)

    def _generator_loss(self, nets, real_a, real_b, fake_a2b, fake_b2a, fake_a2b2a, fake_b2a2b, fake_a2a, fake_b2b, cam):
        """The generators' terms and their weighted sum, as the official code adds them (both steps use this)."""
        cfg = self.cfg
        adv = (self._gen_adv(nets["disGA"], fake_b2a) + self._gen_adv(nets["disLA"], fake_b2a)
               + self._gen_adv(nets["disGB"], fake_a2b) + self._gen_adv(nets["disLB"], fake_a2b))
        cycle = _l1(fake_a2b2a, real_a) + _l1(fake_b2a2b, real_b)
        identity = _l1(fake_a2a, real_a) + _l1(fake_b2b, real_b)
        g_loss = cfg.adv_weight * adv + cfg.cycle_weight * cycle + cfg.identity_weight * identity + cfg.cam_weight * cam
        return adv, cycle, identity, g_loss

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
            cam = _bce(cam_ba[:n], 1.0) + _bce(cam_ba[n:], 0.0) + _bce(cam_ab[:n], 1.0) + _bce(cam_ab[n:], 0.0)
            adv, cycle, identity, g_loss = self._generator_loss(
                r, real_a, real_b, fake_a2b, fake_b2a, fake_a2b2a, fake_b2a2b, fake_a2a, fake_b2b, cam)
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
        cam = _bce(cam_b2a, 1.0) + _bce(cam_a2a, 0.0) + _bce(cam_a2b, 1.0) + _bce(cam_b2b, 0.0)
        adv, cycle, identity, g_loss = self._generator_loss(
            nets, real_a, real_b, fake_a2b, fake_b2a, fake_a2b2a, fake_b2a2b, fake_a2a, fake_b2b, cam)
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
        """This step's sample grid and timelapse frame (helpers/ugatit/pictures.py draws them)."""
        if not len(self.held_a) or not len(self.held_b):
            return {}
        grid, fakes = sample_grid(self.generate, self.held_a[:n], self.held_b[:n])
        frame = timelapse_frame(self.held_a[:n], fakes, self.step)
        return {f"samples/step_{self.step:09d}.png": grid, f"timelapse/{self.step:09d}.png": frame}

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
        return {"step": self.step, f"kid_{self.kid_name}": f"{value:.6g}", f"kid_{self.kid_name}_std": f"{std:.6g}",
                f"kid_{self.kid_name}_untranslated": f"{self.kid_untranslated():.6g}", "n_real": len(self.held_b), "n_fake": len(self.held_a)}

    def kid_untranslated(self) -> float:
        """KID of the held-out selfies as they are, against the same target faces: the line a translation must get under.

        A KID of fakes only means something beside it: the features may barely
        separate the two domains (the offline ONet ones put real faces and the
        cartoon sample only about 0.008 apart), so "low" is judged against this.
        """
        if self._kid_untranslated is None:
            if self._kid_features is None:
                self._kid_features, self.kid_name = kid_feature_extractor(self.device)
            self._kid_untranslated, _ = kernel_inception_distance(self._kid_features, to_tensor(self.held_b, self.device),
                                                                  to_tensor(self.held_a, self.device).float(), subsets=self.cfg.kid_subsets)
        return self._kid_untranslated
