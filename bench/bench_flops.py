"""How much arithmetic is one training step of each preset? The basis of the README's GPU estimates.

Until a GPU run is recorded, the time a preset needs on a T4 can only be
estimated: the FLOPs of one real training step (our trainers' own
`train_step`, counted by torch.utils.flop_counter: convolutions and matrix
products, forward and backward) divided by a throughput the GPU might
sustain. The count is exact; the throughput is the guess, and the README says so.

    python bench/bench_flops.py            # prints a table and records it in BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_swap import random_faces  # noqa: E402
from bench_ugatit import fake_faces  # noqa: E402

from helpers.bench import write_block  # noqa: E402

BEGIN, END = "<!-- flops:begin -->", "<!-- flops:end -->"


def swap_step_flops(preset: str) -> tuple[float, int]:
    """(FLOPs of one training step, its steps) for lesson 03's preset on the CPU in float32."""
    from helpers.swap import SwapConfig, SwapTrainer
    from helpers.train import from_preset

    cfg = from_preset(SwapConfig, preset)
    faces = [random_faces(2 * cfg.batch_size, cfg.size, seed) for seed in (0, 1)]
    trainer = SwapTrainer(cfg, faces[0], faces[1], Path("."), torch.device("cpu"))
    trainer.train_step()  # warm-up: lazy state is made on the first step
    with FlopCounterMode(display=False) as counter:
        trainer.train_step()
    return counter.get_total_flops(), cfg.steps


def ugatit_step_flops(preset: str, **overrides) -> tuple[float, int]:
    """(FLOPs of one training step, its iterations) for lesson 04's preset on the CPU in float32."""
    from helpers.train import from_preset
    from helpers.ugatit import Trainer, UGATITConfig

    cfg = from_preset(UGATITConfig, preset, **overrides)
    cfg.domain_a, cfg.domain_b, cfg.holdout = ("a",), ("b",), 0
    cfg.kid_every = cfg.preview_every = cfg.save_every = 0
    with tempfile.TemporaryDirectory() as tmp:
        faces = fake_faces(Path(tmp) / "faces", cfg.crop_from)
        trainer = Trainer(cfg, faces, Path(tmp) / "run", "cpu", resume=False, quiet=True)
        trainer.train_step()
        with FlopCounterMode(display=False) as counter:
            trainer.train_step()
    return counter.get_total_flops(), cfg.iterations


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tflops", default="5,15", help="sustained TFLOP/s to estimate with, low,high (a T4 in fp16: a guess)")
    args = parser.parse_args(argv)
    low, high = (float(v) for v in args.tflops.split(","))
    torch.manual_seed(0)
    rows = [
        ("swap, laptop preset (tiny 64 px, 8+8 faces)", *swap_step_flops("laptop")),
        ("swap, full preset (classic 64 px, 32+32 faces)", *swap_step_flops("full")),
        ("U-GAT-IT, laptop preset (light 64 px, ch 16)", *ugatit_step_flops("laptop")),
        # notebook 04's full preset: the light model at 256 px for 300,000 iterations
        ("U-GAT-IT, full preset as lesson 04 runs it (light 256 px, ch 64)", *ugatit_step_flops("full", light=True, iterations=300_000)),
    ]
    lines = [f"| training step | GFLOP per step | steps in the preset | at {low:g}-{high:g} TFLOP/s (estimate) |", "|---|---|---|---|"]
    for name, flops, steps in rows:
        hours = [flops * steps / (t * 1e12) / 3600 for t in (high, low)]
        if hours[1] * 60 < 1:
            span = "under a minute of arithmetic (kernel launches dominate)"
        elif hours[1] < 2:
            span = f"{hours[0] * 60:.0f}-{hours[1] * 60:.0f} min"
        else:
            span = f"{hours[0]:.1f}-{hours[1]:.1f} h"
        lines.append(f"| {name} | {flops / 1e9:,.1f} | {steps:,} | {span} |")
    print("\n".join(lines))
    block = "\n".join(["## Arithmetic per training step (bench/bench_flops.py)", "",
                       "Counted by torch.utils.flop_counter on one real `train_step` of each preset (convolutions and matrix "
                       "products, forward and backward, float32 on the CPU). The last column divides by a throughput a "
                       f"GPU might sustain ({low:g}-{high:g} TFLOP/s, a guess for a T4 in fp16 against its 65 TFLOP/s peak): "
                       "an estimate, not a measurement. Small networks keep a GPU waiting on kernel launches rather "
                       "than arithmetic, so their rows say only that arithmetic is not what limits them.",
                       "", *lines])
    write_block(BEGIN, END, block)


if __name__ == "__main__":
    main()
