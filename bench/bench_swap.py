"""How fast does the face-swap autoencoder train, the classic way and ours?

(a) baseline: the classic recipe — every face warped one at a time with
    NumPy/OpenCV in DataLoader workers, the model in fp32 eager NCHW, A and B as
    two separate autoencoder steps with their own Adam (as the 2017 original).
(b) ours: helpers.swap's step — one batched grid_sample warp on the device,
    A and B through the shared encoder in one pass, fused Adam, bf16 autocast
    and channels-last where `SwapConfig`'s "auto" picks them.

Both count images per second (A + B) and peak memory (torch's peak allocation on
a GPU, the process's peak resident set on a CPU; each variant runs in its own
process so the peaks do not mix). The faces are random pixels: speed does not
depend on what is in them.

    python bench/bench_swap.py --device cpu --steps 8 --batch 8
    python bench/bench_swap.py --device cuda --steps 50 --batch 32 --workers 4
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from helpers.bench import peak_memory_mb, record, reset_peak_memory, time_runs, write_table

VARIANTS = ("baseline", "ours")


def random_faces(n: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# ---------------------------------------------------------------- (a) the classic per-image pipeline

def classic_augment(face: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One face, the classic way: warpAffine for rotate/zoom/shift, a flip, then a remap with a jittered 5x5 grid."""
    s = face.shape[0]
    m = cv2.getRotationMatrix2D((s / 2, s / 2), rng.uniform(-10, 10), rng.uniform(0.95, 1.05))
    m[:, 2] += rng.uniform(-0.05, 0.05, 2) * s
    target = cv2.warpAffine(face, m, (s, s), borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.5:
        target = target[:, ::-1]
    points = np.linspace(0, s - 1, 5, dtype=np.float32)
    gx, gy = np.meshgrid(points, points)
    jitter = rng.normal(0, 0.125 * (s - 1) / 4, (2, 5, 5)).astype(np.float32)
    jitter[:, [0, -1], :] = 0
    jitter[:, :, [0, -1]] = 0
    map_x = cv2.resize(gx + jitter[0], (s, s), interpolation=cv2.INTER_CUBIC)
    map_y = cv2.resize(gy + jitter[1], (s, s), interpolation=cv2.INTER_CUBIC)
    warped = cv2.remap(np.ascontiguousarray(target), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped, np.ascontiguousarray(target)


class ClassicFaces(torch.utils.data.Dataset):
    def __init__(self, faces: np.ndarray):
        self.faces = faces

    def __len__(self):
        return len(self.faces)

    def __getitem__(self, i):
        rng = np.random.default_rng((torch.initial_seed() + i) % 2**32)
        warped, target = classic_augment(self.faces[i], rng)
        to_tensor = lambda im: torch.from_numpy(im).permute(2, 0, 1).float() / 255  # noqa: E731
        return to_tensor(warped), to_tensor(target)


def endless(loader):
    while True:
        yield from loader


def baseline_step_fn(args, device: torch.device):
    from helpers.models.autoencoder import build_autoencoder

    torch.manual_seed(0)
    model = build_autoencoder(args.model, args.size).to(device)
    opts = {k: torch.optim.Adam(list(model.encoder.parameters()) + list(model.decoders[k].parameters()), lr=5e-5, betas=(0.5, 0.999))
            for k in ("A", "B")}
    loaders = {
        k: endless(torch.utils.data.DataLoader(
            ClassicFaces(random_faces(args.faces, args.size, seed)), batch_size=args.batch, shuffle=True, drop_last=True,
            num_workers=args.workers, pin_memory=device.type == "cuda", persistent_workers=args.workers > 0))
        for seed, k in enumerate(("A", "B"))
    }

    def step():
        for k in ("A", "B"):  # the original trains autoencoder A, then autoencoder B
            warped, target = next(loaders[k])
            warped, target = warped.to(device, non_blocking=True), target.to(device, non_blocking=True)
            loss = (model(warped, k) - target).abs().mean()
            opts[k].zero_grad(set_to_none=True)
            loss.backward()
            opts[k].step()

    return step


# ---------------------------------------------------------------- (b) ours

def ours_step_fn(args, device: torch.device):
    from helpers.swap import SwapConfig, SwapTrainer

    cfg = SwapConfig(model=args.model, size=args.size, batch_size=args.batch, channels_last=args.channels_last, amp=args.amp)
    faces = [random_faces(args.faces, args.size, seed) for seed in (0, 1)]
    trainer = SwapTrainer(cfg, faces[0], faces[1], Path("."), device)
    return trainer.train_step


def run_variant(args) -> None:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    step = baseline_step_fn(args, device) if args.variant == "baseline" else ours_step_fn(args, device)
    reset_peak_memory(device)
    seconds = time_runs(step, repeat=args.steps, warmup=args.warmup, device=device)
    settings = {"model": args.model, "size": args.size, "batch": f"{args.batch}+{args.batch}", "steps": args.steps}
    if args.threads:
        settings["threads"] = args.threads
    if args.variant == "baseline":
        what = "swap train step (a) baseline: per-image OpenCV warp in DataLoader, fp32 eager"
        settings["workers"] = args.workers
    else:
        what = "swap train step (b) ours: batched on-device warp, joint A+B pass, fused Adam"
        settings.update(amp=args.amp, channels_last=args.channels_last)
    record(what, settings, seconds, device, items_per_run=2 * args.batch, unit="images/s", peak_mb=peak_memory_mb(device))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per variant")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8, help="faces per identity per step")
    parser.add_argument("--model", default="classic", help="classic | lowmem | tiny")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--faces", type=int, default=256, help="faces per identity held in memory")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the baseline")
    parser.add_argument("--amp", default="auto", help="ours: auto | bf16 | fp16 | off")
    parser.add_argument("--channels-last", default="auto", help="ours: auto | on | off")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--variant", choices=VARIANTS, help="run one variant in this process (used internally)")
    args = parser.parse_args()
    if args.variant:
        run_variant(args)
        return
    for variant in VARIANTS:  # a fresh process each, so the CPU peak memory is that variant's own
        subprocess.run([sys.executable, *sys.argv, "--variant", variant], check=True)
    write_table()


if __name__ == "__main__":
    main()
