"""How fast does lesson 05 render a video, end to end, and where does the time go?

Matters because a render should run at least in real time on a GPU (24 fps
at 720p), and on a CPU you want to know which stage to shrink first.

The input is the man's selfie clip (sample B), scaled to each size, with a
sound track. The model is the swap autoencoder of notebook 03 (untrained
weights cost the same time as trained ones), or a trained checkpoint with
--checkpoint. Stages: decode, detect (detection, tracking, smoothing,
alignment), model, blend (colour transfer, mask, paste back), encode (label,
H.264, audio).

    python bench/bench_render.py                       # CPU, 640x360 and 1280x720, 2 s clips
    python bench/bench_render.py --device cuda --seconds 10
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import torch

from helpers.bench import peak_memory_mb, record, reset_peak_memory, synchronize, write_table
from helpers.render import STAGES, render_video
from helpers.samples import fetch_samples
from helpers.video import iter_frames, write_clip


def make_clip(folder: Path, width: int, height: int, seconds: float) -> Path:
    """The sample selfie clip at this size (looped if needed), with a tone as its sound track."""
    src = fetch_samples(folder / "samples")["man.mp4"]
    frames = [f for f in iter_frames(src)]
    fps = 30.0
    n = int(round(seconds * fps))
    images = [cv2.resize(frames[i % len(frames)].image, (width, height), interpolation=cv2.INTER_LINEAR) for i in range(n)]
    return write_clip(folder / f"clip_{width}x{height}.mp4", images, fps=fps, tone_hz=220)


def make_face_fn(args, device):
    """The swap model of notebook 03 as a face function: trained if --checkpoint is given, else fresh weights."""
    if args.model == "none":  # the pipeline alone: what is left once the model is free
        return (lambda faces: faces), "none"
    from helpers.swap import Swapper, load_swapper

    if args.checkpoint:
        swapper = load_swapper(args.checkpoint, device)
    else:
        from helpers.models.autoencoder import build_autoencoder

        swapper = Swapper(build_autoencoder(args.model, args.model_size), device)
    return lambda faces: swapper.swap(faces, to="A"), f"{args.model}{swapper.size}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", nargs="+", default=["640x360", "1280x720"])
    parser.add_argument("--seconds", type=float, default=2.0, help="clip length")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8, help="frames per model batch")
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--model", default="classic", help="classic | lowmem | tiny | none (no model)")
    parser.add_argument("--model-size", type=int, default=64)
    parser.add_argument("--checkpoint", default=None, help="a swap checkpoint folder (default: untrained weights)")
    args = parser.parse_args()
    device = torch.device(args.device)
    face_fn, model_name = make_face_fn(args, device)

    from helpers.faces import make_detector

    detector = make_detector(args.detector, device=device)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            width, height = (int(v) for v in size.lower().split("x"))
            clip = make_clip(Path(tmp), width, height, args.seconds)
            render_video(clip, Path(tmp) / "warmup.mp4", face_fn, detector=detector, batch_size=args.batch,
                         max_frames=args.batch, progress=False)
            reset_peak_memory(device)
            walls, stages, frames = [], {s: [] for s in STAGES}, 0
            for _ in range(args.repeat):
                synchronize(device)
                t0 = time.perf_counter()
                report = render_video(clip, Path(tmp) / "out.mp4", face_fn, detector=detector,
                                      batch_size=args.batch, progress=False)
                synchronize(device)
                walls.append(time.perf_counter() - t0)
                frames = report.frames
                for s in STAGES:
                    stages[s].append(report.timings[s])
            settings = {"size": size, "frames": frames, "model": model_name, "detector": args.detector,
                        "batch": args.batch}
            peak = peak_memory_mb(device)
            record("render video end to end", settings, walls, device, items_per_run=frames, unit="frames/s", peak_mb=peak)
            for s in STAGES:
                if s == "model" and model_name == "none":
                    continue
                record(f"render stage: {s}", settings, stages[s], device, items_per_run=frames, unit="frames/s")
            split = ", ".join(f"{s} {100 * statistics.median(stages[s]) / statistics.median(walls):.0f}%" for s in STAGES)
            print(f"{size}: {frames / statistics.median(walls):.1f} fps end to end; time split: {split}")
    write_table()


if __name__ == "__main__":
    main()
