"""How many images per second does the downloader manage, with the network out of the way?

Against a server on 127.0.0.1 the network costs almost nothing, so this
measures the downloader's own work per image: HTTP round trip, magic bytes,
full decode, EXIF, pHash, de-duplication, JPEG re-encode, manifest row. On
the web the per-host rate limit (1 request/s by default) and the servers'
speed dominate; the last setting shows the limiter holding its rate.
`--ctrl-c` measures instead how long download() takes to return after a
Ctrl-C while four servers trickle, with the default time-outs and retries.

    python bench/bench_scrape.py --images 200 --workers 1 4 8
    python bench/bench_scrape.py --ctrl-c
"""

import argparse
import http.server
import signal
import tempfile
import threading
import time
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


class Trickle(http.server.BaseHTTPRequestHandler):
    """An image server that sends one byte every 0.2 s: never silent long enough for a read time-out."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/robots.txt":
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(5000):
                self.wfile.write(b"\xff")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass  # the downloader hung up


def ctrl_c_seconds(tmp: Path, run: int, press_after: float = 1.5) -> float:
    """Seconds from a SIGINT to the main thread until download() returns, four trickling URLs in flight."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    main_thread, pressed = threading.main_thread().ident, []

    def press() -> None:
        time.sleep(press_after)
        pressed.append(time.monotonic())
        signal.pthread_kill(main_thread, signal.SIGINT)

    threading.Thread(target=press, daemon=True).start()
    try:
        report = download([Candidate(f"{base}/{i}.jpg", "bench") for i in range(4)], tmp / f"ctrl-c{run}",
                          progress=False, per_host_interval=0.0, allow_private=True)
        assert report.interrupted, report
        return time.monotonic() - pressed[0]
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--polite-interval", type=float, default=0.02, help="per-host interval for the rate-limit run")
    parser.add_argument("--ctrl-c", action="store_true", help="measure how fast a Ctrl-C takes effect instead")
    args = parser.parse_args()
    w, h = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.ctrl_c:
            seconds = [ctrl_c_seconds(tmp, i) for i in range(args.repeat)]
            record("scrape: Ctrl-C to return, 4 trickling URLs", {"time-outs": "defaults", "workers": 8}, seconds)
            write_table()
            return
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
