"""The held-out faces: the same split rule in both lessons."""

from __future__ import annotations

import torch


def split_holdout(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) indices: a fixed random `fraction` of the faces is never trained on.

    The same rule in both lessons: at least one face held out when `fraction` > 0,
    at least one left to train on."""
    if n < 2:
        raise ValueError(f"Need at least 2 faces per identity to train and check, got {n}.")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_out = min(max(1, round(n * fraction)), n - 1) if fraction > 0 else 0
    return order[n_out:].sort().values, order[:n_out].sort().values
