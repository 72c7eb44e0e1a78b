"""Where the face swap may run.

Colab's FAQ lists "creating deepfakes" among the activities disallowed on all
managed Colab runtimes, paid plans included. So lesson 03 and lesson 05 in
swap mode train and render a swap only on the learner's own machine: local
Jupyter, or Colab's "Connect to a local runtime" (the notebook in Colab's
page, the kernel on the learner's computer). Everything before that point
still runs in Colab, so a class can read the lesson and see its pictures.
Translating your own face (lesson 04, lesson 05 in translate mode) runs in
Colab as before.
"""

from __future__ import annotations

import os
import sys

from .env import LessonStop

COLAB_RULE = ("Colab's FAQ disallows creating deepfakes on all managed Colab runtimes, paid plans included, "
              "so {what} runs only on your own computer.")
WAYS_ON = ("Either connect Colab to a local runtime (on your computer: pip install jupyter, then "
           "jupyter notebook --ServerApp.allow_origin='https://colab.research.google.com' "
           "--port=8888 --ServerApp.port_retries=0; in Colab: Connect ▸ Connect to a local runtime, paste the URL it printed), "
           "or run this notebook in Jupyter on your computer (git clone the course, make demo, then jupyter lab notebooks/).")


def managed_colab() -> bool:
    """True on a runtime Google hosts; False in local Jupyter and in Colab connected to a local runtime.

    A hosted runtime sets COLAB_RELEASE_TAG (and has google.colab importable); a
    local runtime is the learner's own Jupyter server, which has neither.
    POLYJUICE_MANAGED_COLAB=1/0 forces the answer (tests, odd set-ups).
    """
    forced = os.environ.get("POLYJUICE_MANAGED_COLAB")
    if forced is not None:
        return forced.strip().lower() in ("1", "true", "yes")
    return bool(os.environ.get("COLAB_RELEASE_TAG")) or "google.colab" in sys.modules


def swap_allowed() -> bool:
    """Whether this runtime may train or render a face swap."""
    return not managed_colab()


def swap_rule(what: str = "the face swap") -> str:
    """The one sentence and the two ways on, as the course prints them."""
    return f"{COLAB_RULE.format(what=what)} {WAYS_ON}"


def require_swap_allowed(what: str = "the face swap") -> None:
    """Stop a lesson with one sentence before it trains or renders a swap on a managed Colab runtime."""
    if not swap_allowed():
        raise LessonStop(swap_rule(what))
