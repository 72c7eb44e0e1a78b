"""How many faces per second does each detector find on the sample videos, and how fast is a whole crop?

Detection is the first cost of notebooks 02 and 05, so this tells a workshop how
long cropping a data set or rendering a clip will take. MTCNN detects a batch
of same-size frames at once; the Haar cascade goes frame by frame. On a CPU we
also compare MTCNN on one torch thread (the default) with two: its networks
are tiny, and extra threads mostly wait for each other. The last line is
`crop_video` end to end: detection, alignment with its second look, filters
and PNG writing.

    python bench/bench_faces.py --frames 48
    python bench/bench_faces.py --device cuda --frames 200 --batches 1 32
"""

import argparse
import shutil
import tempfile
from pathlib import Path

import torch

from helpers.bench import peak_memory_mb, record, reset_peak_memory, time_runs, write_table
from helpers.faces import crop_video, make_detector
from helpers.samples import fetch_samples
from helpers.video import iter_frames


def bench_detection(detector, frames, batch, settings, device, repeat):
    batches = [frames[i:i + batch] for i in range(0, len(frames), batch)]
    found = sum(len(faces) > 0 for b in batches for faces in detector.detect_batch(b))

    def run():
        for b in batches:
            detector.detect_batch(b)

    reset_peak_memory(device)
    seconds = time_runs(run, repeat=repeat, warmup=1, device=device)
    record("face detection", dict(settings, frames_with_face=found), seconds, device=device, items_per_run=found,
           unit="faces/s", peak_mb=peak_memory_mb(device))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=48, help="frames per video")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="MTCNN frames per detect_batch call")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch CPU threads for MTCNN (CPU only)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--videos", nargs="+", default=["woman.mp4", "man.mp4", "megamind.avi"])
    args = parser.parse_args()
    device = torch.device(args.device)
    threads = args.threads if device.type == "cpu" else [None]
    with tempfile.TemporaryDirectory() as tmp:
        samples = fetch_samples(tmp, args.videos)
        for video in args.videos:
            frames = [f.image for f in iter_frames(samples[video], max_frames=args.frames)]
            base = {"video": video, "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}", "frames": len(frames)}
            bench_detection(make_detector("haar"), frames, 1, dict(base, detector="haar", batch=1), device, args.repeat)
            for n in threads:
                mtcnn = make_detector("mtcnn", device=device, cpu_threads=n)
                for batch in args.batches:
                    settings = dict(base, detector="mtcnn", batch=batch, **({"threads": n} if n else {}))
                    bench_detection(mtcnn, frames, batch, settings, device, args.repeat)

        video = args.videos[0]
        out = Path(tmp) / "faces"
        mtcnn = make_detector("mtcnn", device=device)

        def crop():
            shutil.rmtree(out, ignore_errors=True)  # a re-run would skip every frame
            return crop_video(samples[video], out, max_frames=args.frames, detector=mtcnn, progress=False)

        reset_peak_memory(device)
        seconds = time_runs(crop, repeat=args.repeat, warmup=1, device=device)
        record("crop_video end to end (mtcnn, refine, 256 px PNGs)", {"video": video, "frames": args.frames, "batch": 8},
               seconds, device=device, items_per_run=args.frames, unit="frames/s", peak_mb=peak_memory_mb(device))
    write_table()


if __name__ == "__main__":
    main()
