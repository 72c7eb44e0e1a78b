"""What lesson 01 shows: one example of every reason a URL failed, the sample videos it needs, and its pictures."""

from __future__ import annotations

import csv
from collections import Counter

import matplotlib
import numpy as np
import pytest
from PIL import Image

from helpers.samples import SAMPLES
from helpers.scrape import (
    MANIFEST,
    MANIFEST_COLUMNS,
    SAMPLE_DOMAINS,
    SAMPLE_VIDEOS,
    Candidate,
    ScrapeReport,
    first_failures,
    kept_grids,
    plot_rerun,
    plot_sources,
    plot_statuses,
)

matplotlib.use("Agg")


def write_manifest(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / MANIFEST, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**dict.fromkeys(MANIFEST_COLUMNS, ""), **row})


@pytest.fixture
def shown(monkeypatch):
    """The figures the lesson's plot functions hand to plt.show()."""
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "show", lambda *a, **kw: figures.append(plt.gcf()))
    yield figures
    plt.close("all")


def test_first_failures_gives_the_first_example_of_every_reason(tmp_path):
    write_manifest(tmp_path, [
        dict(url="a", status="ok", path="a.jpg"),
        dict(url="b", status="http_404", error="Not Found"),
        dict(url="c", status="timeout", error="no data for 15 s"),
        dict(url="d", status="http_404", error="the second 404"),
        dict(url="c", status="ok", path="c.jpg"),  # retried later and kept: its old time-out is no reason any more
    ])
    rows = first_failures(tmp_path)
    assert [(r["url"], r["status"], r["error"]) for r in rows] == [("b", "http_404", "Not Found")]
    assert first_failures(tmp_path / "never_downloaded") == []


def test_sample_videos_are_exactly_what_the_sample_frames_need():
    needed = {name for videos in SAMPLE_DOMAINS.values() for name, _ in videos}
    assert sorted(SAMPLE_VIDEOS) == sorted(needed) and len(SAMPLE_VIDEOS) == len(set(SAMPLE_VIDEOS))
    assert all(name in SAMPLES for name in SAMPLE_VIDEOS), "fetch_samples must know every one"


def test_plot_sources_stacks_each_domains_urls_by_source(shown):
    cands = {"selfie": [Candidate(f"u{i}", "duckduckgo") for i in range(3)] + [Candidate("v", "bing")],
             "drag": [Candidate("w", "local")]}
    plot_sources(cands)
    (fig,) = shown
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["bing 1", "duckduckgo 3", "local 1"]
    widths = Counter()
    for bar in ax.patches:
        widths[round(bar.get_y() + bar.get_height() / 2)] += bar.get_width()
    assert sorted(widths.values()) == [1, 4], "each domain's bar is as long as its list of URLs"


def test_plot_statuses_puts_ok_first_and_counts_every_domain(shown):
    plot_statuses({"selfie": Counter(ok=5, http_404=2), "drag": Counter(timeout=1, ok=3)})
    (fig,) = shown
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ok", "http_404", "timeout"]
    assert [b.get_height() for b in ax.patches] == [5, 2, 0, 3, 0, 1]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["selfie", "drag"]


def test_plot_rerun_counts_a_domain_the_first_run_never_reached_as_zero(shown, tmp_path):
    def report(n):
        return ScrapeReport(tmp_path, Counter(ok=n), 0, False, 0.1, n)

    plot_rerun({"selfie": report(7)}, {"selfie": report(0), "drag": report(4)})
    (fig,) = shown
    assert [b.get_width() for b in fig.axes[0].patches] == [7, 0, 0, 4]


def test_kept_grids_show_only_domains_that_kept_images(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "selfie").mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (80, 120, 3), dtype=np.uint8)).save(tmp_path / "selfie" / f"{i}.jpg")
    write_manifest(tmp_path / "selfie", [dict(url=f"u{i}", status="ok", path=f"{i}.jpg") for i in range(3)]
                   + [dict(url="gone", status="ok", path="deleted.jpg")])
    write_manifest(tmp_path / "drag", [dict(url="x", status="http_404")])
    grids, titles = kept_grids(tmp_path, ["selfie", "drag", "cartoon"], n=2, size=32)
    assert titles == ["selfie: 3 kept"], "a deleted file is not counted; empty and missing domains get no grid"
    assert grids[0].dtype == np.uint8 and grids[0].shape[2] == 3
    assert 32 <= grids[0].shape[0] < 2 * 32, "n=2 thumbnails of 32 px: one row"


def test_a_stopped_report_says_how_to_continue(tmp_path):
    """The notebook's download cell stops at an interrupted domain and relies on the report's own sentence."""
    stopped = ScrapeReport(tmp_path / "selfie", Counter(ok=2), 0, True, 1.0, 2)
    assert "interrupted: run it again to continue where it left off" in str(stopped)
    assert "interrupted" not in str(ScrapeReport(tmp_path / "selfie", Counter(ok=2), 0, False, 1.0, 2))
