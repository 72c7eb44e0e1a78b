"""How long does a full checkpoint take to write and read back, and how big are the course's checkpoints?

Matters because the trainers save every few minutes: a save must cost seconds,
not a noticeable share of training time. And in Colab the checkpoints live on
Google Drive (15 GB free): the size table says what a default run leaves there.

    python bench/bench_checkpoint.py --mb 200          # save / load speed
    python bench/bench_checkpoint.py --sizes           # size per model (README table), no disk needed
"""

import argparse
import tempfile

import torch

from helpers.bench import peak_memory_mb, record, time_runs, write_table
from helpers.checkpoint import estimate_size, load_latest, save_checkpoint
from helpers.storage import human_size

GiB = 2**30


# ---------------------------------------------------------------- sizes

def swap_parts(variant: str, size: int):
    from helpers.models.autoencoder import FaceSwapAutoencoder, spec_for

    model = FaceSwapAutoencoder(spec_for(variant, size))
    return {"model": model}, {"model": model}  # all of it trains; inference needs the encoder and both decoders


def ugatit_parts(light: bool, img_size: int):
    from helpers.models.ugatit import build_networks

    nets = build_networks(img_size, light)
    return dict(nets), {name: nets[name] for name in ("genA2B", "genB2A")}  # inference: the generators only


MODELS = {  # name: (build on the meta device, the lesson's default run: steps, milestone_every)
    "swap classic 64 px": (lambda: swap_parts("classic", 64), (20_000, 5_000)),
    "swap classic 128 px": (lambda: swap_parts("classic", 128), (20_000, 5_000)),
    "U-GAT-IT light 256 px": (lambda: ugatit_parts(True, 256), (300_000, 100_000)),
    "U-GAT-IT full 256 px": (lambda: ugatit_parts(False, 256), (300_000, 100_000)),
}


def state_bytes(modules: dict, dtype_bytes: int | None = None) -> int:
    """Bytes of the modules' state dicts; `dtype_bytes` overrides the size of floating tensors (2 = float16)."""
    total = 0
    for m in modules.values():
        for t in m.state_dict().values():
            size = dtype_bytes if dtype_bytes and t.is_floating_point() else t.element_size()
            total += t.numel() * size + 512
    return total + 64 * 1024


def full_and_inference_bytes(build) -> tuple[int, int]:
    """Full training state (weights + Adam's two moments) and the half-precision inference milestone."""
    with torch.device("meta"):  # shapes only: the full U-GAT-IT would need 7 GiB of memory
        train, infer = build()
    adam = sum(2 * p.numel() * 4 + 512 for m in train.values() for p in m.parameters() if p.requires_grad)
    return state_bytes(train) + adam, state_bytes(infer, dtype_bytes=2)


def measured_full_bytes(build) -> int:
    """The real size of a saved full state (weights + Adam after one step), counted without touching a disk."""
    train, _ = build()
    params = [p for m in train.values() for p in m.parameters()]
    opt = torch.optim.Adam(params)
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    counter = _Counter()
    torch.save({"model": {k: m.state_dict() for k, m in train.items()}, "optimizer": opt.state_dict()}, counter)
    return counter.n


class _Counter:
    def __init__(self):
        self.n = 0

    def write(self, b) -> int:
        self.n += len(b)
        return len(b)

    def flush(self):
        pass


def size_table(verify: bool, keep_last: int = 2) -> str:
    lines = [
        "| model | full state (resume) | weights milestone (fp16, inference) | default run | on Drive before: kept + trash | on Drive now: kept (peak during a save) |",
        "|---|---|---|---|---|---|",
    ]
    for name, (build, (steps, milestone_every)) in MODELS.items():
        full, weights = full_and_inference_bytes(build)
        if verify and full < 2 * GiB:
            real = measured_full_bytes(build)
            assert abs(real - full) < 0.01 * full, (name, real, full)
        saves = steps // 1000  # save_every 1000 steps (the 10-minute saves come on top)
        milestones = steps // milestone_every
        before_kept = (3 + milestones - 1) * full  # keep_last 3; the last milestone is among the last 3
        before_trash = (saves - 3 - milestones + 1) * full  # deleted files kept counting for 30 days
        now_kept = keep_last * full + milestones * weights  # fp16 milestones, deleted files emptied
        lines.append(
            f"| {name} | {human_size(full)} | {human_size(weights)} | {steps:,} steps, {saves} saves, {milestones} milestones "
            f"| {human_size(before_kept)} + {human_size(before_trash)} | {human_size(now_kept)} ({human_size(now_kept + full)}) |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- speed

def speed(mb: int, repeat: int) -> None:
    state = {"model": {"w": torch.randn(mb * 2**20 // 4)}}
    settings = {"state_mib": mb}
    assert estimate_size(state) >= mb * 2**20
    with tempfile.TemporaryDirectory() as tmp:
        step = iter(range(1, 10**6))
        save = time_runs(lambda: save_checkpoint(tmp, next(step), state, keep_last=2), repeat=repeat)
        record("checkpoint save (atomic, fsync)", settings, save, items_per_run=mb, unit="MiB/s", peak_mb=peak_memory_mb("cpu"))
        load = time_runs(lambda: load_latest(tmp), repeat=repeat)
        record("checkpoint load (weights_only)", settings, load, items_per_run=mb, unit="MiB/s", peak_mb=peak_memory_mb("cpu"))
    write_table()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100, help="size of the state to save, MiB")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", action="store_true", help="print the checkpoint size table instead (README)")
    parser.add_argument("--keep-last", type=int, default=2, help="with --sizes: full-state checkpoints kept")
    parser.add_argument("--no-verify", action="store_true", help="with --sizes: skip checking the count against a real save")
    args = parser.parse_args()
    if args.sizes:
        print(size_table(verify=not args.no_verify, keep_last=args.keep_last))
    else:
        speed(args.mb, args.repeat)


if __name__ == "__main__":
    main()
