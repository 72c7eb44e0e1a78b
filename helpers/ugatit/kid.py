"""KID, the paper's metric: Inception features when they can be had, else a labelled offline ONet fallback."""

from __future__ import annotations

import os
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F


class ONetFeatures(nn.Module):
    """Offline fallback for KID: the 256-d face embedding of MTCNN's ONet (weights ship in facenet-pytorch).

    Inception features (the paper's KID) need torch-fidelity and a weight
    download; ONet is a face network already on disk. Its numbers are only
    comparable with other ONet KIDs, which is why the CSV column says so.
    """

    def __init__(self):
        super().__init__()
        from facenet_pytorch.models.mtcnn import ONet

        self.onet = ONet(pretrained=True).eval()
        for p in self.onet.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def forward(self, x):  # float [-1, 1], (N, 3, H, W) RGB
        o = self.onet
        x = F.interpolate(x.float(), size=(48, 48), mode="bilinear", antialias=True, align_corners=False) * (127.5 / 128)
        x = o.pool1(o.prelu1(o.conv1(x)))
        x = o.pool2(o.prelu2(o.conv2(x)))
        x = o.pool3(o.prelu3(o.conv3(x)))
        x = o.prelu4(o.conv4(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)  # the flattening order ONet's dense layer was trained with
        return o.prelu5(o.dense5(x)).double()


class InceptionFeatures(nn.Module):
    """The paper's KID features: torch-fidelity's Inception v3 pool features (2048-d)."""

    def __init__(self):
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"])

    @torch.no_grad()
    def forward(self, x):
        return self.net(((x.float().clamp(-1, 1) + 1) * 127.5).round().byte()).double()


def kid_feature_extractor(device, offline: bool | None = None) -> tuple[nn.Module, str]:
    """(module, name): Inception when torch-fidelity and its weights can be had, else the labelled ONet fallback."""
    offline = os.environ.get("POLYJUICE_OFFLINE") == "1" if offline is None else offline
    if not offline:
        try:
            return InceptionFeatures().to(device), "inception"
        except Exception as exc:  # not installed, or the weight download failed
            warnings.warn(f"KID: Inception features unavailable ({type(exc).__name__}: {exc}); using the ONet fallback.", stacklevel=2)
    return ONetFeatures().to(device), "onet_fallback"


def kernel_inception_distance(features: nn.Module, real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000) -> tuple[float, float]:
    """KID (torchmetrics) of two image sets in [-1, 1] with the given feature extractor; the global RNG is untouched."""
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = KernelInceptionDistance(feature=features, subsets=subsets, subset_size=size).to(real.device)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        mean, std = metric.compute()
    return float(mean), float(std)
