"""When the loop does what: a deferred Ctrl-C, cadence by steps or minutes, extra hooks."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable


class DeferredInterrupt:
    """The first Ctrl-C (Jupyter's stop button) becomes a flag the loop reads after the step.

    The step finishes, a checkpoint is saved and the call returns. A second
    Ctrl-C raises KeyboardInterrupt at once; the loop then saves only if no step
    was under way, so a half-applied step is never saved. Outside the main
    thread there is no handler and KeyboardInterrupt takes the second path.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nInterrupted: finishing this step and saving (press again to stop at once, without saving a half step).", flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


# ---------------------------------------------------------------- cadence

class Every:
    """Due every `steps` steps and/or every `minutes` minutes (either may be off: None or 0)."""

    def __init__(self, steps: int | None = None, minutes: float | None = None):
        self.steps = steps or None
        self.seconds = minutes * 60 if minutes else None
        self.last = time.monotonic()

    def due(self, step: int) -> bool:
        if self.steps and step % self.steps == 0:
            return True
        return self.seconds is not None and time.monotonic() - self.last >= self.seconds

    def done(self) -> None:
        self.last = time.monotonic()


@dataclass
class Hook:
    """Extra work on its own cadence (U-GAT-IT's KID). `run()` returns a row for `<name>.csv`, or None."""

    name: str
    run: Callable[[], dict | None]
    every: int | None = None
    minutes: float | None = None
