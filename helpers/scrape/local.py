"""Offline sources: a folder served on 127.0.0.1, and frames of the sample videos as stand-ins for web photos."""

from __future__ import annotations

import http.server
import os
import re
import threading
from functools import partial
from pathlib import Path
from urllib.parse import quote

from .sources import Candidate, from_url_list


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log in the notebook
        pass


class LocalImageServer:
    """A folder served over real HTTP on 127.0.0.1 (random free port), for offline runs and tests."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).resolve()
        handler = partial(_QuietHandler, directory=str(self.folder))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url_for(self, path: str | os.PathLike) -> str:
        """The URL of a file inside the served folder."""
        rel = Path(path).resolve().relative_to(self.folder).as_posix()
        return f"{self.url}/{quote(rel)}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalImageServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def local_image_server(folder: str | os.PathLike) -> LocalImageServer:
    """Serve `folder` on 127.0.0.1: `with local_image_server(f) as srv: srv.url_for(path)`; or call `.close()`."""
    return LocalImageServer(folder)


def export_frames(video: str | os.PathLike, folder: str | os.PathLike, every: int = 10, max_frames: int | None = None,
                  prefix: str | None = None, quality: int = 92) -> list[Path]:
    """Save every `every`-th frame of a video as JPEG (upright, RGB) - stand-ins for photos found on the web."""
    from PIL import Image

    from ..video import iter_frames

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    prefix = prefix or re.sub(r"[^A-Za-z0-9_-]", "_", Path(video).stem)
    paths = []
    for frame in iter_frames(video, every=every, max_frames=max_frames):
        path = folder / f"{prefix}_{frame.index:05d}.jpg"
        if not path.exists():
            Image.fromarray(frame.image).save(path, "JPEG", quality=quality)
        paths.append(path)
    return paths


# domain -> (sample video, keep every n-th frame): the offline stand-ins for scraped photos
SAMPLE_DOMAINS = {"selfie": (("woman.mp4", 16), ("man.mp4", 12)), "drag": (("megamind.avi", 10),)}
# the sample files serve_sample_frames needs: fetch these first (helpers.samples.fetch_samples)
SAMPLE_VIDEOS = list(dict.fromkeys(name for videos in SAMPLE_DOMAINS.values() for name, _ in videos))


def serve_sample_frames(samples: dict, folder: str | os.PathLike, domains: dict = SAMPLE_DOMAINS,
                        max_frames: int | None = 30) -> tuple[LocalImageServer, dict[str, list[Candidate]]]:
    """Frames of the sample videos as JPEGs on a local HTTP server, as one URL-list file per domain.

    Each list also holds a URL that answers 404 and an HTML page saved as .jpg,
    so the offline run shows the downloader's checks at work. Returns the running
    server (close it when done) and domain -> candidates. The server is on
    127.0.0.1, which the downloader refuses unless told: download these with
    `allow_private=True` (the manifest's address column then says so).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fake = folder / "not_a_photo.jpg"
    fake.write_text("<!DOCTYPE html><html><body>An error page saved under a .jpg name</body></html>")
    server = local_image_server(folder)
    out = {}
    for domain, videos in domains.items():
        frames = [p for name, every in videos for p in export_frames(samples[name], folder / domain, every, max_frames)]
        urls = [server.url_for(p) for p in frames] + [server.url_for(fake), f"{server.url}/{domain}/gone.jpg"]
        url_list = folder / f"{domain}_urls.txt"
        url_list.write_text("\n".join(urls) + "\n")
        out[domain] = from_url_list(url_list, query="sample frames", source="local")
    return server, out
