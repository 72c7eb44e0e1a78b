"""How long does a full checkpoint take to write and read back?

Matters because the trainers save every few minutes: a save must cost seconds,
not a noticeable share of training time.

    python bench/bench_checkpoint.py --mb 200
"""

import argparse
import tempfile

import torch

from helpers.bench import peak_memory_mb, record, time_runs, write_table
from helpers.checkpoint import load_latest, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100, help="size of the state to save, MiB")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    state = {"model": {"w": torch.randn(args.mb * 2**20 // 4)}}
    settings = {"state_mib": args.mb}
    with tempfile.TemporaryDirectory() as tmp:
        step = iter(range(1, 10**6))
        save = time_runs(lambda: save_checkpoint(tmp, next(step), state, keep_last=2), repeat=args.repeat)
        record("checkpoint save (atomic, fsync)", settings, save, items_per_run=args.mb, unit="MiB/s", peak_mb=peak_memory_mb("cpu"))
        load = time_runs(lambda: load_latest(tmp), repeat=args.repeat)
        record("checkpoint load (weights_only)", settings, load, items_per_run=args.mb, unit="MiB/s", peak_mb=peak_memory_mb("cpu"))
    write_table()


if __name__ == "__main__":
    main()
