"""helpers.blend: the face goes back where it came from, only inside a soft mask, in the scene's colours."""

import cv2
import numpy as np
import pytest

from helpers.blend import (blend_face, face_mask, match_histogram, paste_back, to_crop, transfer_color_lab)

SIZE = 128
# five landmarks of a face in a 320x240 frame, tilted a little (eyes, nose, mouth corners)
LANDMARKS = np.array([[140, 100], [180, 104], [160, 125], [144, 145], [175, 148]], np.float64)
TEMPLATE = np.array([[0.34, 0.40], [0.66, 0.40], [0.50, 0.56], [0.37, 0.72], [0.63, 0.72]]) * SIZE


def scene(seed=0):
    rng = np.random.default_rng(seed)
    frame = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 3)
    return cv2.resize(frame, (320, 240))


def alignment(landmarks=LANDMARKS):
    matrix, _ = cv2.estimateAffinePartial2D(landmarks, TEMPLATE)
    return matrix


def test_pasting_the_crop_back_reproduces_the_frame():
    frame = scene()
    m = alignment()
    crop = cv2.warpAffine(frame, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR)
    mask = face_mask(SIZE, to_crop(LANDMARKS, m))
    out = paste_back(frame, crop, m, mask)
    inside = cv2.warpAffine(mask, cv2.invertAffineTransform(m), (320, 240)) > 0.9
    assert inside.sum() > 500
    # the inverse warp lands every pixel where it came from: only resampling blur differs
    assert np.abs(out.astype(int) - frame)[inside].mean() < 8
    assert np.abs(out.astype(int) - frame)[inside].mean() < np.abs(np.roll(frame, 3, axis=1).astype(int) - frame)[inside].mean() / 2


def test_outside_the_mask_the_frame_is_untouched():
    frame = scene()
    m = alignment()
    new_face = np.full((SIZE, SIZE, 3), 255, np.uint8)
    out = blend_face(frame, new_face, m, landmarks=LANDMARKS, color=None)
    changed = np.any(out != frame, axis=-1)
    ys, xs = np.nonzero(changed)
    assert changed.any()
    # every changed pixel lies near the face (the landmarks' neighbourhood), none elsewhere
    assert xs.min() > 90 and xs.max() < 230 and ys.min() > 40 and ys.max() < 220
    assert (out[changed] >= frame[changed]).all()  # white pasted in, nothing else altered


@pytest.mark.parametrize("kind", ["hull", "ellipse"])
def test_masks_are_soft_eroded_and_cover_the_face(kind):
    lm = TEMPLATE
    soft = face_mask(SIZE, lm, kind, erode=0.04, feather=0.05)
    hard = face_mask(SIZE, lm, kind, erode=0.0, feather=0.0)
    assert soft.dtype == np.float32 and 0 <= soft.min() and soft.max() <= 1
    for x, y in lm.astype(int):  # eyes, nose and mouth are fully replaced
        assert soft[y, x] > 0.95
    assert soft[0].max() == 0 and soft[:, 0].max() == 0  # crop border never shows
    assert ((soft > 0.02) & (soft < 0.98)).sum() > 0.05 * SIZE * SIZE  # a feathered edge, no hard step
    assert (soft > 0.5).sum() < (hard > 0.5).sum()  # erosion pulls the edge in


def test_mask_without_landmarks_falls_back_to_the_crop_ellipse():
    mask = face_mask(SIZE, None, "hull")
    assert mask[SIZE // 2, SIZE // 2] > 0.95 and mask[2, 2] == 0


def test_lab_transfer_matches_the_reference_statistics():
    rng = np.random.default_rng(1)
    src = np.clip(rng.normal((90, 140, 200), 20, (64, 64, 3)), 0, 255).astype(np.uint8)  # bluish
    ref = np.clip(rng.normal((200, 150, 120), 12, (64, 64, 3)), 0, 255).astype(np.uint8)  # skin tone
    out = transfer_color_lab(src, ref)
    lab = lambda im: cv2.cvtColor(im.astype(np.float32) / 255, cv2.COLOR_RGB2LAB).reshape(-1, 3)  # noqa: E731
    assert np.allclose(lab(out).mean(0), lab(ref).mean(0), atol=1.5)
    assert np.allclose(lab(out).std(0), lab(ref).std(0), atol=1.5)


def test_histogram_match_uses_only_the_masked_pixels():
    src = np.tile(np.arange(64, dtype=np.uint8)[None, :, None] * 2, (64, 1, 3))
    ref = np.full_like(src, 200)
    ref[:, :32] = 10  # outside the mask: must not count
    mask = np.zeros((64, 64), np.float32)
    mask[:, 32:] = 1
    out = match_histogram(src, ref, mask)
    assert np.all(out[:, 32:] == 200)


def test_seamless_clone_and_faces_at_the_frame_edge_do_not_crash():
    frame = scene()
    edge = LANDMARKS + (150, 0)  # the face half out of the frame on the right
    m = alignment(edge)
    crop = np.full((SIZE, SIZE, 3), 128, np.uint8)
    for seamless in (False, True):
        out = blend_face(frame, crop, m, original_crop=crop, landmarks=edge, seamless=seamless)
        assert out.shape == frame.shape and out.dtype == np.uint8
    far = alignment(LANDMARKS + (5000, 5000))  # entirely outside: nothing to do
    assert np.array_equal(blend_face(frame, crop, far, landmarks=LANDMARKS + (5000, 5000)), frame)


@pytest.mark.parametrize("kwargs,match", [
    (dict(size=0), "size"), (dict(size=-1), "size"), (dict(size=4), "size"),
    (dict(erode=0.5), "erode"), (dict(erode=-0.1), "erode"), (dict(feather=float("nan")), "feather"),
])
def test_impossible_mask_settings_are_named_not_an_opencv_assertion(kwargs, match):
    args = dict(size=SIZE, landmarks=None, kind="ellipse") | kwargs
    with pytest.raises(ValueError, match=match):
        face_mask(**args)


def test_a_model_face_of_the_wrong_kind_is_named():
    frame, m = scene(), alignment()
    with pytest.raises(ValueError, match="new_crop"):
        blend_face(frame, np.zeros((SIZE, SIZE, 3), np.float32), m, landmarks=LANDMARKS)
    with pytest.raises(ValueError, match="new_crop"):
        blend_face(frame, np.zeros((SIZE, SIZE // 2, 3), np.uint8), m, landmarks=LANDMARKS)


def test_translate_image_lives_beside_the_paste_back_and_refuses_a_non_rgb_picture():
    import helpers.ugatit
    from helpers.blend import translate_image

    assert helpers.ugatit.translate_image is translate_image  # lesson 04's import keeps working
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 3\) RGB"):
        translate_image(np.zeros((8, 8), np.uint8), translator=None)


def test_the_mix_without_cv2_blendlinear_gives_the_same_frame(monkeypatch):
    """OpenCV builds without blendLinear fall back to numpy: the pasted frame must not change."""
    frame, m = scene(), alignment()
    new_face = np.random.default_rng(1).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    mask = face_mask(SIZE, to_crop(LANDMARKS, m))
    fast = paste_back(frame, new_face, m, mask)
    monkeypatch.delattr(cv2, "blendLinear", raising=False)
    slow = paste_back(frame, new_face, m, mask)
    assert np.abs(fast.astype(int) - slow).max() <= 1 and np.abs(fast.astype(int) - frame).max() > 100
