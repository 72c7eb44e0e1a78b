"""How many images per second does the downloader manage, with the network out of the way?

Against a server on 127.0.0.1 the network costs almost nothing, so this
measures the downloader's own work per image: HTTP round trip, magic bytes,
full decode, EXIF, pHash, de-duplication, JPEG re-encode, manifest row. On
the web the per-host rate limit (1 request/s by default) and the servers'
speed dominate; the last setting shows the limiter holding its rate.

    python bench/bench_scrape.py --images 200 --workers 1 4 8
"""

import argparse
import tempfile
from itertools import count
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from helpers.bench import peak_memory_mb, record, time_runs, write_table
from helpers.scrape import Candidate, download, local_image_server


def make_images(folder: Path, n: int, w: int, h: int) -> list[Path]:
    """n different photo-sized JPEGs (smooth random colour fields, distinct to the perceptual hash)."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        path = folder / f"img_{i:04d}.jpg"
        Image.fromarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)).save(path, quality=90)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--polite-interval", type=float, default=0.02, help="per-host interval for the rate-limit run")
    args = parser.parse_args()
    w, h = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        www = tmp / "www"
        www.mkdir()
        paths = make_images(www, args.images, w, h)
        runs = count()
        with local_image_server(www) as server:
            cands = [Candidate(server.url_for(p), "bench") for p in paths]

            def one_run(**settings) -> None:  # 127.0.0.1 is a private address: allowed explicitly
                report = download(cands, tmp / f"run{next(runs)}", progress=False, allow_private=True, **settings)
                assert report.counts["ok"] == len(cands), report

            plans = [dict(workers=k, per_host_interval=0.0) for k in args.workers]
            plans.append(dict(workers=max(args.workers), per_host_interval=args.polite_interval))
            for plan in plans:
                seconds = time_runs(lambda: one_run(**plan), repeat=args.repeat, warmup=1)
                settings = {"images": args.images, "size": f"{args.size} JPEG", **plan, "robots": True, "phash": True, "server": "127.0.0.1"}
                record("scrape: download from local server", settings, seconds, items_per_run=args.images,
                       unit="images/s", peak_mb=peak_memory_mb("cpu"))
    write_table()


if __name__ == "__main__":
    main()
