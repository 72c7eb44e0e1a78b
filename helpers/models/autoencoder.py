"""The classic face-swap autoencoder: one shared encoder, one decoder per identity.

The encoder squeezes any face through a small dense bottleneck, so it can only
keep what faces have in common (pose, expression, lighting). Each decoder
learns to paint one person from that code. Encode A, decode with B's decoder,
and A's expression comes back with B's face.

Layout of the 2017 original at 64 px (shapes per image):

    64x64x3 -> conv5x5/2 128 -> 256 -> 512 -> 1024      (4x4x1024)
            -> dense 1024 -> dense 4*4*1024 -> reshape (4x4x1024)
            -> upscale 512                               (8x8x512)   shared
    decoder:   upscale 256 -> 128 -> 64 -> conv5x5 to RGB, sigmoid  (64x64x3)

An upscale block is a 3x3 conv to 4x the channels, LeakyReLU(0.1) and a pixel
shuffle, which rearranges those channels into a 2x larger image (sharper than
a transposed conv, no checkerboard). The low-memory and 128 px variants are the
same code with other numbers: see `SPECS`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

IDENTITIES = ("A", "B")


@dataclass(frozen=True)
class AutoencoderSpec:
    """The numbers that define a variant; the grid after the encoder is size / 2**len(encoder_channels)."""

    size: int = 64
    encoder_channels: tuple[int, ...] = (128, 256, 512, 1024)
    latent: int = 1024  # the dense bottleneck: what every face must squeeze through
    bottleneck_channels: int = 1024  # channels of the reshaped code (4x4 at 64 px)
    shared_channels: int = 512  # after the shared upscale block
    decoder_channels: tuple[int, ...] = (256, 128, 64)

    @property
    def grid(self) -> int:
        return self.size // 2 ** len(self.encoder_channels)

    def check(self) -> None:
        down = 2 ** len(self.encoder_channels)
        up = 2 ** (len(self.decoder_channels) + 1)
        if self.size % down or self.grid * up != self.size:
            raise ValueError(
                f"Spec does not fit together: size {self.size} with {len(self.encoder_channels)} stride-2 convs gives a "
                f"{self.grid}x{self.grid} grid, and 1 + {len(self.decoder_channels)} upscale blocks make it {self.grid * up} px."
            )


SPECS = {
    # the 2017 original / the seed's Keras model: ~83M parameters, most of them in the two dense layers
    "classic": AutoencoderSpec(),
    # half the bottleneck and the widest layers: ~4x fewer parameters, for small GPUs (T4 with big batches, laptops)
    "lowmem": AutoencoderSpec(encoder_channels=(128, 256, 512, 512), latent=512, bottleneck_channels=512, shared_channels=256),
    # 128 px: same four convs give an 8x8 grid; a 512 bottleneck keeps the dense layers at ~34M weights each
    "classic128": AutoencoderSpec(size=128, latent=512, bottleneck_channels=512, shared_channels=512, decoder_channels=(512, 256, 128)),
    # a toy with 1/4 of the channels: only for CPU smoke runs (QUICK mode and the tests)
    "tiny": AutoencoderSpec(encoder_channels=(32, 64, 128, 256), latent=256, bottleneck_channels=256, shared_channels=128, decoder_channels=(64, 32, 16)),
}


def spec_for(variant: str, size: int = 64) -> AutoencoderSpec:
    """The spec of a named variant at a size: 'classic' at 128 px is 'classic128', others scale their grid."""
    if variant not in SPECS:
        raise ValueError(f"Unknown autoencoder variant {variant!r}; choose from {sorted(SPECS)}")
    if variant == "classic" and size == 128:
        return SPECS["classic128"]
    spec = SPECS[variant]
    if size != spec.size:
        spec = AutoencoderSpec(**{**asdict(spec), "size": size})
    spec.check()
    return spec


def conv_down(cin: int, cout: int) -> nn.Sequential:
    """5x5 stride-2 conv + LeakyReLU(0.1): halves the image, as in the original."""
    return nn.Sequential(nn.Conv2d(cin, cout, 5, stride=2, padding=2), nn.LeakyReLU(0.1))


class Upscale(nn.Sequential):
    """3x3 conv to 4x channels, LeakyReLU(0.1), pixel shuffle: doubles the image size."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout * 4, 3, padding=1), nn.LeakyReLU(0.1), nn.PixelShuffle(2))


class Encoder(nn.Module):
    """Face -> small shared code (grid x grid x shared_channels after one upscale)."""

    def __init__(self, spec: AutoencoderSpec):
        super().__init__()
        chans = (3,) + tuple(spec.encoder_channels)
        self.convs = nn.Sequential(*[conv_down(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.spec = spec
        flat = chans[-1] * spec.grid * spec.grid
        self.to_latent = nn.Linear(flat, spec.latent)
        self.from_latent = nn.Linear(spec.latent, spec.bottleneck_channels * spec.grid * spec.grid)
        self.upscale = Upscale(spec.bottleneck_channels, spec.shared_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.spec
        x = self.convs(x).flatten(1)
        x = self.from_latent(self.to_latent(x))
        x = x.view(-1, s.bottleneck_channels, s.grid, s.grid)
        return self.upscale(x)


class Decoder(nn.Module):
    """Shared code -> one person's face in [0, 1]."""

    def __init__(self, spec: AutoencoderSpec):
        super().__init__()
        chans = (spec.shared_channels,) + tuple(spec.decoder_channels)
        self.upscales = nn.Sequential(*[Upscale(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.to_rgb = nn.Conv2d(chans[-1], 3, 5, padding=2)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.to_rgb(self.upscales(code)))


class FaceSwapAutoencoder(nn.Module):
    """One encoder, decoders 'A' and 'B'. Images are NCHW floats in [0, 1] at `spec.size`."""

    def __init__(self, spec: AutoencoderSpec | None = None):
        super().__init__()
        self.spec = spec or SPECS["classic"]
        self.spec.check()
        self.encoder = Encoder(self.spec)
        self.decoders = nn.ModuleDict({k: Decoder(self.spec) for k in IDENTITIES})

    def forward(self, x: torch.Tensor, to: str) -> torch.Tensor:
        """Encode any face, decode it as identity `to` ('A' or 'B')."""
        return self.decoders[to](self.encoder(x))


def build_autoencoder(variant: str = "classic", size: int = 64) -> FaceSwapAutoencoder:
    return FaceSwapAutoencoder(spec_for(variant, size))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def summarize(model: FaceSwapAutoencoder) -> str:
    """What each part holds and what it turns into what: weights per part, and the shapes of one face going through."""
    size = model.spec.size
    face = torch.rand(1, 3, size, size, device=next(model.parameters()).device)
    code = model.encoder(face)
    lines = [f"encoder   {count_parameters(model.encoder) / 1e6:6.1f} M weights, face {tuple(face.shape[1:])} -> code {tuple(code.shape[1:])}"]
    for who, decoder in model.decoders.items():
        lines.append(f"decoder {who} {count_parameters(decoder) / 1e6:6.1f} M weights, code -> face {tuple(decoder(code).shape[1:])}")
    return "\n".join(lines)
