"""How many faces per second does each detector find on the sample videos?

Detection is the first cost of notebooks 02 and 05, so this tells a workshop how
long cropping a data set or rendering a clip will take. MTCNN detects a batch
of same-size frames at once; the Haar cascade goes frame by frame.

    python bench/bench_faces.py --frames 48 --batch 8
    python bench/bench_faces.py --device cuda --frames 200 --batch 32
"""

import argparse
import tempfile

import torch

from helpers.bench import peak_memory_mb, record, reset_peak_memory, time_runs, write_table
from helpers.faces import make_detector
from helpers.samples import fetch_samples
from helpers.video import iter_frames


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=48, help="frames per video")
    parser.add_argument("--batch", type=int, default=8, help="frames per detect_batch call")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--detectors", nargs="+", default=["haar", "mtcnn"])
    parser.add_argument("--videos", nargs="+", default=["woman.mp4", "man.mp4", "megamind.avi"])
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        samples = fetch_samples(tmp, args.videos)
        for video in args.videos:
            frames = [f.image for f in iter_frames(samples[video], max_frames=args.frames)]
            batches = [frames[i:i + args.batch] for i in range(0, len(frames), args.batch)]
            for name in args.detectors:
                detector = make_detector(name, device=device)
                found = sum(len(faces) > 0 for b in batches for faces in detector.detect_batch(b))

                def run():
                    for b in batches:
                        detector.detect_batch(b)

                reset_peak_memory(device)
                seconds = time_runs(run, repeat=args.repeat, warmup=1, device=device)
                settings = {"detector": name, "video": video, "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
                            "frames": len(frames), "batch": args.batch if name == "mtcnn" else 1,
                            "frames_with_face": found}
                record("face detection", settings, seconds, device=device, items_per_run=found, unit="faces/s",
                       peak_mb=peak_memory_mb(device))
    write_table()


if __name__ == "__main__":
    main()
