"""Device and precision policy: one rule for training and inference, on CPU and every GPU."""

from __future__ import annotations

import contextlib
import os

import torch

from .distributed import world_size


def pick_device(device: torch.device | str | None = None) -> torch.device:
    """The device asked for; else this rank's GPU under torchrun; else CUDA, MPS or CPU (helpers.env's choice)."""
    if device is not None:
        return torch.device(device)
    if world_size() > 1 and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    from ..env import pick_device as env_pick

    return env_pick()


def autocast_dtype(device: torch.device | str, amp: str = "auto") -> torch.dtype | None:
    """One precision policy for training and inference alike.

    auto: bf16 where the GPU computes it natively (Ampere and newer), fp16 (with a
    grad scaler when training) on older GPUs such as the T4, which emulate bf16
    slowly; float32 on a CPU, where autocast is slower on most machines. "bf16",
    "fp16" and "off" force a choice.
    """
    if amp == "off":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if amp != "auto":
        raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', not {amp!r}")
    device = torch.device(device)
    if device.type != "cuda":
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    return torch.bfloat16 if torch.cuda.get_device_capability(index)[0] >= 8 else torch.float16


def autocast(device: torch.device | str, dtype: torch.dtype | None):
    """torch.autocast for `dtype`, or nothing for float32."""
    device = torch.device(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def use_channels_last(device: torch.device | str, setting: str | bool = "auto") -> bool:
    """NHWC feeds tensor cores on CUDA; on a CPU it measured no faster (or slower), so 'auto' is CUDA only."""
    if isinstance(setting, bool):
        setting = "auto" if setting else "off"
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"channels_last must be 'auto', 'on' or 'off', not {setting!r}")
    return setting == "on" or (setting == "auto" and torch.device(device).type == "cuda")


def make_adam(params, device: torch.device | str, lr: float, betas=(0.9, 0.999), weight_decay: float = 0.0, fused: bool = True) -> torch.optim.Adam:
    """Adam with the fused kernel on CUDA (one pass over all weights instead of one per tensor)."""
    fused = fused and torch.device(device).type == "cuda"
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, **({"fused": True} if fused else {}))


def make_scaler(device: torch.device | str, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A grad scaler that is on only for fp16 (bf16 and float32 have float32's range)."""
    return torch.amp.GradScaler(torch.device(device).type, enabled=dtype == torch.float16)


def enable_tf32(device: torch.device | str) -> None:
    """TF32 matmuls and convolutions on Ampere+ GPUs: float32 weights, tensor-core speed."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
