"""How fast does lesson 05 render a video, end to end, and where does the time go?

Matters because a render should run at least in real time on a GPU (24 fps
at 720p), and on a CPU you want to know which stage to shrink first.

The input is the man's selfie clip (sample B), scaled to each size, with a
sound track; or, with --clip woman, the woman's clip as it is (640x360). The model is the swap autoencoder of notebook 03 (untrained
weights cost the same time as trained ones), or a trained checkpoint with
--checkpoint; --model none is the pipeline alone (a face function that
returns its input). Stages: decode, detect (the detector, picking and
smoothing the face), track (optical flow between detections), align, model,
blend (colour transfer, mask, paste back), encode (label, H.264, audio).

    python bench/bench_render.py                       # CPU, 640x360 and 1280x720, 2 s clips
    python bench/bench_render.py --device cuda --seconds 10
    python bench/bench_render.py --clip woman --frames 120 --model none --repeat 5
    python bench/bench_render.py --detect-every 1      # the detector on every frame, as before issue 18

--tag names the code measured in the settings (e.g. the commit before a change).
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


def clips(args, folder: Path):
    """(size label, clip) pairs for the --clip asked for."""
    if args.clip == "woman":
        src = fetch_samples(folder / "samples")["woman.mp4"]
        first = next(iter_frames(src)).image
        return [(f"{first.shape[1]}x{first.shape[0]}", src)]
    pairs = []
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        pairs.append((size, make_clip(folder, width, height, args.seconds)))
    return pairs


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
    parser.add_argument("--batch", type=int, default=16, help="frames per model batch (render_video's default)")
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--model", default="classic", help="classic | lowmem | tiny | none (no model)")
    parser.add_argument("--model-size", type=int, default=64)
    parser.add_argument("--checkpoint", default=None, help="a swap checkpoint folder (default: untrained weights)")
    parser.add_argument("--clip", default="man", choices=["man", "woman"], help="man: scaled to --sizes, --seconds long; woman: as it is")
    parser.add_argument("--frames", type=int, default=None, help="render only the first N frames")
    parser.add_argument("--detect-every", type=int, default=None, help="run the detector every N frames (default: render_video's)")
    parser.add_argument("--tag", default=None, help="a name for the code measured, kept in the settings")
    parser.add_argument("--threads", type=int, default=None, help="torch and OpenCV threads (1: a core's own speed)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    options = {} if args.detect_every is None else {"detect_every": args.detect_every}
    device = torch.device(args.device)
    face_fn, model_name = make_face_fn(args, device)

    from helpers.faces import make_detector

    detector = make_detector(args.detector, device=device)
    with tempfile.TemporaryDirectory() as tmp:
        for size, clip in clips(args, Path(tmp)):
            render_video(clip, Path(tmp) / "warmup.mp4", face_fn, detector=detector, batch_size=args.batch,
                         max_frames=args.batch, progress=False, **options)
            reset_peak_memory(device)
            walls, cpus, stages, frames = [], [], {s: [] for s in STAGES}, 0
            for _ in range(args.repeat):
                synchronize(device)
                t0, cpu = time.perf_counter(), time.process_time()
                report = render_video(clip, Path(tmp) / "out.mp4", face_fn, detector=detector, batch_size=args.batch,
                                      max_frames=args.frames, progress=False, **options)
                synchronize(device)
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - cpu)
                frames = report.frames
                for s in STAGES:
                    stages[s].append(report.timings[s])
            settings = {"size": size, "frames": frames, "model": model_name, "detector": args.detector,
                        "batch": args.batch}
            if args.clip != "man":
                settings["clip"] = args.clip
            if args.detect_every is not None:
                settings["detect_every"] = args.detect_every
            if args.threads:
                settings["threads"] = args.threads
            if args.tag:
                settings["code"] = args.tag
            peak = peak_memory_mb(device)
            record("render video end to end", settings, walls, device, items_per_run=frames, unit="frames/s", peak_mb=peak)
            if device.type == "cpu":  # what the frames cost the CPU, whatever else the machine runs
                record("render video end to end, CPU time", settings, cpus, device, items_per_run=frames, unit="frames/s")
            for s in STAGES:
                if s == "model" and model_name == "none" or s == "track" and args.detect_every == 1:
                    continue
                record(f"render stage: {s}", settings, stages[s], device, items_per_run=frames, unit="frames/s")
            split = ", ".join(f"{s} {100 * statistics.median(stages[s]) / statistics.median(walls):.0f}%" for s in STAGES)
            print(f"{size}: {frames / statistics.median(walls):.1f} fps end to end ({frames / statistics.median(cpus):.1f} "
                  f"by CPU time); time split: {split}")
    write_table()


if __name__ == "__main__":
    main()
