"""Do the laptop presets deliver? The curves of a laptop run, from its own logs, into BENCHMARKS.md.

A preset's promise is a result within a time: a swap that an independent
recognizer takes for the target within about half an hour on two CPU cores,
and a U-GAT-IT whose KID falls within two hours. This script reads what a
run wrote as it trained (log.csv with the training minutes, identity.csv,
kid.csv), so the figures are the run's own, not a re-run's:

    python -m helpers.swap --preset laptop --faces-a W/faces/woman --faces-b W/faces/man --run-dir W/checkpoints/swap-laptop
    python -m helpers.ugatit --preset laptop --faces W/faces --run-dir W/checkpoints/ugatit-laptop
    python bench/bench_laptop.py --swap W/checkpoints/swap-laptop --ugatit W/checkpoints/ugatit-laptop --note "..."

(`python -m helpers.course results` runs both and writes assets/results/.)
It records the speed rows in the usual table and rewrites the "laptop
presets" section of BENCHMARKS.md with the curves.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from helpers.bench import device_name, record, write_block, write_table
from helpers.viz import read_log

BEGIN, END = "<!-- laptop:begin -->", "<!-- laptop:end -->"


def swap_curve(run: Path) -> tuple[list[str], dict]:
    """Rows of (step, minutes, A->B taken, B->A taken, distances) and the run's speed."""
    log, ids = read_log(run / "log.csv"), read_log(run / "identity.csv")
    minutes = np.interp(ids["step"], log["step"], log["minutes"])
    lines = ["| step | training minutes | A->B taken for B | B->A taken for A | mean distance A->B / B->A |", "|---|---|---|---|---|"]
    for i, step in enumerate(ids["step"]):
        lines.append(f"| {int(step):,} | {minutes[i]:.1f} | {ids['taken_A2B'][i]:.0%} | {ids['taken_B2A'][i]:.0%} | "
                     f"{ids['distance_A2B'][i]:.3f} / {ids['distance_B2A'][i]:.3f} |")
    good = [min(a, b) >= 0.95 for a, b in zip(ids["taken_A2B"], ids["taken_B2A"])]
    first_good = next((int(s) for s, g in zip(ids["step"], good) if g), None)
    # the step from which every later evaluation stays at 95 % or more (a curve can dip after its first success)
    stays_good = next((int(ids["step"][i]) for i in range(len(good)) if all(good[i:])), None)
    speed = {"steps": int(log["step"][-1]), "minutes": float(log["minutes"][-1]), "first_step_at_95": first_good,
             "stays_at_95_from": stays_good}
    return lines, speed


def ugatit_curve(run: Path, untranslated: float | None = None) -> tuple[list[str], dict]:
    """Rows of (step, KID) and the run's speed; `untranslated` (or kid.csv's own column) is the selfies' KID as they are."""
    kid = read_log(run / "kid.csv")
    log = read_log(run / "log.csv")
    column = next(c for c in kid if c.startswith("kid_") and not c.endswith(("_std", "_untranslated")))
    if column + "_untranslated" in kid:
        untranslated = float(kid[column + "_untranslated"][-1])
    lines = [f"| step | {column} (lower is better) |", "|---|---|"]
    lines += [f"| {int(s):,} | {v:.4f} |" for s, v in zip(kid["step"], kid[column])]
    steps = np.diff(np.concatenate([[0.0], log["step"]]))
    minutes = float(np.nansum(steps * log["sec_per_step"])) / 60
    return lines, {"steps": int(log["step"][-1]), "minutes": minutes, "kid_first": float(kid[column][0]),
                   "kid_last": float(kid[column][-1]), "untranslated": untranslated}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swap", type=Path, help="a swap run folder trained with --preset laptop")
    parser.add_argument("--ugatit", type=Path, help="a U-GAT-IT run folder trained with --preset laptop")
    parser.add_argument("--note", default="", help="how the run was made: commit, machine, what else ran on it")
    parser.add_argument("--kid-untranslated", type=float, default=None,
                        help="the untranslated selfies' KID (results.json's ugatit.kid.untranslated) for a kid.csv without that column")
    args = parser.parse_args(argv)
    threads = {"swap": 1, "ugatit": 1}  # the laptop swap preset trains on one thread; the U-GAT-IT run here had one too
    parts = ["## Laptop presets: results against training minutes", "", args.note, ""]
    if args.swap:
        lines, speed = swap_curve(args.swap)
        record("laptop swap preset: training", {"model": "tiny", "size": 64, "batch": "8+8", "steps": speed["steps"]},
               [speed["minutes"] * 60], device="cpu", items_per_run=speed["steps"], unit="steps/s")
        parts += [f"**Swap, `SwapConfig.laptop()`** ({device_name('cpu')}, {threads['swap']} training thread): "
                  f"{speed['steps']:,} steps in {speed['minutes']:.1f} training minutes; both directions first at 95 % "
                  f"or more at step {speed['first_step_at_95']:,}, and at every evaluation from step {speed['stays_at_95_from']:,} on. 'Taken' is the share of held-out swapped faces within "
                  "0.6 of the target's gallery (helpers.identity).", "", *lines, ""]
    if args.ugatit:
        lines, speed = ugatit_curve(args.ugatit, args.kid_untranslated)
        record("laptop U-GAT-IT preset: training", {"light": True, "size": 64, "ch": 16, "steps": speed["steps"]},
               [speed["minutes"] * 60], device="cpu", items_per_run=speed["steps"], unit="steps/s")
        parts += [f"**U-GAT-IT, `UGATITConfig.laptop()`**: {speed['steps']:,} steps in {speed['minutes']:.0f} training "
                  f"minutes; KID {speed['kid_first']:.4f} at the first evaluation, {speed['kid_last']:.4f} at the last"
                  + (f"; the untranslated selfies score {speed['untranslated']:.4f} against the same cartoon faces "
                     "(the line a translation must get under)." if speed["untranslated"] is not None else "."), "",
                  *lines, ""]
    write_table()
    write_block(BEGIN, END, "\n".join(parts).strip())


if __name__ == "__main__":
    main()
