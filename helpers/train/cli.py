"""Training outside the notebooks: a trainer's command line (python -m helpers.swap / helpers.ugatit, torchrun)."""

from __future__ import annotations

from typing import Callable


def command_line(description: str, config_class, add_arguments: Callable, argv=None):
    """Parse a trainer's command line: its own arguments plus --quick, --set key=value and --device.

    `--set` takes any config field (`--set steps=5000 --set lr=1e-4`); values are
    read as Python literals where they parse (numbers, True, None, tuples), else as text.
    """
    import argparse
    import ast
    from dataclasses import fields

    parser = argparse.ArgumentParser(description=description)
    add_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="start from the config's quick() preset (a CPU smoke run)")
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
    cfg = config_class.quick(**overrides) if args.quick else config_class(**overrides)
    return args, cfg


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
