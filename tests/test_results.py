"""`python -m helpers.course results`, shortened (the quick presets): every picture and every number, with provenance."""

import json

import pytest

from helpers import identity


@pytest.mark.notebook
def test_results_runs_end_to_end_and_says_how_it_was_made(samples, tmp_path, monkeypatch):
    from PIL import Image

    from helpers.env import STEP_FOLDERS, Workspace
    from helpers.results import LESSON_PICTURES, make_results, provenance

    monkeypatch.setenv("POLYJUICE_OFFLINE", "1")
    ws = Workspace(tmp_path / "ws", "local")
    for sub in STEP_FOLDERS:
        (ws.root / sub).mkdir(parents=True)
    for name in ("woman.mp4", "man.mp4", "megamind.avi"):
        (ws.samples / name).symlink_to(samples[name])
    out = tmp_path / "results"
    result = make_results(ws, out, quick=True)

    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(result))
    for key in ("commit", "device", "cpu_cores", "torch_threads", "total_minutes"):
        assert saved[key] not in (None, "")
    assert saved["swap"]["steps"] == 60 and saved["swap"]["minutes"] >= 0
    assert saved["ugatit"]["steps"] == saved["ugatit"]["iterations_planned"] == 16
    assert len(saved["ugatit"]["kid"]["values"]) >= 2
    assert saved["ugatit"]["kid"]["untranslated"] > 0  # the line the fakes are judged against
    assert "Made by `python -m helpers.course results --quick`" in provenance(saved)
    expected = {"sources.png", "faces.png", "swap_timelapse.gif", "ugatit_samples.png", "ugatit_kid.png", "ugatit_clip.gif", "ugatit_clip.mp4"}
    if identity.unavailable() is None:
        expected |= {"swap_heldout.png", "swap_success.png", "swap_clip.gif", "swap_clip.mp4"}
        rows = saved["swap"]["success"]
        assert set(rows) == {"A->B", "B->A", "A", "B", "A->A", "B->B"}
        assert rows["A"]["taken"] >= 0.8 and rows["B"]["taken"] >= 0.8  # the judge knows the real faces
        assert saved["swap"]["curve"] and "rendered_frames_taken_for_B" in saved["swap"]
        assert saved["swap"]["judged_at_px"] == 64 and set(saved["swap"]["success_at_128px"]) == set(rows)  # the stricter question kept
    assert expected <= {p.name for p in out.iterdir()}
    for name in expected:
        if name.endswith(".mp4"):
            assert (out / name).stat().st_size < 3 * 2**20
        else:
            assert Image.open(out / name).size[0] >= 100
    assert {name for pics in LESSON_PICTURES.values() for name, _ in pics} <= expected


def test_where_a_lesson_ends_shows_the_committed_pictures_and_how_they_were_made(tmp_path, capsys, monkeypatch):
    import numpy as np

    from helpers import results
    from helpers.train import write_picture

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    results.show_result("03", tmp_path)
    assert "No results in" in capsys.readouterr().out and not shown  # before the command ran: one line, no error
    write_picture(tmp_path / "swap_heldout.png", np.zeros((64, 64, 3), np.uint8))
    made = {"command": "python -m helpers.course results", "preset": "laptop", "device": "CPU: test", "cpu_cores": 2,
            "commit": "abc1234", "made": "2026-12-03 10:00 UTC", "swap": {"sentence": "A face recognizer we did not train takes 97%."}}
    (tmp_path / "results.json").write_text(json.dumps(made))
    results.show_result("03", tmp_path)
    texts = [getattr(o, "data", "") for o in shown]
    assert any("takes 97%" in t for t in texts if isinstance(t, str))
    assert any("commit abc1234" in t and "laptop presets" in t for t in texts if isinstance(t, str))
    assert sum(type(o).__name__ == "Image" for o in shown) == 1  # swap_success.png is missing: skipped, not an error
