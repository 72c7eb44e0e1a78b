"""U-GAT-IT networks (Kim et al. 2019, arXiv:1907.10830): the generator and its discriminators.

Attribute names and tensor shapes follow the official PyTorch release, so a
checkpoint saved by it (a dict with `genA2B`, `genB2A`, `disGA`, `disGB`,
`disLA`, `disLB`) loads here with `strict=True`. The arithmetic is written for
speed but computes the same functions:

- Instance/layer-norm statistics are always accumulated in float32, even under
  bf16 or fp16 autocast (a mean and variance over 64x64 values in half
  precision is where mixed precision usually hurts GANs), without making a
  float32 copy of the activations.
- AdaILN/ILN fold "normalise twice and blend" into one per-channel scale and
  shift, and derive the layer statistics from the instance statistics, so the
  feature map is read three times instead of about eight.
- The CAM step "weight the map by the classifier's weights, concatenate, 1x1
  conv" is one 1x1 conv with the weights folded in (same result, half the work).

Sizes: the generator runs at any size divisible by 4 (the full model's MLP is
sized for one `img_size`). The published global discriminator (7 layers)
shrinks a 64 px image to nothing, so `fit_layers` drops layers until the map
before its two stride-1 convs is at least 4x4: 7 layers at 128 px and up
(the official layout at 256), 6 at 64 px.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

EPS = 1e-5
NET_NAMES = ("genA2B", "genB2A", "disGA", "disGB", "disLA", "disLB")


# ---------------------------------------------------------------- normalisation

def _instance_moments(x: torch.Tensor):
    """Per-(sample, channel) mean and biased variance in float32, reading x in its own dtype.

    Under bf16/fp16 autocast the activations stay in half precision (no float32
    copy is made or kept for backward); only the sums are accumulated and
    returned in float32.
    """
    hw = x.shape[2] * x.shape[3]
    mean = x.mean(dim=(2, 3), keepdim=True, dtype=torch.float32)
    power = torch.linalg.vector_norm(x, 2, dim=(2, 3), keepdim=True, dtype=torch.float32).square() / hw
    return mean, (power - mean.square()).clamp_min(0)


def instance_layer_norm(x, rho, gamma, beta, eps: float = EPS):
    """rho * IN(x) + (1 - rho) * LN(x), then * gamma + beta; statistics in float32.

    Both variances are unbiased, as in the official code. The layer statistics
    are derived from the per-channel ones, and the whole thing is folded into
    x * scale + shift with per-(sample, channel) scale and shift.
    rho: (1, C, 1, 1); gamma, beta: (N, C, 1, 1) or (1, C, 1, 1).
    """
    c, hw = x.shape[1], x.shape[2] * x.shape[3]
    n = c * hw
    mean_in, var_in = _instance_moments(x)  # biased
    mean_ln = mean_in.mean(dim=1, keepdim=True)
    var_ln = ((var_in + mean_in.square()).mean(dim=1, keepdim=True) - mean_ln.square()).clamp_min(0)
    r_in = torch.rsqrt(var_in * (hw / max(hw - 1, 1)) + eps)
    r_ln = torch.rsqrt(var_ln * (n / max(n - 1, 1)) + eps)
    rho, gamma, beta = rho.float(), gamma.float(), beta.float()
    mix = rho * r_in + (1 - rho) * r_ln
    offset = rho * mean_in * r_in + (1 - rho) * mean_ln * r_ln
    return x * (gamma * mix).to(x.dtype) + (beta - gamma * offset).to(x.dtype)


class InstanceNorm(nn.Module):
    """Instance norm without affine parameters (as in the official encoder), statistics in float32."""

    def __init__(self, num_features: int, eps: float = EPS):
        super().__init__()
        self.num_features, self.eps = num_features, eps

    def forward(self, x):
        mean, var = _instance_moments(x)  # biased, like nn.InstanceNorm2d
        r = torch.rsqrt(var + self.eps)
        return x * r.to(x.dtype) - (mean * r).to(x.dtype)


class AdaILN(nn.Module):
    """Adaptive instance-layer norm: rho learnt per channel, gamma and beta given per image by the MLP."""

    def __init__(self, num_features: int, eps: float = EPS):
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.full((1, num_features, 1, 1), 0.9))

    def forward(self, x, gamma, beta):
        return instance_layer_norm(x, self.rho, gamma[:, :, None, None], beta[:, :, None, None], self.eps)


class ILN(nn.Module):
    """Instance-layer norm of the decoder's up-sampling blocks: rho, gamma and beta are learnt parameters."""

    def __init__(self, num_features: int, eps: float = EPS):
        super().__init__()
        self.eps = eps
        self.rho = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.gamma = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, num_features, 1, 1))

    def forward(self, x):
        return instance_layer_norm(x, self.rho, self.gamma, self.beta, self.eps)


