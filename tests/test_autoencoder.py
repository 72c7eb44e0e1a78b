"""The face-swap autoencoder has the classic layout and its variants fit together."""

import pytest
import torch
from torch import nn

from helpers.models.autoencoder import (
    SPECS,
    AutoencoderSpec,
    FaceSwapAutoencoder,
    Upscale,
    build_autoencoder,
    count_parameters,
    spec_for,
    summarize,
)


@pytest.fixture(scope="module")
def classic():
    torch.manual_seed(0)
    return build_autoencoder("classic", 64).eval()


def test_classic_64_has_the_original_layout(classic):
    convs = [m for m in classic.encoder.convs.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128, 256, 512, 1024]
    assert all(c.kernel_size == (5, 5) and c.stride == (2, 2) for c in convs)
    assert all(m.negative_slope == 0.1 for m in classic.modules() if isinstance(m, nn.LeakyReLU))
    assert (classic.encoder.to_latent.in_features, classic.encoder.to_latent.out_features) == (4 * 4 * 1024, 1024)
    assert classic.encoder.from_latent.out_features == 4 * 4 * 1024
    decoder = classic.decoders["A"]
    ups = [m for m in decoder.upscales if isinstance(m, Upscale)]
    assert [u[0].out_channels // 4 for u in ups] == [256, 128, 64]
    assert all(u[0].kernel_size == (3, 3) and isinstance(u[2], nn.PixelShuffle) for u in ups)
    assert decoder.to_rgb.kernel_size == (5, 5) and decoder.to_rgb.out_channels == 3


@torch.no_grad()
def test_classic_64_shapes_and_range(classic):
    x = torch.rand(2, 3, 64, 64)
    code = classic.encoder(x)
    assert code.shape == (2, 512, 8, 8)  # dense back to 4x4x1024, one shared upscale
    for who in ("A", "B"):
        y = classic(x, who)
        assert y.shape == (2, 3, 64, 64)
        assert 0 <= y.min() and y.max() <= 1  # sigmoid output
    assert not torch.equal(classic(x, "A"), classic(x, "B"))  # two separate decoders


@torch.no_grad()
def test_low_memory_variant_is_smaller_with_the_same_shapes(classic):
    low = build_autoencoder("lowmem", 64).eval()
    assert count_parameters(low) < 0.5 * count_parameters(classic)
    assert low(torch.rand(1, 3, 64, 64), "B").shape == (1, 3, 64, 64)


@torch.no_grad()
def test_128_px_variant_from_the_same_code():
    spec = spec_for("classic", 128)
    assert spec is SPECS["classic128"] and spec.grid == 8
    model = FaceSwapAutoencoder(spec).eval()
    assert model(torch.rand(1, 3, 128, 128), "A").shape == (1, 3, 128, 128)
    tiny = build_autoencoder("tiny", 32).eval()  # other variants rescale their grid
    assert tiny(torch.rand(3, 3, 32, 32), "A").shape == (3, 3, 32, 32)


def test_specs_that_do_not_fit_fail_with_a_message():
    with pytest.raises(ValueError, match="does not fit"):
        FaceSwapAutoencoder(AutoencoderSpec(size=72))
    with pytest.raises(ValueError, match="Unknown autoencoder variant"):
        spec_for("huge")


def test_summary_names_each_part_its_weights_and_the_shapes_a_face_takes():
    model = build_autoencoder("tiny", 64)
    lines = summarize(model).splitlines()
    assert [line.split()[0] + (" " + line.split()[1] if line.startswith("decoder") else "") for line in lines] == ["encoder", "decoder A", "decoder B"]
    assert "face (3, 64, 64) -> code" in lines[0]
    assert f"{count_parameters(model.encoder) / 1e6:6.1f} M weights" in lines[0]
    assert all(line.endswith("code -> face (3, 64, 64)") for line in lines[1:])
