"""Several processes under torchrun: who am I, who writes, how a batch and its gradients are shared."""

from __future__ import annotations

import os

import torch


def world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get("RANK", 0))


def is_main() -> bool:
    """Rank 0 alone writes checkpoints, logs and pictures."""
    return rank() == 0


def init_distributed(device: torch.device | str | None = None) -> torch.device:
    """Join the torchrun job when there is one (NCCL on GPUs, gloo on CPUs); return this rank's device."""
    from .precision import pick_device

    device = pick_device(device)
    if int(os.environ.get("WORLD_SIZE", 1)) > 1 and not torch.distributed.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def barrier() -> None:
    if world_size() > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()


def average_gradients(params) -> None:
    """Mean of each gradient over all ranks (what DistributedDataParallel does, for modules it cannot wrap)."""
    if world_size() < 2:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()


def rank_slice(n: int) -> slice:
    """This rank's share of a batch of n drawn identically on every rank: the data order stays a function of seed and step."""
    world = world_size()
    if n % world:
        raise ValueError(f"The batch ({n}) must split evenly over {world} processes: choose a batch_size divisible by {world}.")
    per = n // world
    return slice(rank() * per, (rank() + 1) * per)


def _any_rank(flag: bool) -> bool:
    """True on every rank when it is true on one (a Ctrl-C reaches ranks at different steps)."""
    if world_size() < 2 or not torch.distributed.is_initialized():
        return flag
    t = torch.tensor([int(flag)], device=_collective_device())
    torch.distributed.all_reduce(t)
    return bool(t.item())


def _collective_device() -> torch.device:
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def finish_distributed() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
