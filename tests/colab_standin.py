"""A stand-in for `google.colab.output`, so the notebook's live view runs in a real browser without Colab.

Colab shows a cell's HTML and JavaScript in the output frame and runs
`eval_js(expression)` there, handing back what the expression resolves to.
Here a local page plays the output frame: `show(html, js)` makes the page,
and `eval_js` queues the expression; the page fetches it, awaits it and posts
the value back. helpers.live.colab_camera runs unchanged against it.
"""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RUNNER = """
<script>
(async () => {
  for (;;) {
    const response = await fetch('/next');
    if (response.status !== 200) continue;
    const expression = await response.text();
    let value;
    try { value = await (0, eval)(expression); } catch (error) { value = {jsError: String(error)}; }
    await fetch('/reply', {method: 'POST', body: JSON.stringify(value === undefined ? null : value)});
  }
})();
</script>
"""


class ColabStandIn:
    def __init__(self):
        self.page: str | None = None
        self.shown = threading.Event()
        self.expressions: queue.Queue = queue.Queue()
        self.replies: queue.Queue = queue.Queue()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def show(self, html: str, js: str) -> None:
        """What display(HTML(html), Javascript(js)) puts in Colab's output frame."""
        self.page = f"<!doctype html><html><body>{html}<script>{js}</script>{RUNNER}</body></html>"
        self.shown.set()

    def eval_js(self, expression: str, timeout: float = 30):
        """google.colab.output.eval_js: run the expression in the page, return its (awaited) value."""
        self.expressions.put(expression)
        value = self.replies.get(timeout=timeout)
        if isinstance(value, dict) and "jsError" in value:
            raise RuntimeError(value["jsError"])
        return value

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(colab: ColabStandIn):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, status: int, body: bytes = b"", kind: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/":
                colab.shown.wait(20)
                return self._send(200, (colab.page or "no output yet").encode(), "text/html")
            if self.path == "/next":
                try:
                    return self._send(200, colab.expressions.get(timeout=5).encode())
                except queue.Empty:
                    return self._send(204)
            self._send(404)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            colab.replies.put(json.loads(body or b"null"))
            self._send(200)

    return Handler
