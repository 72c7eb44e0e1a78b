"""The face-model contract: uint8 aligned crops in, the same shape out, whichever lesson trained the model.

- `Swapper`: lesson 03's autoencoder; paints the faces as identity A or B.
- `Translator`: lesson 04's U-GAT-IT generator; translates A->B or B->A.

Both take uint8 (N, H, W, 3) RGB crops (numpy or tensor) or a float tensor
(N, 3, H, W) in [-1, 1], of any size: they resize to the model's size and back
and return the same kind, size and device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

KINDS = {"swap": "face-swap autoencoder checkpoint (lesson 03)", "ugatit": "U-GAT-IT checkpoint (lesson 04)"}
LOADERS = {"swap": "load_swapper", "ugatit": "load_translator"}
UGATIT_ARCH = ("img_size", "light", "ch", "n_res")
UGATIT_NETS = ("genA2B", "genB2A", "disGA", "disGB", "disLA", "disLB")
DIRECTIONS = ("A2B", "B2A")
IDENTITIES = ("A", "B")


class WrongCheckpointKind(ValueError):
    """A checkpoint of the other lesson's model was given to a loader."""


# ---------------------------------------------------------------- arguments, devices, precision

def as_device(device: torch.device | str | None) -> torch.device:
    """A torch.device from None (the best one here), a string or a device; a clear error when it cannot be used."""
    if device is None:
        from ..env import pick_device

        return pick_device()
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', or a torch.device, not {type(device).__name__}")
    try:
        device = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"{device!r} is not a device: use 'cpu', 'cuda' or 'cuda:0' ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but this runtime has no GPU: pass 'cpu', or switch the runtime to a GPU.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"{device} does not exist: this machine has {torch.cuda.device_count()} GPU(s).")
    return device


def inference_dtype(device: torch.device) -> torch.dtype | None:
    """Autocast dtype for inference: helpers.train's one policy, the same for both models and for training
    (bf16 on Ampere and newer GPUs, fp16 on older ones such as the T4, float32 on a CPU)."""
    from ..train import autocast_dtype

    return autocast_dtype(device, "auto")


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number >= 1, not {batch_size!r}")
    return int(batch_size)


