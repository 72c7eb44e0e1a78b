"""Train the autoencoder face swap, watch it learn, resume it, and swap faces with it.

    cfg = SwapConfig.quick() if QUICK else SwapConfig()
    run = train_swap(cfg, ws.faces / "woman", ws.faces / "man", ws.checkpoints / "swap")
    swapper = load_swapper(ws.checkpoints / "swap", ws.device)
    as_b = swapper.swap(faces_of_a, to="B")

What differs from the seed post, and why:
- A and B train in ONE run, every step a batch of each through the shared
  encoder. Trained in separate runs (as in the seed) the encoder drifts to
  whichever person it saw last.
- The input is randomly warped and the target is the straight face, so each
  decoder must learn its person instead of copying pixels.
- Everything needed to continue is checkpointed: weights, optimizer, the data
  generator and where each identity is in its epoch. Running the same call again
  continues exactly where it stopped, as if it had never been interrupted.

The loop around the step (resume, saves, Ctrl-C, logs, previews, the live
view, torchrun) is `helpers.train.fit`, the same one lesson 04 uses.

Files in the run folder: ckpt-*.pt, log.csv (train and held-out L1 per identity),
loss.png, previews/step-*.png (A, A->A, A->B, B, B->B, B->A) and timelapse.gif.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .models.autoencoder import FaceSwapAutoencoder, IDENTITIES, spec_for
from .train import RunResult, autocast, autocast_dtype, enable_tf32, fit, init_distributed, is_main, make_adam, make_scaler, pick_device, rank_slice, split_holdout, use_channels_last, world_size
from .swap_pictures import plot_log, preview_grid  # noqa: F401  (plot_log: notebook 03)
from .warp import augment, colour_shift
from .identity import identity_hooks

LOG_COLUMNS = ["step", "train_A", "train_B", "heldout_A", "heldout_B", "images_per_s", "minutes"]
ARCHITECTURE = ("model", "size")  # a checkpoint only fits a model built with the same values


@dataclass
class SwapConfig:
    """Every knob of the training. Defaults follow the seed post (its Keras model and optimizer)
    plus the 2017 original's augmentation; `quick()` is a CPU smoke run."""

    model: str = "classic"  # classic | lowmem | tiny (see helpers.models.autoencoder.SPECS)
    size: int = 64  # 64 as in the seed; 128 builds the 128 px variant
    batch_size: int = 32  # per identity, as in the seed
    steps: int = 20_000  # the seed ran 100 epochs (~2,400 batches); the swap keeps improving far beyond
    lr: float = 5e-5  # Adam, as in the seed
    beta1: float = 0.5
    beta2: float = 0.999
    ssim_weight: float = 0.0  # 0: plain L1 (mean absolute error) like the seed; try 1.0 for crisper eyes
    warp: float = 1.0  # random-warp strength; 0 turns the trick off (and the swap into a copy)
    rotate: float = 10.0  # degrees
    zoom: float = 0.05
    shift: float = 0.05  # fraction of the width
    flip: bool = True
    colour_match: bool = False  # shift A's colours to B's during training, for scenes lit differently
    holdout: float = 0.25  # the seed's validation split: never trained on, gives the held-out L1
    seed: int = 0
    max_faces: int | None = None  # per identity; None = all kept faces
    amp: str = "auto"  # auto (bf16 on recent GPUs, fp16 on older ones, off on CPU) | bf16 | fp16 | off
    channels_last: str = "auto"  # auto (on for CUDA: NHWC feeds tensor cores; no gain measured on CPU) | on | off
    log_every: int = 100
    log_minutes: float | None = None  # also a log row this often (None: by steps only)
    preview_every: int = 250
    preview_minutes: float | None = None
    preview_faces: int = 4  # per identity, fixed, for previews and the timelapse
    eval_faces: int = 256  # held-out faces per identity scored at each log line
    save_every: int = 1000  # steps
    save_minutes: float = 10.0  # and at least this often: a Colab session can end at any moment
    keep_last: int = 2  # full-state checkpoints for resume; README "Checkpoints on Google Drive" sizes a run with 2
    milestone_every: int | None = 5000
    cpu_threads: int | None = None  # torch threads while training on a CPU; None leaves torch's choice
    identity_every: int | None = None  # swap success by an independent face recognizer (helpers.identity) every N steps
    identity_faces: int = 64  # held-out faces per identity it judges

    def __post_init__(self):
        if not 0 <= self.holdout < 1:
            raise ValueError(f"holdout is the fraction of faces kept out of training, in [0, 1); got {self.holdout}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be at least 1")

    @classmethod
    def quick(cls, **overrides) -> "SwapConfig":
        """A few dozen steps of a toy-sized model: runs the whole pipeline on a CPU in under a minute.

        The learning rate is 10x the seed's so that a few dozen steps already show
        blurry faces. One thread: a toy model's ops are so small that a second
        thread mostly waits for the first, and on a busy machine that waiting
        makes each step several times slower."""
        settings = dict(model="tiny", batch_size=16, steps=60, lr=5e-4, log_every=10, preview_every=15,
                        eval_faces=64, save_every=30, save_minutes=5.0, milestone_every=None, cpu_threads=1)
        return cls(**{**settings, **overrides})


    @classmethod
    def laptop(cls, **overrides) -> "SwapConfig":
        """A real swap on a laptop's CPU in about half an hour: the tiny model at 64 px.

        Small batches of a small model take many cheap steps, and a learning
        rate 10x the seed's gets there in the time a workshop has. The swap's
        success is judged by an independent recognizer every 1,000 steps
        (identity.csv), so the curve shows when it is good enough. Measured on
        the sample identities (bench/bench_laptop.py, BENCHMARKS.md): 5,000
        steps take 31 minutes on one core of a 2-core AMD EPYC box, and from
        step 4,000 the recognizer takes every held-out swap for the target in
        both directions (at 2,000-3,000 the man-as-woman swaps still fail).
        """
        settings = dict(model="tiny", batch_size=8, steps=5000, lr=5e-4, log_every=250, preview_every=500,
                        eval_faces=128, save_every=1000, save_minutes=5.0, milestone_every=None, cpu_threads=1,
                        identity_every=1000)
        return cls(**{**settings, **overrides})


