"""Benchmark conventions: measure a function, print one JSON line, keep the latest table.

Each benchmark script in `bench/` times its work with `time_runs`, then calls
`record`, which prints a JSON line and appends it to `bench/results.jsonl`.
`write_table` rebuilds the table in BENCHMARKS.md from the newest line per
(benchmark, device, settings). Speed is never asserted in tests.
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results.jsonl"
TABLE = REPO / "BENCHMARKS.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def device_name(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def synchronize(device: torch.device | str) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def reset_peak_memory(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device | str) -> float:
    """Peak GPU memory allocated by torch, or the process's peak resident set on CPU."""
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def time_runs(fn: Callable[[], object], repeat: int = 5, warmup: int = 1, device: torch.device | str = "cpu") -> list[float]:
    """Wall-clock seconds of `repeat` calls after `warmup` calls, synchronising the device around each."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return times


def record(
    what: str,
    settings: dict,
    seconds: list[float],
    device: torch.device | str = "cpu",
    items_per_run: float | None = None,
    unit: str = "items/s",
    peak_mb: float | None = None,
    results: Path = RESULTS,
) -> dict:
    """Print and append one measurement: median seconds per run, throughput, peak memory."""
    median = statistics.median(seconds)
    row = {
        "what": what,
        "device": device_name(device),
        "settings": settings,
        "runs": len(seconds),
        "median_s": round(median, 6),
        "throughput": round(items_per_run / median, 3) if items_per_run else None,
        "unit": unit if items_per_run else None,
        "peak_mb": round(peak_mb, 1) if peak_mb is not None else None,
        "torch": torch.__version__,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
    line = json.dumps(row, sort_keys=True)
    print(line)
    results.parent.mkdir(parents=True, exist_ok=True)
    with open(results, "a") as f:
        f.write(line + "\n")
    return row


def latest_rows(results: Path = RESULTS) -> list[dict]:
    """The newest row per (what, device, settings), in first-seen order."""
    rows: dict[tuple, dict] = {}
    if results.exists():
        for line in results.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[(row["what"], row["device"], json.dumps(row["settings"], sort_keys=True))] = row
    return list(rows.values())


def render_table(rows: list[dict]) -> str:
    lines = ["| benchmark | device | settings | median s/run | throughput | peak MiB | date |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        settings = ", ".join(f"{k}={v}" for k, v in r["settings"].items())
        tput = f"{r['throughput']} {r['unit']}" if r.get("throughput") else ""
        peak = "" if r.get("peak_mb") is None else f"{r['peak_mb']:.0f}"
        lines.append(f"| {r['what']} | {r['device']} | {settings} | {r['median_s']:.4f} | {tput} | {peak} | {r['date']} |")
    return "\n".join(lines)


def write_block(begin: str, end: str, block: str, table: Path = TABLE) -> None:
    """Put `block` between the markers `begin` and `end` in BENCHMARKS.md, replacing what was there;
    a block the file does not have yet goes at its end. The rest of the file is the people's, untouched."""
    text = table.read_text() if table.exists() else "# Benchmarks\n"
    if begin in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        table.write_text(f"{head}{begin}\n{block}\n{end}{tail}")
    else:
        table.write_text(f"{text.rstrip()}\n\n{begin}\n{block}\n{end}\n")


def write_table(results: Path = RESULTS, table: Path = TABLE) -> None:
    """Replace the generated block of BENCHMARKS.md with the latest results."""
    write_block(BEGIN, END, render_table(latest_rows(results)), table)
