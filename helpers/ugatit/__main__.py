"""python -m helpers.ugatit: train U-GAT-IT from the command line (and under torchrun)."""

from __future__ import annotations

from .config import UGATITConfig
from .trainer import Trainer


def main(argv=None):
    """python -m helpers.ugatit --faces ROOT --run-dir DIR [--quick] [--set domain_a="('selfie',)" --set iterations=300000 ...]

    Data-parallel: torchrun --nproc_per_node 2 -m helpers.ugatit ... (batch_size must divide by the process count).
    """
    from ..train import is_main, run_command_line

    def arguments(parser):
        parser.add_argument("--faces", required=True, help="the faces root: one folder per name in domain_a and domain_b")
        parser.add_argument("--run-dir", "--run", dest="run", required=True, help="run folder: checkpoints, log.csv, samples (resumed when it has them)")

    def train(args, cfg):
        return Trainer(cfg, args.faces, args.run, args.device, quiet=not is_main()).train(steps=args.steps_this_run)

    return run_command_line("Train U-GAT-IT (lesson 04).", UGATITConfig, arguments, train, steps_field="iterations", argv=argv)


if __name__ == "__main__":
    main()
