"""Where the swap may run: a managed Colab runtime stops it with one sentence; a local runtime goes on."""

import subprocess
import sys

import pytest

from helpers import rules
from helpers.env import LessonStop


def test_a_managed_colab_runtime_stops_the_swap_with_the_rule_and_the_ways_on(monkeypatch):
    monkeypatch.delenv("POLYJUICE_MANAGED_COLAB", raising=False)
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20261201-060000_RC00")  # what a hosted runtime sets
    assert rules.managed_colab() and not rules.swap_allowed()
    with pytest.raises(LessonStop) as stop:
        rules.require_swap_allowed("lesson 03's training")
    said = str(stop.value)
    assert "disallows creating deepfakes on all managed Colab runtimes" in said and "lesson 03's training" in said
    assert "Connect to a local runtime" in said and "Jupyter on your computer" in said
    assert stop.value._render_traceback_()[0].endswith(said)  # Jupyter shows the sentence, not a traceback


def test_local_jupyter_and_a_local_runtime_may_swap(monkeypatch):
    monkeypatch.delenv("POLYJUICE_MANAGED_COLAB", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not rules.managed_colab()
    rules.require_swap_allowed()  # no stop


def test_the_override_wins_both_ways(monkeypatch):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "x")
    monkeypatch.setenv("POLYJUICE_MANAGED_COLAB", "0")
    assert rules.swap_allowed()
    monkeypatch.delenv("COLAB_RELEASE_TAG")
    monkeypatch.setenv("POLYJUICE_MANAGED_COLAB", "1")
    assert not rules.swap_allowed()


def test_importing_google_colab_marks_a_hosted_runtime():
    code = ("import sys, types, os; os.environ.pop('COLAB_RELEASE_TAG', None); os.environ.pop('POLYJUICE_MANAGED_COLAB', None); "
            "sys.modules['google.colab'] = types.ModuleType('google.colab'); "
            "from helpers import rules; print(rules.managed_colab())")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "True"