# ---------------------------------------------------------------- data

def as_face_tensor(faces, size: int, device: torch.device, limit: int | None = None) -> torch.Tensor:
    """A face folder or a uint8 (N,H,W,3) array -> uint8 (N,3,size,size) tensor on the device."""
    if isinstance(faces, (str, os.PathLike)):
        from .data import load_faces

        faces = load_faces(faces, size, limit=limit)
    faces = np.asarray(faces)[:limit]
    if faces.ndim != 4 or faces.shape[-1] != 3 or faces.dtype != np.uint8:
        raise ValueError(f"Faces must be uint8 (N, H, W, 3) RGB, got {faces.dtype} {faces.shape}")
    x = torch.from_numpy(np.ascontiguousarray(faces)).permute(0, 3, 1, 2)
    if x.shape[-1] != size:
        x = F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        x = x.round().clamp(0, 255).to(torch.uint8)
    return x.contiguous().to(device)


def _split_seed(cfg: "SwapConfig", identity: str) -> int:
    return cfg.seed + IDENTITIES.index(identity)


def heldout_faces(faces, cfg: "SwapConfig", identity: str = "A", size: int = 256) -> np.ndarray:
    """The aligned crops of `identity` that training holds out (never trains on), uint8 (N,size,size,3)."""
    if isinstance(faces, (str, os.PathLike)):
        from .data import load_faces

        faces = load_faces(faces, size, limit=cfg.max_faces)
    faces = np.asarray(faces)[: cfg.max_faces]
    _, held = split_holdout(len(faces), cfg.holdout, _split_seed(cfg, identity))
    return faces[held.numpy()]


class EpochSampler:
    """Batches that visit every training face once per epoch in a fresh random order (the seed's shuffle=True).

    Its state (the current order and position) goes into the checkpoint, so a
    resumed run draws exactly the batches the uninterrupted run would have.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator):
        self.n, self.batch_size, self.generator = n, batch_size, generator
        self.order = torch.randperm(n, generator=generator)
        self.pos = 0

    def next(self) -> torch.Tensor:
        picked = []
        need = self.batch_size
        while need:
            if self.pos == self.n:
                self.order, self.pos = torch.randperm(self.n, generator=self.generator), 0
            take = self.order[self.pos: self.pos + need]
            picked.append(take)
            self.pos += len(take)
            need -= len(take)
        return torch.cat(picked)

    def state_dict(self) -> dict:
        return {"order": self.order.clone(), "pos": self.pos, "n": self.n}

    def load_state_dict(self, state: dict) -> None:
        if state["n"] != self.n:
            raise ValueError("face count changed")
        self.order, self.pos = state["order"].clone(), int(state["pos"])


# ---------------------------------------------------------------- loss

def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean structural similarity of two [0, 1] image batches (Gaussian window, per channel)."""
    coords = torch.arange(window, device=x.device, dtype=x.dtype) - window // 2
    g = torch.exp(-(coords ** 2) / (2 * sigma ** 2))
    g = (g / g.sum())
    c = x.shape[1]
    kx, ky = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, kx, groups=c), ky, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    return (((2 * mx * my + c1) * (2 * cov + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))).mean()