def resize_faces(x: torch.Tensor, size) -> torch.Tensor:
    """Float NCHW to `size`: antialiased bilinear when shrinking, bicubic when growing (callers clamp)."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    smaller = size[0] < x.shape[-2]
    return F.interpolate(x, size=size, mode="bilinear" if smaller else "bicubic", antialias=smaller, align_corners=False)


# ---------------------------------------------------------------- the contract

class FaceModel:
    """Aligned faces in, the same faces changed out: `model(faces)`.

    A subclass supplies `_forward(x)`: float (n, 3, size, size) in [-1, 1] on
    the model's device -> (the same shape, an optional (n, 1, h, w) heatmap).
    """

    kind = "face model"

    def __init__(self, net: nn.Module, size: int, device: torch.device | str | None, batch_size: int, step: int | None = None):
        self.device = as_device(device)
        self.net = net.to(self.device).eval()
        self.size = int(size)
        self.dtype = inference_dtype(self.device)
        self.batch_size = _check_batch_size(batch_size)
        self.step = step

    @property
    def label(self) -> str:
        return self.kind

    @property
    def name(self) -> str:
        """What the model does, for titles and file names: "swap to A (step 1200)", "U-GAT-IT A2B (step 1000)"."""
        return self.label + ("" if self.step is None else f" (step {self.step})")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, {self.size} px, {self.device})"

    def _forward(self, x: torch.Tensor, **kw):
        raise NotImplementedError

    @torch.no_grad()
    def _run(self, faces: torch.Tensor, batch_size: int, **kw) -> tuple[torch.Tensor, torch.Tensor | None]:
        """uint8 (N, H, W, 3) or float (N, 3, H, W) faces -> the same kind, size and device, plus (N, 1, H, W) heatmaps or None.

        Each batch travels to the model's device as it came (uint8 is a quarter
        of float32's bytes) and comes back as it went in.
        """
        from ..train import autocast

        is_uint8 = faces.dtype == torch.uint8
        h, w = faces.shape[1:3] if is_uint8 else faces.shape[-2:]
        outs, heats = [], []
        for chunk in faces.split(batch_size):
            x = chunk.to(self.device)
            x = x.permute(0, 3, 1, 2).float() / 127.5 - 1 if is_uint8 else x.float()
            with autocast(self.device, self.dtype):
                out, heat = self._forward(resize_faces(x, self.size), **kw)
            out = resize_faces(out.float(), (h, w)).clamp(-1, 1)
            out = ((out + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous() if is_uint8 else out.to(faces.dtype)
            outs.append(out.to(faces.device))
            if heat is not None:
                heats.append(resize_faces(heat.float(), (h, w)).to(faces.device))
        if not outs:
            return faces.clone(), torch.zeros((0, 1, h, w), device=faces.device)
        return torch.cat(outs), (torch.cat(heats) if heats else None)

    def apply(self, faces, batch_size: int | None = None, return_cam: bool = False, **kw):
        """The contract: faces of any size and kind in, the same kind, size and device out."""
        batch_size = self.batch_size if batch_size is None else _check_batch_size(batch_size)
        if isinstance(faces, np.ndarray):
            if faces.dtype != np.uint8 or faces.ndim != 4 or faces.shape[-1] != 3:
                raise ValueError(f"faces must be uint8 (N, H, W, 3) RGB crops, got {faces.dtype} {faces.shape}")
            out, heat = self._run(torch.from_numpy(np.ascontiguousarray(faces)), batch_size, **kw)
            out, heat = out.numpy(), (None if heat is None else heat.numpy())
        elif isinstance(faces, torch.Tensor) and faces.dtype == torch.uint8:
            if faces.ndim != 4 or faces.shape[-1] != 3:
                raise ValueError(f"uint8 faces must be (N, H, W, 3) RGB, got shape {tuple(faces.shape)}")
            out, heat = self._run(faces, batch_size, **kw)
        elif isinstance(faces, torch.Tensor):
            if faces.ndim != 4 or faces.shape[1] != 3:
                raise ValueError(f"A float tensor of faces must be (N, 3, H, W) in [-1, 1], got shape {tuple(faces.shape)}")
            out, heat = self._run(faces.detach(), batch_size, **kw)
        else:
            raise TypeError(f"faces must be a uint8 (N, H, W, 3) array or a float (N, 3, H, W) tensor, not {type(faces).__name__}")
        if return_cam:
            if heat is None:
                raise ValueError(f"{type(self).__name__} has no attention heatmaps; return_cam is for the U-GAT-IT Translator.")
            return out, heat[:, 0] if isinstance(faces, np.ndarray) or faces.dtype == torch.uint8 else heat
        return out

    def __call__(self, faces):
        return self.apply(faces)


class Swapper(FaceModel):
    """Lesson 03's autoencoder: `swap(faces, to="B")` paints faces as B; `model(faces)` paints them as `self.to`."""

    kind = "swap"

    def __init__(self, model: nn.Module, device: torch.device | str | None = "cpu", batch_size: int = 64, step: int | None = None, to: str = "B"):
        super().__init__(model, model.spec.size, device, batch_size, step)
        self.to = _check_identity(to)

    @property
    def model(self) -> nn.Module:
        return self.net

    @property
    def label(self) -> str:
        return f"swap to {self.to}"

    def _forward(self, x: torch.Tensor, to: str = "B"):
        return self.net((x + 1) / 2, to).float() * 2 - 1, None

    def swap(self, faces, to: str | None = None):
        """Faces of one identity painted as identity `to` ("A" or "B"; default self.to)."""
        return self.apply(faces, to=self.to if to is None else _check_identity(to))

    def __call__(self, faces):
        return self.swap(faces)


class Translator(FaceModel):
    """Lesson 04's U-GAT-IT generator: `translate(faces)`; `return_cam=True` adds the attention heatmaps."""

    kind = "ugatit"

    def __init__(self, generator: nn.Module, size: int, direction: str = "A2B", device=None, amp: torch.dtype | None = None,
                 batch_size: int = 8, step: int | None = None):
        if device is None:
            device = next(generator.parameters()).device
        super().__init__(generator, size, device, batch_size, step)
        self.direction = _check_direction(direction)
        if amp is not None:
            self.dtype = amp

    @property
    def label(self) -> str:
        return f"U-GAT-IT {self.direction}"

    @property
    def generator(self) -> nn.Module:
        return self.net

    @property
    def amp(self) -> torch.dtype | None:
        return self.dtype

    def _forward(self, x: torch.Tensor):
        out, _, heat = self.net(x)
        return out, heat

    def translate(self, faces, batch_size: int | None = None, return_cam: bool = False):
        """Translated faces (and CAM heatmaps at the input size, (N, H, W), when `return_cam`)."""
        return self.apply(faces, batch_size, return_cam)

    def __call__(self, faces):
        return self.translate(faces)


def _check_identity(to) -> str:
    if to not in IDENTITIES:
        raise ValueError(f'to must be "A" or "B", not {to!r}')
    return to


def _check_direction(direction) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'A2B' or 'B2A', got {direction!r}")
    return direction
