"""How many camera frames a second does the live view keep up with, and where does the time go?

Matters because a camera gives 30 frames a second and the live view
(helpers.live, helpers.app) should keep up with 15 on a laptop's CPU. The
frames are the woman sample at 640x360, as a webcam sends them: a JPEG data
URL in, through helpers.live.LiveFrames (the frame pipeline: detect every
`detect_every` frames, track in between, align, model, blend, label), a JPEG
data URL out. The page-to-Python transfer is not in it: the Colab view prints
its own round trip. Models are the laptop-sized ones, untrained (trained
weights cost the same time): the swap autoencoder `tiny` at 64 px and the
light U-GAT-IT at 64 px with 16 or 32 channels; `none` (a face function that
returns its input) is the pipeline alone.

    python bench/bench_live.py                          # CPU, all four models
    python bench/bench_live.py --models ugatit16 --detector mtcnn --device cuda
"""

import argparse
import os
import statistics
import time

import cv2
import torch

from helpers.bench import peak_memory_mb, record, reset_peak_memory, synchronize, write_table
from helpers.faces import detector_name
from helpers.live import LiveFrames, decode_jpeg, encode_jpeg
from helpers.pipeline import STEPS
from helpers.samples import fetch_samples
from helpers.video import iter_frames

MODELS = ("none", "swap64", "ugatit16", "ugatit32")


def make_model(name: str, device):
    """A laptop-sized face model by name, with fresh weights."""
    if name == "none":
        return lambda faces: faces
    if name == "swap64":
        from helpers.facemodel import Swapper
        from helpers.models.autoencoder import build_autoencoder

        return Swapper(build_autoencoder("tiny", 64), device)
    from helpers.facemodel import Translator
    from helpers.models.ugatit import build_networks

    ch = int(name.removeprefix("ugatit"))
    return Translator(build_networks(64, light=True, ch=ch)["genA2B"], 64, "A2B", device)


def camera_frames(folder, count: int) -> list[str]:
    """The woman sample's first `count` frames (looped) as the JPEG data URLs a page sends."""
    src = fetch_samples(folder, ["woman.mp4"])["woman.mp4"]
    images = [f.image for f in iter_frames(src, max_frames=count)]
    return [encode_jpeg(images[i % len(images)]) for i in range(count)]


def run(live: LiveFrames, frames: list[str], device) -> tuple[float, float, dict]:
    """(wall seconds, this process's CPU seconds, wall seconds per stage) for one stream of frames, from a fresh start."""
    live.reset()
    stages = {s: 0.0 for s in ("jpeg",) + STEPS}
    synchronize(device)
    start, cpu = time.perf_counter(), time.process_time()
    for data_url in frames:
        t0 = time.perf_counter()
        rgb = decode_jpeg(data_url)
        t1 = time.perf_counter()
        result = live(rgb)
        synchronize(device)
        t2 = time.perf_counter()
        encode_jpeg(result.frame)
        stages["jpeg"] += (t1 - t0) + (time.perf_counter() - t2)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    for step, seconds in live.timings.items():
        stages[step] = stages.get(step, 0.0) + seconds
    return wall, cpu, stages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--detector", default="auto", help="auto (Haar where OpenCV has it, else MTCNN), haar, mtcnn")
    parser.add_argument("--detect-every", type=int, default=10)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--samples", default="workspace/samples")
    parser.add_argument("--threads", type=int, default=1, help="torch's CPU threads (on a busy 2-core machine 2 can be far slower)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    device = torch.device(args.device)
    frames = camera_frames(args.samples, args.frames)
    detector = detector_name(args.detector)
    for name in args.models:
        live = LiveFrames(make_model(name, device), detector=detector, detect_every=args.detect_every, device=device,
                          gap=float("inf"))  # a slow frame on a busy machine must not count as a new stream
        run(live, frames[:10], device)  # warm-up: detector and model weights in the caches
        reset_peak_memory(device)
        walls, cpus, stages = [], [], {}
        for _ in range(args.repeat):
            wall, cpu, split = run(live, frames, device)
            walls.append(wall)
            cpus.append(cpu)
            for stage, seconds in split.items():
                stages.setdefault(stage, []).append(seconds)
        settings = {"size": "640x360", "frames": len(frames), "model": name, "detector": detector,
                    "detect_every": args.detect_every, "threads": torch.get_num_threads()}
        record("live view end to end (JPEG in, pipeline, JPEG out)", settings, walls, device, items_per_run=len(frames),
               unit="frames/s", peak_mb=peak_memory_mb(device))
        if device.type == "cpu":  # what the frames cost the CPU, whatever else the machine runs (one thread: an idle core's wall time)
            record("live view end to end, CPU time", settings, cpus, device, items_per_run=len(frames), unit="frames/s")
        for stage, seconds in stages.items():
            if statistics.median(seconds) > 0 and not (stage == "model" and name == "none"):
                record(f"live stage: {stage}", settings, seconds, device, items_per_run=len(frames), unit="frames/s")
        split = ", ".join(f"{s} {1000 * statistics.median(v) / len(frames):.1f} ms" for s, v in stages.items())
        load = os.getloadavg()[0]
        print(f"{name}: {len(frames) / statistics.median(walls):.1f} fps end to end ({len(frames) / statistics.median(cpus):.1f} "
              f"by CPU time); per frame: {split} (load average {load:.1f})")
    write_table()


if __name__ == "__main__":
    main()
