"""Training outside the notebooks: a trainer's command line (python -m helpers.swap / helpers.ugatit, torchrun)."""

from __future__ import annotations

from typing import Callable


def command_line(description: str, config_class, add_arguments: Callable, argv=None):
    """Parse a trainer's command line: its own arguments plus --preset, --set key=value and --device.

    `--preset quick|laptop|full` starts from the config's classmethod of that name
    (`full` is the plain defaults, the GPU recipe); `--quick` is `--preset quick`.

    `--set` takes any config field (`--set steps=5000 --set lr=1e-4`); values are
    read as Python literals where they parse (numbers, True, None, tuples), else as text.
    """
    import argparse
    import ast
    from dataclasses import fields

    parser = argparse.ArgumentParser(description=description)
    add_arguments(parser)
    parser.add_argument("--preset", choices=PRESETS, default=None,
                        help="quick: a CPU smoke run; laptop: a real result on a laptop's CPU; full: the GPU recipe (default)")
    parser.add_argument("--quick", action="store_true", help="the same as --preset quick")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field (repeatable)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: this rank's GPU under torchrun, else the best there is)")
    parser.add_argument("--steps-this-run", type=int, default=None, help="stop (and save) after this many steps")
    args = parser.parse_args(argv)
    known, overrides = {f.name for f in fields(config_class)}, {}
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or key not in known:
            parser.error(f"--set {item!r}: expected KEY=VALUE with KEY one of {sorted(known)}")
        try:
            overrides[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[key] = text
    if args.quick and args.preset not in (None, "quick"):
        parser.error(f"--quick and --preset {args.preset} ask for two presets: give one")
    cfg = from_preset(config_class, "quick" if args.quick else args.preset or "full", **overrides)
    return args, cfg


PRESETS = ("quick", "laptop", "full")


def from_preset(config_class, preset: str, **overrides):
    """A trainer's config for a preset name: quick() and laptop() are classmethods, full is the defaults."""
    if preset not in PRESETS:
        raise ValueError(f"PRESET must be one of {', '.join(PRESETS)}; got {preset!r}")
    return config_class(**overrides) if preset == "full" else getattr(config_class, preset)(**overrides)


def run_command_line(description: str, config_class, add_arguments: Callable, train: Callable, steps_field: str = "steps",
                     argv=None):
    """A trainer's whole `python -m` entry: parse, train with `train(args, cfg)`, say where it stopped (rank 0), leave the job.

    The torchrun process group is taken down even when training fails, so the other ranks are not left waiting.
    """
    from .distributed import finish_distributed, is_main

    args, cfg = command_line(description, config_class, add_arguments, argv)
    try:
        run = train(args, cfg)
        if is_main():
            print(f"{run.stopped}: step {run.step} of {getattr(cfg, steps_field)} in {run.folder}")
    finally:
        finish_distributed()
    return run
