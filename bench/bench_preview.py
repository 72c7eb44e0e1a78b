"""Showing three frames of a render: decode it all into a list (what notebook 05 did) vs seek (frames_at).

Matters because a minute of 1080p side by side is about 22 GB as RGB arrays and
Colab has about 12: the old way ran out of memory on exactly the videos people
care about. Each way runs in its own process, so its peak memory (max RSS) is
its own.

    python bench/bench_preview.py                    # 1280x720 side by side (2560x720), 10 s at 30 fps
    python bench/bench_preview.py --size 1920x1080 --seconds 20
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from helpers.video import VideoWriter

CHILD = r"""
import json, resource, sys, time
import numpy as np
from helpers.video import frames_at, iter_frames, probe
path, way = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
n = probe(path).frame_count
picks = np.linspace(0, n - 1, 3).astype(int)
if way == "decode all":
    frames = [f.image for f in iter_frames(path)]
    shown = [frames[i] for i in picks]
else:
    shown = [f.image for f in frames_at(path, indices=picks)]
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "checksum": [int(im.mean()) for im in shown]}))
"""


def make_render_like_clip(path: Path, width: int, height: int, seconds: float, fps: float = 30.0) -> Path:
    """A side-by-side-sized clip written by our VideoWriter (key frame every 2 s), moving noise so it is not trivial."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    with VideoWriter(path, width, height, fps) as writer:
        for i in range(int(round(seconds * fps))):
            writer.write(np.roll(base, 4 * i, axis=1), i / fps)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1280x720", help="one side; the clip is twice as wide (side by side)")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_render_like_clip(Path(tmp) / "render.mp4", 2 * w, h, args.seconds)
        print(f"{2 * w}x{h}, {args.seconds:g} s at 30 fps: {clip.stat().st_size / 2**20:.1f} MiB on disk")
        results = {}
        for way in ("decode all", "frames_at"):
            out = subprocess.run([sys.executable, "-c", CHILD, str(clip), way], capture_output=True, text=True, check=True)
            results[way] = json.loads(out.stdout)
            print(f"{way:>10}: {results[way]['wall']:.2f} s, peak {results[way]['peak_mb']:.0f} MB")
        assert results["decode all"]["checksum"] == results["frames_at"]["checksum"], "the two ways showed different frames"


if __name__ == "__main__":
    main()
