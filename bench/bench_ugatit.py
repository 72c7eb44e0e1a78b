"""U-GAT-IT training speed and memory at 256 px: the official per-step work vs ours.

"reference" is `reference_mode=True`: float32, eager, fakes not detached, the
generators run twice per step, a host read of the losses every step - the work
the official code does. "ours" is the default trainer (one generator pass,
batched calls, bf16/fp16 autocast and fused Adam on a GPU, channels-last,
losses read every N steps; `--compile` adds torch.compile). "ours-1pi" is ours
with one spectral-norm power iteration per batched discriminator call instead
of the official two: the difference is what keeping the official count costs.

Each (model, variant) runs in a fresh process so the peak memory is its own
(CUDA peak allocation, or the process's peak resident set on a CPU).

    python bench/bench_ugatit.py --device cuda --steps 20
    python bench/bench_ugatit.py --device cpu --steps 3 --models light
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from helpers.bench import peak_memory_mb, record, reset_peak_memory, time_runs, write_table  # noqa: E402


def fake_faces(root: Path, size: int) -> Path:
    """Two tiny face folders of noise: the step's cost does not depend on what the pixels show."""
    rng = np.random.default_rng(0)
    for domain in ("a", "b"):
        (root / domain).mkdir(parents=True)
        for i in range(6):
            cv2.imwrite(str(root / domain / f"{i}.png"), rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    return root


def run_one(model: str, variant: str, device: str, steps: int, size: int, compile_: bool) -> dict:
    """Time `steps` training steps of one configuration in this process; return the measurements."""
    from helpers.ugatit import Trainer, UGATITConfig

    if variant == "ours-1pi":  # ours as it was: one power iteration per batched discriminator call, not the official two
        import contextlib

        import helpers.ugatit.trainer

        helpers.ugatit.trainer.official_power_iterations = lambda dis, rows: contextlib.nullcontext()

    cfg = UGATITConfig(
        domain_a=("a",), domain_b=("b",), img_size=size, light=model == "light", holdout=0,
        reference_mode=variant == "reference", compile=compile_ and variant != "reference",
        log_every=10**9, preview_every=0, kid_every=0, save_every=0, save_minutes=0,
    )
    with tempfile.TemporaryDirectory() as tmp:
        faces = fake_faces(Path(tmp) / "faces", size)
        trainer = Trainer(cfg, faces, Path(tmp) / "run", device, resume=False, quiet=True)
        one_step = trainer.train_step  # batches, learning rate and one update of step trainer.step + 1

        reset_peak_memory(device)
        seconds = time_runs(one_step, repeat=steps, warmup=2 if device != "cpu" or compile_ else 1, device=device)
        return {"seconds": seconds, "peak_mb": peak_memory_mb(device), "amp": str(trainer.amp_dtype).replace("torch.", "") if trainer.amp_dtype else "fp32"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per configuration")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--models", default="light,full", help="comma list of light, full")
    parser.add_argument("--variants", default="reference,ours", help="comma list of reference, ours, ours-1pi (ours with one power iteration per D call: what the official count costs)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks in 'ours'")
    parser.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: torch's default); 1 is steadier on a shared machine")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one 'model,variant' and print JSON
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.one:
        model, variant = args.one.split(",")
        print("RESULT " + json.dumps(run_one(model, variant, args.device, args.steps, args.size, args.compile)))
        return

    for model in args.models.split(","):
        for variant in args.variants.split(","):
            cmd = [sys.executable, __file__, "--one", f"{model},{variant}", "--device", args.device, "--steps", str(args.steps), "--size", str(args.size)]
            if args.compile:
                cmd.append("--compile")
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode or not lines:
                print(f"{model}/{variant} failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:] or '?'}")
                continue
            res = json.loads(lines[-1][7:])
            settings = {"model": model, "variant": variant, "px": args.size, "batch": 1, "precision": res["amp"]}
            if args.compile and variant != "reference":
                settings["compile"] = True
            record("ugatit train step", settings, res["seconds"], device=args.device, items_per_run=1, unit="it/s", peak_mb=res["peak_mb"])
    write_table()


if __name__ == "__main__":
    main()
