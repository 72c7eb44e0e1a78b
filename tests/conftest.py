"""Shared fixtures: a temporary workspace, the cached sample data and a local HTTP server."""

from __future__ import annotations

import http.server
import os
import signal
import threading
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_raises():
    """Ctrl-C (SIGINT) raises KeyboardInterrupt, as in Jupyter and a terminal.

    A runner that starts the suite as a background job hands it SIGINT ignored,
    and then neither a signal nor `_thread.interrupt_main()` reaches Python: the
    tests of what Ctrl-C does would test nothing.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A fresh workspace folder used through $POLYJUICE_WORKSPACE."""
    root = tmp_path / "ws"
    monkeypatch.setenv("POLYJUICE_WORKSPACE", str(root))
    monkeypatch.setenv("POLYJUICE_DEVICE", "cpu")
    return root


@pytest.fixture(scope="session")
def samples(tmp_path_factory):
    """The embedded sample files (fetched once per machine into the cache, copied per session)."""
    from helpers.samples import fetch_samples

    return fetch_samples(tmp_path_factory.mktemp("samples"))


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with Range support, plus a request log the tests can read."""

    requests_seen: list = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        type(self).requests_seen.append((self.path, self.headers.get("Range")))
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            return super().do_GET()
        data = path.read_bytes()
        start = int(rng.split("=")[1].split("-")[0])
        if start >= len(data):
            self.send_response(416)
            self.end_headers()
            return
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def http_root(tmp_path):
    """(folder, base_url, request log): files put in folder are served on 127.0.0.1."""
    root = tmp_path / "www"
    root.mkdir()
    handler = type("Handler", (RangeHandler,), {"requests_seen": []})

    def factory(*a, **kw):
        return handler(*a, directory=str(root), **kw)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), factory)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", handler.requests_seen
    server.shutdown()
    server.server_close()


def haar_faces(image):
    """Frontal faces found by OpenCV's own Haar cascade: a check independent of our detectors.

    OpenCV 5 has no cascades (Colab's runtime): the calling test is skipped there.
    """
    import cv2

    from helpers.faces import haar_available

    if not haar_available():
        pytest.skip("this OpenCV has no Haar cascades (5.x): the independent face check needs 4.x")
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))


@pytest.fixture(scope="session")
def mirror():
    """The Colab-mirror environment's record (helpers.colab_mirror), built first if its inputs changed."""
    from helpers import colab_mirror

    return colab_mirror.build(say=lambda message: None)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: on 2 shared cores, two OpenMP threads that wait on each other run several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