class RhoClipper:
    """Keep every `rho` in [lo, hi] after each optimizer step (use with `module.apply`)."""

    def __init__(self, lo: float = 0.0, hi: float = 1.0):
        if not lo < hi:
            raise ValueError(f"RhoClipper needs lo < hi, got {lo}, {hi}")
        self.lo, self.hi = lo, hi

    def __call__(self, module: nn.Module) -> None:
        rho = getattr(module, "rho", None)
        if isinstance(rho, torch.Tensor):
            with torch.no_grad():
                rho.clamp_(self.lo, self.hi)


def rho_parameters(module: nn.Module) -> list[nn.Parameter]:
    """All rho parameters of a network: clamp these in place without walking the module tree each step."""
    return [p for name, p in module.named_parameters() if name.endswith("rho")]


# ---------------------------------------------------------------- generator

def _conv(cin, cout, k, stride=1, bias=False):
    return nn.Conv2d(cin, cout, kernel_size=k, stride=stride, padding=0, bias=bias)


class ResnetBlock(nn.Module):
    """Encoder bottleneck block: two reflect-padded 3x3 convs with instance norm, plus the input."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), _conv(dim, dim, 3), InstanceNorm(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), _conv(dim, dim, 3), InstanceNorm(dim),
        )

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetAdaILNBlock(nn.Module):
    """Decoder bottleneck block: like ResnetBlock but normalised by AdaILN with the image's gamma and beta."""

    def __init__(self, dim: int):
        super().__init__()
        self.pad1, self.conv1, self.norm1, self.relu1 = nn.ReflectionPad2d(1), _conv(dim, dim, 3), AdaILN(dim), nn.ReLU(True)
        self.pad2, self.conv2, self.norm2 = nn.ReflectionPad2d(1), _conv(dim, dim, 3), AdaILN(dim)

    def forward(self, x, gamma, beta):
        out = self.relu1(self.norm1(self.conv1(self.pad1(x)), gamma, beta))
        out = self.norm2(self.conv2(self.pad2(out)), gamma, beta)
        return x + out


def cam_attention(x, gap_fc: nn.Linear, gmp_fc: nn.Linear, conv1x1: nn.Conv2d, gap_w=None, gmp_w=None):
    """Class activation map attention shared by generator and discriminator.

    The auxiliary classifier sees global average and global max pooled features
    (two logits: "is this the source domain?"); its weights say which channels
    matter, and the feature map re-weighted by them is fused by a 1x1 conv.
    Returns (attended features before activation, cam logits (N, 2)).
    """
    gap_w = gap_fc.weight if gap_w is None else gap_w  # (1, C)
    gmp_w = gmp_fc.weight if gmp_w is None else gmp_w
    gap_logit = gap_fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
    gmp_logit = gmp_fc(F.adaptive_max_pool2d(x, 1).flatten(1))
    c = x.shape[1]
    w = conv1x1.weight  # (C, 2C, 1, 1): conv(cat(x * a, x * m)) == conv_with(W[:, :C] * a + W[:, C:] * m)(x)
    fused = w[:, :c] * gap_w.reshape(1, c, 1, 1) + w[:, c:] * gmp_w.reshape(1, c, 1, 1)
    out = F.conv2d(x, fused, conv1x1.bias)
    return out, torch.cat([gap_logit, gmp_logit], 1)


