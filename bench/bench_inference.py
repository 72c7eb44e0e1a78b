"""Can the swap model itself run faster on a CPU? The same network three ways, faces per second.

Matters because lesson 05's render of the classic 64 px model spends most of its
time in the model (bench_render.py: the "model" stage), so the frame pipeline
around it can only win so much. This asks whether the network can be made
cheaper at inference without changing it (same weights, same output):

    eager          the nn.Module as trained (what helpers.facemodel runs)
    channels_last  weights and input in NHWC, oneDNN's preferred layout
    torchscript    traced, frozen and torch.jit.optimize_for_inference (folded, prepacked)

It also prints what one face costs in arithmetic (torch.utils.flop_counter), so
the figure can be read against what a core can do.

    python bench/bench_inference.py                 # classic 64 px, batch 8 and 16, 1 and 2 threads
    python bench/bench_inference.py --model tiny --batch 8
"""

import argparse
import copy
import warnings

import torch
from torch.utils.flop_counter import FlopCounterMode

from helpers.bench import record, time_runs, write_table
from helpers.models.autoencoder import build_autoencoder


class ToA(torch.nn.Module):
    """The autoencoder with the decoder fixed, as a one-input module TorchScript can trace."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x, "A")


def variants(net, example):
    """name -> a function of a float NCHW batch giving decoder A's faces; `example` is the batch TorchScript traces."""
    layout = copy.deepcopy(net).to(memory_format=torch.channels_last)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        script = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(ToA(net).eval(), example)))
    return {
        "eager": lambda x: net(x, "A"),
        "channels_last": lambda x: layout(x.contiguous(memory_format=torch.channels_last), "A"),
        "torchscript": script,
    }


def gflop_per_face(net, size: int) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.rand(1, 3, size, size), "A")
    return counter.get_total_flops() / 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="classic")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    net = build_autoencoder(args.model, args.size).eval()
    flops = gflop_per_face(net, args.size)
    print(f"{args.model} {args.size} px: {flops:.2f} GFLOP per face")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch in args.batch:
            x = torch.rand(batch, 3, args.size, args.size)
            with torch.no_grad():
                reference = net(x, "A")
            for name, fn in variants(net, x).items():
                with torch.no_grad():
                    assert torch.allclose(fn(x), reference, atol=1e-4), f"{name} changed the output"
                    seconds = time_runs(lambda: fn(x), repeat=args.repeat, warmup=2)
                settings = {"model": f"{args.model}{args.size}", "batch": batch, "threads": threads,
                            "gflop_per_face": round(flops, 2)}
                row = record(f"swap model inference: {name}", settings, seconds, items_per_run=batch, unit="faces/s")
                print(f"  {threads} thread(s), batch {batch}, {name}: {1000 / row['throughput']:.1f} ms per face, "
                      f"{flops * row['throughput']:.0f} GFLOP/s")
    write_table()


if __name__ == "__main__":
    main()