def reconstruction_loss(out: torch.Tensor, target: torch.Tensor, ssim_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss to minimise, plain L1 to log). Computed in fp32 whatever the autocast."""
    out, target = out.float(), target.float()
    l1 = (out - target).abs().mean()
    if ssim_weight:
        return l1 + ssim_weight * (1 - ssim(out, target)) / 2, l1
    return l1, l1


# ---------------------------------------------------------------- training

def _check_same_architecture(saved: dict, cfg: SwapConfig, folder: Path) -> None:
    for key in ARCHITECTURE:
        if saved.get(key) != getattr(cfg, key):
            raise ValueError(
                f"The checkpoint in {folder} is a {saved.get('model')} model at {saved.get('size')} px, but the config asks "
                f"for {cfg.model} at {cfg.size} px. Use the same settings to continue it, or another folder "
                f"(e.g. {folder.parent / (folder.name + '-' + cfg.model)}) to start afresh; move {folder} away to replace it."
            )


def _config_from_dict(saved: dict) -> SwapConfig:
    known = {f.name for f in fields(SwapConfig)}
    return SwapConfig(**{k: v for k, v in saved.items() if k in known})


class _BothDecoders(torch.nn.Module):
    """One forward for a step (shared encoder, then each half to its decoder), so DistributedDataParallel can wrap it."""

    def __init__(self, model: FaceSwapAutoencoder):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor, n_a: int):
        code = self.model.encoder(inputs)  # A and B share the encoder: one pass for both halves
        return self.model.decoders["A"](code[:n_a]), self.model.decoders["B"](code[n_a:])


class SwapTrainer:
    """What is the swap's own: its data, its step, its state and its pictures. `helpers.train.fit` runs the loop."""

    picture_dirs = ("previews",)
    timelapse_dir = "previews"

    def __init__(self, cfg: SwapConfig, faces_a, faces_b, folder: str | os.PathLike, device: torch.device | str | None = None):
        self.cfg, self.folder, self.device = cfg, Path(folder), pick_device(device)
        device = self.device
        self.dtype = autocast_dtype(device, cfg.amp)
        self.channels_last = use_channels_last(device, cfg.channels_last)
        enable_tf32(device)
        faces = {"A": as_face_tensor(faces_a, cfg.size, device, cfg.max_faces),
                 "B": as_face_tensor(faces_b, cfg.size, device, cfg.max_faces)}
        self.train_faces, self.heldout_faces = {}, {}
        for k, x in faces.items():
            tr, ho = split_holdout(len(x), cfg.holdout, _split_seed(cfg, k))
            self.train_faces[k], self.heldout_faces[k] = x[tr.to(device)], x[ho.to(device)]
        self.preview = {k: self._fixed_faces(k) for k in IDENTITIES}

        torch.manual_seed(cfg.seed)  # the initial weights, the same on every rank
        self.model = FaceSwapAutoencoder(spec_for(cfg.model, cfg.size)).to(device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward = _BothDecoders(self.model)
        if world_size() > 1:
            self.forward = torch.nn.parallel.DistributedDataParallel(self.forward, device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizer = make_adam(self.model.parameters(), device, cfg.lr, (cfg.beta1, cfg.beta2))
        self.scaler = make_scaler(device, self.dtype)
        self.generator = torch.Generator().manual_seed(cfg.seed)  # data order and augmentation, on the CPU
        self.samplers = {k: EpochSampler(len(self.train_faces[k]), cfg.batch_size, self.generator) for k in IDENTITIES}
        self.hooks = identity_hooks(self)  # swap success every identity_every steps, where the judge is installed
        self.step = 0
        self.loss_sum = torch.zeros(2, device=device)  # train L1 of A and B since the last log line
        self.loss_count = 0
        self.images_since = 0
        self.elapsed = 0.0

    @property
    def total_steps(self) -> int:
        return self.cfg.steps

    def _fixed_faces(self, k: str) -> torch.Tensor:
        """Held-out faces when there are enough (shows generalisation), else training faces."""
        pool = self.heldout_faces[k] if len(self.heldout_faces[k]) >= self.cfg.preview_faces else self.train_faces[k]
        idx = torch.linspace(0, len(pool) - 1, min(self.cfg.preview_faces, len(pool))).round().long()
        return pool[idx.to(pool.device)]

    # -- checkpoint

    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "config": asdict(self.cfg),
            "data": {"generator": self.generator.get_state(),
                     "samplers": {k: s.state_dict() for k, s in self.samplers.items()},
                     "world_size": world_size()},
            "log": {"loss_sum": self.loss_sum.detach().cpu(), "loss_count": self.loss_count, "elapsed": self.elapsed},
        }

    def inference_state(self) -> dict:
        """What a milestone keeps: the weights and the config (helpers.checkpoint stores them in half precision)."""
        return {"model": self.model.state_dict(), "config": asdict(self.cfg)}

    def load_state(self, state: dict) -> None:
        _check_same_architecture(state["config"], self.cfg, self.folder)
        self.model.load_state_dict(state["model"])
        self.step = int(state["step"])
        if "optimizer" not in state:  # a shared weights-only checkpoint: fresh optimizer and data order
            return
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # a changed learning rate in the config wins
            group["lr"], group["betas"] = self.cfg.lr, (self.cfg.beta1, self.cfg.beta2)
        if "scaler" in state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        data = state.get("data", {})
        try:
            self.generator.set_state(data["generator"])
            for k, s in self.samplers.items():
                s.load_state_dict(data["samplers"][k])
        except (KeyError, ValueError):
            warnings.warn("The face folders changed since the checkpoint: training continues with a new data order.", stacklevel=3)
        if state["config"].get("batch_size") != self.cfg.batch_size:
            warnings.warn("batch_size differs from the checkpoint's: training continues, but not batch for batch.", stacklevel=3)
        # Every rank draws the whole batch from the same generator and takes its slice, so another
        # world size continues the same data order; only the order of floating-point sums differs.
        log = state.get("log", {})
        self.loss_sum = log.get("loss_sum", torch.zeros(2)).to(self.device)
        self.loss_count, self.elapsed = int(log.get("loss_count", 0)), float(log.get("elapsed", 0.0))

    # -- one step

    def train_step(self) -> None:
        cfg, b = self.cfg, self.cfg.batch_size
        idx = torch.cat([self.samplers["A"].next(), self.samplers["B"].next()]).to(self.device, non_blocking=True)
        batch = torch.cat([self.train_faces["A"][idx[:b]], self.train_faces["B"][idx[b:]]])
        inputs, targets = augment(batch, self.generator, cfg.warp, cfg.rotate, cfg.zoom, cfg.shift, cfg.flip)
        if cfg.colour_match:
            shift = colour_shift(targets[:b], targets[b:])
            inputs = torch.cat([(inputs[:b] + shift).clamp(0, 1), inputs[b:]])
            targets = torch.cat([(targets[:b] + shift).clamp(0, 1), targets[b:]])
        if world_size() > 1:  # this rank's share of each identity's half
            part = rank_slice(b)
            inputs = torch.cat([inputs[:b][part], inputs[b:][part]])
            targets = torch.cat([targets[:b][part], targets[b:][part]])
        n_a = len(inputs) // 2
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.dtype):
            out_a, out_b = self.forward(inputs, n_a)
        loss_a, l1_a = reconstruction_loss(out_a, targets[:n_a], cfg.ssim_weight)
        loss_b, l1_b = reconstruction_loss(out_b, targets[n_a:], cfg.ssim_weight)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss_a + loss_b).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.loss_sum += torch.stack([l1_a, l1_b]).detach()  # no .item(): the GPU keeps running ahead
        self.loss_count += 1
        self.images_since += 2 * b
        self.step += 1

    # -- watching

    def pending_losses(self) -> torch.Tensor:
        return self.loss_sum

    @torch.no_grad()
    def heldout_l1(self) -> dict[str, float]:
        """L1 of each decoder reconstructing its own held-out faces (straight, not warped)."""
        self.model.eval()
        out = {}
        for k in IDENTITIES:
            faces = self.heldout_faces[k][: self.cfg.eval_faces]
            if not len(faces):
                out[k] = float("nan")
                continue
            total = 0.0
            for chunk in faces.split(64):
                x = chunk.float() / 255
                with autocast(self.device, self.dtype):
                    y = self.model(x.contiguous(memory_format=torch.channels_last) if self.channels_last else x, k)
                total += (y.float() - x).abs().mean(dim=(1, 2, 3)).sum().item()
            out[k] = total / len(faces)
        self.model.train()
        return out

    def log_row(self, seconds: float) -> dict:
        """Mean train L1 since the last row, held-out L1 now, speed and training minutes so far."""
        train = (self.loss_sum / max(self.loss_count, 1)).tolist() if self.loss_count else [float("nan")] * 2
        held = self.heldout_l1()
        images_per_s = self.images_since / seconds if self.images_since and seconds > 0 else 0.0
        self.elapsed += seconds if self.step else 0.0
        self.loss_sum.zero_()
        self.loss_count = self.images_since = 0
        return {"step": self.step, "train_A": f"{train[0]:.6f}", "train_B": f"{train[1]:.6f}",
                "heldout_A": f"{held['A']:.6f}", "heldout_B": f"{held['B']:.6f}",
                "images_per_s": f"{images_per_s:.1f}", "minutes": f"{self.elapsed / 60:.2f}"}

    def pictures(self) -> dict:
        """The preview grid of this step (also the timelapse's frame)."""
        grid = preview_grid(self.model, self.preview["A"], self.preview["B"], self.dtype, self.step)
        return {f"previews/step-{self.step:09d}.png": grid}