class ResnetGenerator(nn.Module):
    """Encoder -> CAM attention -> gamma/beta MLP -> AdaILN residual decoder -> image in [-1, 1].

    `light=True` feeds the MLP the globally pooled attention features (C inputs);
    the full model feeds it the whole flattened map (C * (img_size/4)^2 inputs,
    268M weights at 256 px), which is why full U-GAT-IT needs so much memory.
    forward returns (image, cam logits (N, 2), heatmap (N, 1, H/4, W/4)).
    """

    def __init__(self, input_nc=3, output_nc=3, ngf=64, n_blocks=4, img_size=256, light=False):
        super().__init__()
        if img_size % 4:
            raise ValueError(f"img_size must be divisible by 4, got {img_size}")
        self.n_blocks, self.img_size, self.light = n_blocks, img_size, light
        c = ngf * 4
        down = [nn.ReflectionPad2d(3), _conv(input_nc, ngf, 7), InstanceNorm(ngf), nn.ReLU(True)]
        for i in range(2):  # two stride-2 down-sampling convs
            cin = ngf * 2**i
            down += [nn.ReflectionPad2d(1), _conv(cin, cin * 2, 3, stride=2), InstanceNorm(cin * 2), nn.ReLU(True)]
        down += [ResnetBlock(c) for _ in range(n_blocks)]
        self.DownBlock = nn.Sequential(*down)

        self.gap_fc = nn.Linear(c, 1, bias=False)
        self.gmp_fc = nn.Linear(c, 1, bias=False)
        self.conv1x1 = nn.Conv2d(c * 2, c, kernel_size=1, stride=1, bias=True)
        self.relu = nn.ReLU(True)

        mlp_in = c if light else (img_size // 4) ** 2 * c
        self.FC = nn.Sequential(nn.Linear(mlp_in, c, bias=False), nn.ReLU(True), nn.Linear(c, c, bias=False), nn.ReLU(True))
        self.gamma = nn.Linear(c, c, bias=False)
        self.beta = nn.Linear(c, c, bias=False)

        for i in range(n_blocks):
            setattr(self, f"UpBlock1_{i + 1}", ResnetAdaILNBlock(c))
        up = []
        for i in range(2):
            cin = ngf * 2 ** (2 - i)
            up += [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1), _conv(cin, cin // 2, 3), ILN(cin // 2), nn.ReLU(True)]
        up += [nn.ReflectionPad2d(3), _conv(ngf, output_nc, 7), nn.Tanh()]
        self.UpBlock2 = nn.Sequential(*up)

    def forward(self, x):
        x = self.DownBlock(x)
        x, cam_logit = cam_attention(x, self.gap_fc, self.gmp_fc, self.conv1x1)
        x = self.relu(x)
        heatmap = x.sum(dim=1, keepdim=True)
        if self.light:
            style = self.FC(F.adaptive_avg_pool2d(x, 1).flatten(1))
        else:
            if x.shape[2] * x.shape[3] * x.shape[1] != self.FC[0].in_features:
                raise ValueError(f"The full generator was built for {self.img_size} px; got {x.shape[2] * 4} px input")
            style = self.FC(x.flatten(1))  # logical NCHW order, whatever the memory format
        gamma, beta = self.gamma(style), self.beta(style)
        for i in range(self.n_blocks):
            x = getattr(self, f"UpBlock1_{i + 1}")(x, gamma, beta)
        return self.UpBlock2(x), cam_logit, heatmap


# ---------------------------------------------------------------- discriminators

class _SpectralNorm:
    """Spectral normalisation (Miyato et al. 2018) stored the way torch's original hook stores it.

    Parameters `weight_orig`, buffers `weight_u` and `weight_v` (the official
    checkpoints' keys). One power iteration per call in training mode, none in
    eval mode, like the hook. Written out here, instead of the hook, so that
    the estimate runs in float32 even under autocast (the hook mixes a
    half-precision matrix-vector product with float32 vectors) and so that
    torch.compile sees plain code.
    """

    def _setup_spectral_norm(self, eps: float = 1e-12):
        weight = self._parameters.pop("weight")
        self.weight_orig = nn.Parameter(weight.detach())
        self.sn_eps = eps
        rows, cols = weight.shape[0], weight[0].numel()
        self.register_buffer("weight_u", F.normalize(weight.new_empty(rows).normal_(0, 1), dim=0, eps=eps))
        self.register_buffer("weight_v", F.normalize(weight.new_empty(cols).normal_(0, 1), dim=0, eps=eps))

    sn_split: int | None = None  # set by `official_power_iterations`: rows from here on are the second call's

    def _power_iteration(self, mat: torch.Tensor) -> None:
        with torch.no_grad():
            v = F.normalize(mat.t() @ self.weight_u, dim=0, eps=self.sn_eps)
            u = F.normalize(mat @ v, dim=0, eps=self.sn_eps)
            self.weight_v.copy_(v)
            self.weight_u.copy_(u)

    def _sigma(self, mat: torch.Tensor) -> torch.Tensor:
        # clones: a later call updates the buffers in place while this graph still needs them
        return torch.dot(self.weight_u.clone(), mat @ self.weight_v.clone())

    def normalized_weight(self) -> torch.Tensor:
        with torch.autocast(self.weight_orig.device.type, enabled=False):
            w = self.weight_orig.float()
            mat = w.flatten(1)
            if self.training:
                self._power_iteration(mat)
            return (w / self._sigma(mat)).to(self.weight_orig.dtype)

    def _sn_forward(self, x: torch.Tensor, layer) -> torch.Tensor:
        """`layer(x, weight, bias)` with the normalised weight; under `official_power_iterations`, as two calls.

        Two calls (real, then fake) run two power iterations, and the second call
        sees the second estimate of sigma. One batched call does the same: the
        layer is linear in its weight, so rows of the second call are divided by
        the second sigma after an unnormalised pass.
        """
        n = self.sn_split
        if not (self.training and n):
            return layer(x, self.normalized_weight(), self.bias)
        with torch.autocast(self.weight_orig.device.type, enabled=False):
            mat = self.weight_orig.float().flatten(1)
            self._power_iteration(mat)
            first = self._sigma(mat)
            self._power_iteration(mat)
            second = self._sigma(mat)
            scale = torch.cat([first.expand(n), second.expand(x.shape[0] - n)]).reciprocal()
        y = layer(x, self.weight_orig, None)
        y = y * scale.view(-1, *[1] * (y.ndim - 1)).to(y.dtype)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, *[1] * (y.ndim - 2)).to(y.dtype)
        return y


class SNConv2d(_SpectralNorm, nn.Conv2d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_spectral_norm()

    def forward(self, x):
        return self._sn_forward(x, self._conv_forward)


class SNLinear(_SpectralNorm, nn.Linear):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_spectral_norm()

    def forward(self, x):
        return self._sn_forward(x, F.linear)


@contextmanager
def official_power_iterations(discriminator: nn.Module, first_call_rows: int):
    """Let one batched call of `discriminator` on cat([real, fake]) do what the official two calls do.

    Every spectral norm runs two power iterations, and the rows from `first_call_rows`
    on see the second estimate of sigma, as the separate fake call would.
    """
    layers = [m for m in discriminator.modules() if isinstance(m, _SpectralNorm)]
    for m in layers:
        m.sn_split = first_call_rows
    try:
        yield
    finally:
        for m in layers:
            m.sn_split = None


def _sn_conv(cin, cout, k, stride=1, bias=True):
    return SNConv2d(cin, cout, kernel_size=k, stride=stride, padding=0, bias=bias)


def fit_layers(img_size: int, n_layers: int) -> int:
    """Fewest changes to a discriminator's depth so it runs at `img_size`.

    A discriminator with n layers halves the image n-2 times and then applies
    two stride-1 4x4 convs; those need a map of at least 4x4 to leave 2x2.
    """
    while n_layers > 3 and img_size // 2 ** (n_layers - 2) < 4:
        n_layers -= 1
    if img_size // 2 ** (n_layers - 2) < 4:
        raise ValueError(f"img_size {img_size} is too small for a U-GAT-IT discriminator (use 32 px or more)")
    return n_layers


class Discriminator(nn.Module):
    """PatchGAN with spectral norm and its own CAM classifier.

    Global (7 layers) judges the whole face, local (5 layers) 70-ish px patches.
    forward returns (patch logits (N, 1, h, w), cam logits (N, 2), heatmap).
    """

    def __init__(self, input_nc=3, ndf=64, n_layers=5):
        super().__init__()
        if n_layers < 3:
            raise ValueError("a discriminator needs at least 3 layers")
        self.n_layers = n_layers
        layers = [nn.ReflectionPad2d(1), _sn_conv(input_nc, ndf, 4, stride=2), nn.LeakyReLU(0.2, True)]
        for i in range(1, n_layers - 2):
            cin = ndf * 2 ** (i - 1)
            layers += [nn.ReflectionPad2d(1), _sn_conv(cin, cin * 2, 4, stride=2), nn.LeakyReLU(0.2, True)]
        cin = ndf * 2 ** (n_layers - 3)
        layers += [nn.ReflectionPad2d(1), _sn_conv(cin, cin * 2, 4, stride=1), nn.LeakyReLU(0.2, True)]
        self.model = nn.Sequential(*layers)
        c = ndf * 2 ** (n_layers - 2)
        self.gap_fc = SNLinear(c, 1, bias=False)
        self.gmp_fc = SNLinear(c, 1, bias=False)
        self.conv1x1 = nn.Conv2d(c * 2, c, kernel_size=1, stride=1, bias=True)
        self.leaky_relu = nn.LeakyReLU(0.2, True)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = _sn_conv(c, 1, 4, stride=1, bias=False)

    def forward(self, x):
        x = self.model(x)
        # the official code weights the map with the classifiers' raw (not spectrally normalised)
        # weights - its `parameters()[0]` is weight_orig - while the logits use the normalised ones
        x, cam_logit = cam_attention(x, self.gap_fc, self.gmp_fc, self.conv1x1, self.gap_fc.weight_orig, self.gmp_fc.weight_orig)
        x = self.leaky_relu(x)
        heatmap = x.sum(dim=1, keepdim=True)
        return self.conv(self.pad(x)), cam_logit, heatmap


# ---------------------------------------------------------------- the six networks

def build_networks(img_size=256, light=False, ch=64, n_res=4, global_layers=7, local_layers=5) -> nn.ModuleDict:
    """The six networks of a U-GAT-IT run, keyed like the official checkpoint."""
    g, l = fit_layers(img_size, global_layers), fit_layers(img_size, local_layers)
    return nn.ModuleDict({
        "genA2B": ResnetGenerator(3, 3, ch, n_res, img_size, light),
        "genB2A": ResnetGenerator(3, 3, ch, n_res, img_size, light),
        "disGA": Discriminator(3, ch, g),
        "disGB": Discriminator(3, ch, g),
        "disLA": Discriminator(3, ch, l),
        "disLB": Discriminator(3, ch, l),
    })


def official_state(nets: nn.ModuleDict) -> dict:
    """{genA2B: state_dict, ...}: the layout the official code saves with torch.save."""
    return {name: nets[name].state_dict() for name in NET_NAMES}


def load_official_state(nets: nn.ModuleDict, params: dict, strict: bool = True) -> None:
    """Load an official-layout dict; a missing network or a shape mismatch fails with the network's name."""
    missing = [n for n in NET_NAMES if n not in params]
    if missing:
        raise KeyError(f"checkpoint has no {missing}; expected the keys {list(NET_NAMES)}")
    for name in NET_NAMES:
        try:
            nets[name].load_state_dict(params[name], strict=strict)
        except RuntimeError as exc:
            raise RuntimeError(f"{name}: {exc}") from None


def infer_official_config(params: dict, default_size: int = 256) -> dict:
    """img_size, light, ch, n_res of an official checkpoint from its tensor shapes (light files do not say their size)."""
    gen = params["genA2B"]
    ch = gen["DownBlock.1.weight"].shape[0]
    n_res = sum(1 for k in gen if k.startswith("UpBlock1_") and k.endswith("conv1.weight"))
    mlp_in = gen["FC.0.weight"].shape[1]
    light = mlp_in == ch * 4
    img_size = default_size if light else int(round(math.sqrt(mlp_in / (ch * 4)))) * 4
    return {"img_size": img_size, "light": light, "ch": ch, "n_res": n_res}
