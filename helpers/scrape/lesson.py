"""The pictures of lesson 01: where the URLs came from, what came in, where every URL ended, what a re-run fetched.

Each function draws one figure from data the lesson already holds, so the
notebook cell is one call and the reading stays in the prose.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from .image import square_thumbnails
from .manifest import kept_images


def plot_sources(candidates: dict) -> None:
    """One stacked bar per domain: how many candidate URLs each search back end (or the local server) gave."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.5))
    for i, (domain, cands) in enumerate(candidates.items()):
        left = 0
        for source, n in Counter(c.source for c in cands).most_common():
            ax.barh(domain, n, left=left)
            ax.text(left + n / 2, i, f"{source} {n}", ha="center", va="center", fontsize=8)
            left += n
    ax.set_xlabel("image URLs to try")
    ax.set_title("Candidates per domain and source")
    plt.tight_layout()
    plt.show()


def kept_grids(raw: str | os.PathLike, domains, n: int = 18, size: int = 112) -> tuple[list, list[str]]:
    """A grid of the first `n` kept images of each domain that kept any, and its title ("selfie: 40 kept")."""
    from ..viz import image_grid

    grids, titles = [], []
    for domain in domains:
        kept = kept_images(Path(raw) / domain)
        if kept:
            grids.append(image_grid(square_thumbnails(kept[:n], size), ncol=6))
            titles.append(f"{domain}: {len(kept)} kept")
    return grids, titles


def plot_statuses(counts: dict[str, Counter]) -> None:
    """Grouped bars: for each status ("ok" first), how many URLs of each domain ended in it."""
    import matplotlib.pyplot as plt

    statuses = sorted({s for c in counts.values() for s in c}, key=lambda s: (s != "ok", s))
    fig, ax = plt.subplots(figsize=(8, 3))
    width = 0.8 / max(len(counts), 1)
    for i, (domain, c) in enumerate(counts.items()):
        ax.bar([j + i * width for j in range(len(statuses))], [c.get(s, 0) for s in statuses], width, label=domain)
    ax.set_xticks([j + width * (len(counts) - 1) / 2 for j in range(len(statuses))], statuses, rotation=30, ha="right")
    ax.set_ylabel("URLs")
    ax.set_title("Where every URL ended")
    ax.legend()
    plt.tight_layout()
    plt.show()


def plot_rerun(first: dict, again: dict) -> None:
    """URLs fetched by the first and the second download() of each domain (reports; a domain never reached counts 0)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.2))
    for domain in again:
        tried = [sum(r.counts.values()) if r is not None else 0 for r in (first.get(domain), again[domain])]
        bars = ax.barh([f"{domain} run 1", f"{domain} run 2"], tried)
        ax.bar_label(bars, padding=3)
    ax.set_xlabel("URLs fetched")
    ax.set_title("The second run fetches nothing it already knows")
    plt.tight_layout()
    plt.show()