def train_swap(
    cfg: SwapConfig,
    faces_a,
    faces_b,
    folder: str | os.PathLike,
    device: torch.device | str | None = None,
    progress: bool = True,
    show: bool = False,
    stop_after: int | None = None,
    callback: Callable[[int, SwapTrainer], None] | None = None,
) -> RunResult:
    """Train (or continue training) the swap model on faces of A and B until `cfg.steps`.

    `faces_a`/`faces_b` are face folders (aligned crops from notebook 02) or uint8
    (N,H,W,3) arrays. Run it again with the same folder and it resumes from the
    newest checkpoint. Ctrl-C (or the notebook's stop button) saves and returns;
    so does `stop_after` steps in this call (a session budget). `show` updates a
    preview and the loss numbers in the notebook while training. Under torchrun
    each process trains on its share of every batch (see `python -m helpers.swap --help`).
    """
    device = init_distributed(device)
    threads = torch.get_num_threads()
    if device.type == "cpu" and cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)
    try:
        trainer = SwapTrainer(cfg, faces_a, faces_b, folder, device)
        run = fit(trainer, steps=stop_after, progress=progress, show=show, callback=callback, name="swap")
    finally:
        torch.set_num_threads(threads)
    if is_main() and run.log.exists():  # loss.png, for the lesson and for a look at a run folder
        import matplotlib.pyplot as plt

        plt.close(plot_log(run.folder))
    return run


