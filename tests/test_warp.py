"""Random-warp augmentation: the identity at zero strength, and the face stays inside the frame."""

import numpy as np
import torch

from helpers.warp import augment, match_colour

S = 64


def _textured(n=4, seed=0):
    """uint8 NCHW images with detail everywhere, so any resampling shows."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, S, S, generator=g) * 255).round().to(torch.uint8)


def _disk_faces(n):
    """A bright 'face' disk in the middle of a dark frame, as aligned crops have it."""
    yy, xx = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
    disk = ((yy - S / 2 + 0.5) ** 2 + (xx - S / 2 + 0.5) ** 2) <= (0.3 * S) ** 2
    img = torch.where(disk, 230, 20).to(torch.uint8)
    return img.expand(n, 3, S, S).clone(), disk


NO_AUGMENT = dict(warp=0.0, rotate=0.0, zoom=0.0, shift=0.0, flip=False)


def test_zero_strength_is_the_identity():
    x = _textured()
    inputs, targets = augment(x, torch.Generator().manual_seed(1), **NO_AUGMENT)
    assert inputs.dtype == torch.float32 and inputs.shape == (4, 3, S, S)
    torch.testing.assert_close(inputs, x.float() / 255, atol=1e-5, rtol=0)
    torch.testing.assert_close(targets, x.float() / 255, atol=1e-5, rtol=0)
    floats = x.float() / 255  # float input in [0, 1] works the same
    torch.testing.assert_close(augment(floats, torch.Generator(), **NO_AUGMENT)[0], floats, atol=1e-5, rtol=0)


def test_target_is_the_unwarped_face_and_the_frame_edge_stays_put():
    x = _textured()
    inputs, targets = augment(x, torch.Generator().manual_seed(2), warp=1.0, rotate=0, zoom=0, shift=0, flip=False)
    torch.testing.assert_close(targets, x.float() / 255, atol=1e-5, rtol=0)
    assert (inputs - targets).abs().mean() > 0.02  # the inside is bent ...
    for edge in (inputs[..., 0, :], inputs[..., -1, :], inputs[..., :, 0], inputs[..., :, -1]):
        assert edge.shape[-1] == S
    torch.testing.assert_close(inputs[..., 0, :], targets[..., 0, :], atol=0.02, rtol=0)  # ... the border is not
    torch.testing.assert_close(inputs[..., :, -1], targets[..., :, -1], atol=0.02, rtol=0)


def test_default_augmentation_keeps_the_face_inside_the_frame():
    faces, disk = _disk_faces(64)
    inputs, targets = augment(faces, torch.Generator().manual_seed(3))  # defaults: warp 1, 10 deg, 5 %, flips
    area = disk.sum().item()
    yy, xx = torch.meshgrid(torch.arange(S).float(), torch.arange(S).float(), indexing="ij")
    for batch in (inputs, targets):
        bright = batch.mean(1) > 0.5
        assert not bright[:, 0, :].any() and not bright[:, -1, :].any()  # never touches the frame's edge
        assert not bright[:, :, 0].any() and not bright[:, :, -1].any()
        areas = bright.flatten(1).sum(1).float()
        assert ((areas / area > 0.6) & (areas / area < 1.5)).all()  # bent, not pushed out or blown up
        cy = (bright * yy).flatten(1).sum(1) / areas
        cx = (bright * xx).flatten(1).sum(1) / areas
        assert ((cy - (S - 1) / 2).abs() < 0.1 * S).all() and ((cx - (S - 1) / 2).abs() < 0.1 * S).all()


def test_flip_mirrors_about_half_of_the_faces():
    x = _textured(32)
    inputs, _ = augment(x, torch.Generator().manual_seed(4), warp=0, rotate=0, zoom=0, shift=0, flip=True)
    ref = x.float() / 255
    same = [(i - r).abs().max() < 1e-5 for i, r in zip(inputs, ref)]
    mirrored = [(i - r.flip(-1)).abs().max() < 1e-5 for i, r in zip(inputs, ref)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 4 <= sum(mirrored) <= 28


def test_same_generator_state_gives_the_same_batch():
    x = _textured()
    g = torch.Generator().manual_seed(5)
    state = g.get_state()
    first = augment(x, g)
    assert not torch.equal(augment(x, g)[0], first[0])  # the generator moved on
    g.set_state(state)
    again = augment(x, g)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


def test_colour_matching_moves_the_mean_to_the_reference():
    g = torch.Generator().manual_seed(6)
    a = torch.rand(3, 3, 16, 16, generator=g) * 0.3 + 0.2
    b = torch.rand(3, 3, 16, 16, generator=g) * 0.3 + 0.4
    out = match_colour(a, b)
    np.testing.assert_allclose(out.mean(dim=(2, 3)), b.mean(dim=(2, 3)), atol=1e-5)
    np.testing.assert_allclose(out - out.mean(dim=(2, 3), keepdim=True), a - a.mean(dim=(2, 3), keepdim=True), atol=1e-5)