SwapRun = RunResult  # the name train_swap's result had before helpers.train


# ---------------------------------------------------------------- swapping

# Inference (the Swapper, loading, a shared checkpoint) lives in helpers.facemodel, shared with U-GAT-IT.
from .facemodel import Swapper, load_swapper  # noqa: E402,F401
from .facemodel import fetch_shared_swap as fetch_shared_checkpoint  # noqa: E402,F401
from .facemodel import resize_faces as _resize  # noqa: E402,F401


def checkpoint_config(folder: str | os.PathLike) -> SwapConfig | None:
    """The SwapConfig saved with the newest swap checkpoint in `folder`, or None when there is none.

    It lives here, not in helpers.facemodel, because only this module knows SwapConfig (facemodel imports no trainer).
    """
    from .checkpoint import load_latest

    state = load_latest(folder, "cpu")
    return None if state is None else _config_from_dict(state.get("config", {}))


# ---------------------------------------------------------------- command line

def main(argv=None) -> None:
    """python -m helpers.swap --faces-a DIR --faces-b DIR --run-dir DIR [--quick] [--set steps=20000 ...]

    Data-parallel on several GPUs (or CPU processes, on gloo):
    torchrun --nproc_per_node 2 -m helpers.swap --faces-a ... --faces-b ... --run-dir ...
    Each process takes its share of every batch (batch_size must divide by the process count).
    """
    from .train import run_command_line

    def arguments(parser):
        parser.add_argument("--faces-a", required=True, help="face folder of identity A (notebook 02's aligned crops)")
        parser.add_argument("--faces-b", required=True, help="face folder of identity B")
        parser.add_argument("--run-dir", "--run", dest="run", required=True, help="run folder: checkpoints, log.csv, previews (resumed when it has them)")

    def train(args, cfg):
        return train_swap(cfg, args.faces_a, args.faces_b, args.run, device=args.device, stop_after=args.steps_this_run)

    run_command_line("Train the autoencoder face swap (lesson 03).", SwapConfig, arguments, train, "steps", argv)


if __name__ == "__main__":
    main()
