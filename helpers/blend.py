"""Put a new face back into the frame without a visible box or colour seam.

Three things hide the join, each with its own knob:

- a mask: only the face itself (a hull around the landmarks, or an ellipse)
  is replaced, shrunk a little (eroded) so the model's blurry crop border never
  shows, and softened (feathered) so there is no hard edge;
- colour transfer: the new face takes the mean and spread of the original
  face's colours (in LAB, where lightness and colour are separate), or its
  whole histogram, so skin tone and lighting match the scene;
- optional Poisson ("seamless") cloning, which matches gradients at the edge.

The crop goes back with the inverse of the alignment matrix (helpers.faces
gives `matrix`: frame pixels -> crop pixels), warped only inside the face's
bounding box so a 1080p frame costs no more than a 360p one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

MASKS = ("hull", "ellipse")
COLOR_METHODS = ("lab", "hist", None)


def to_crop(points, matrix) -> np.ndarray:
    """Frame pixel coordinates -> crop pixel coordinates (the alignment matrix applied to points)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(matrix, dtype=np.float64)
    return points @ m[:, :2].T + m[:, 2]


MASK_WORK_SIZE = 128  # masks are eroded and blurred at most this big: a soft edge needs no more pixels


def _soften(mask: np.ndarray, erode: float, feather: float) -> np.ndarray:
    """Erode then blur a 0/1 mask; both amounts are fractions of the crop size.

    A mask bigger than MASK_WORK_SIZE is shrunk for both and grown back:
    the blurred edge looks the same, at a quarter of the cost for a 256 px face.
    """
    size = mask.shape[0]
    work = min(size, MASK_WORK_SIZE)
    if work < size:
        mask = cv2.resize(mask, (work, work), interpolation=cv2.INTER_AREA)
    k = int(round(erode * work))
    if k > 0:
        mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    if feather * work > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=feather * work, sigmaY=feather * work)
    if work < size:
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_LINEAR)
    # fade to exactly zero at the crop's edge, so its square outline can never show
    edge = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32)
    ramp = np.clip(edge / max(2.0, feather * size), 0, 1)
    return np.clip(mask * ramp[:, None] * ramp[None, :], 0, 1)


def face_outline(landmarks) -> np.ndarray:
    """Points around brows, temples, cheeks and chin, guessed from five landmarks in face proportions.

    Five landmarks (eyes, nose, mouth corners) only span the middle of the
    face; a face is about two eye-distances wide and reaches about half an
    eye-to-mouth distance above the eyes and below the mouth.
    """
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    eyes, mouth = pts[:2].mean(axis=0), pts[3:5].mean(axis=0)
    across = pts[1] - pts[0]
    d = np.linalg.norm(across) + 1e-6
    u = across / d  # along the eyes
    v = np.array([-u[1], u[0]])  # down the face
    h = max(np.dot(mouth - eyes, v), 0.3 * d)
    shape = [(-0.9, -0.55), (0.9, -0.55), (-1.05, 0.0), (1.05, 0.0), (-0.95, 0.8), (0.95, 0.8),
             (-0.6, 1.45), (0.6, 1.45), (0.0, 1.7), (-0.5, -0.75), (0.5, -0.75)]
    return np.array([eyes + x * d * u + y * h * v for x, y in shape])


def hull_mask(size: int, landmarks) -> np.ndarray:
    """0/1 mask of the convex hull of the landmarks (crop coords); five landmarks are first grown to an outline."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 5:
        pts = np.vstack([pts, face_outline(pts)])
    mask = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts).astype(np.int32)), 1.0, lineType=cv2.LINE_AA)
    return mask


def ellipse_mask(size: int, landmarks=None) -> np.ndarray:
    """0/1 elliptical face mask: fitted to eyes and mouth when landmarks are given, else the crop's middle."""
    mask = np.zeros((size, size), np.float32)
    if landmarks is None or len(landmarks) < 5:
        centre, axes, angle = (size / 2, size / 2), (0.36 * size, 0.44 * size), 0.0
    else:
        pts = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
        eyes, mouth = pts[:2].mean(axis=0), pts[3:5].mean(axis=0)
        eye_dist = np.linalg.norm(pts[1] - pts[0])
        down = np.linalg.norm(mouth - eyes)
        centre = eyes + 0.4 * (mouth - eyes)
        axes = (1.05 * eye_dist, 1.45 * down)
        angle = float(np.degrees(np.arctan2(pts[1][1] - pts[0][1], pts[1][0] - pts[0][0])))
    centre = tuple(int(round(c)) for c in centre)
    axes = tuple(max(1, int(round(a))) for a in axes)
    cv2.ellipse(mask, centre, axes, angle, 0, 360, 1.0, -1, cv2.LINE_AA)
    return mask


MIN_SIZE = 16  # smaller aligned faces leave no room for a mask


def check_blend_options(size: int, erode: float, feather: float) -> None:
    """Crop size, erosion and feathering that make a mask; else a ValueError that says what to pass."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise ValueError(f"size (the aligned face's side in pixels) must be a whole number >= {MIN_SIZE}, "
                         f"e.g. the model's input size 256; got {size!r}")
    for name, value, high in (("erode", erode, 0.5), ("feather", feather, 1.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not 0 <= value < high:
            raise ValueError(f"{name} is a fraction of the face size from 0 up to {high:g}; got {value!r}")


def face_mask(size: int, landmarks=None, kind: str = "hull", erode: float = 0.04, feather: float = 0.05) -> np.ndarray:
    """Soft float32 (size, size) mask in [0, 1] of the face inside an aligned crop.

    `landmarks` are in crop coordinates (see `to_crop`). Without landmarks a
    hull cannot be drawn, so the crop's own ellipse is used.
    """
    if kind not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {kind!r}")
    check_blend_options(size, erode, feather)
    if kind == "hull" and landmarks is not None:
        mask = hull_mask(size, landmarks)
    else:
        mask = ellipse_mask(size, landmarks)
    return _soften(mask, erode, feather)


def _lab(rgb: np.ndarray) -> np.ndarray:
    """8-bit LAB (L scaled to 0..255, a and b offset by 128): 10x faster than float LAB, precise enough here."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)


def transfer_color_lab(source: np.ndarray, reference: np.ndarray, mask=None) -> np.ndarray:
    """Give `source` the per-channel LAB mean and standard deviation of `reference` (inside the mask)."""
    src, ref = _lab(source), _lab(reference)
    sel = np.full(source.shape[:2], 255, np.uint8) if mask is None else ((np.asarray(mask) > 0.5) * 255).astype(np.uint8)
    if cv2.countNonZero(sel) < 16:
        return source
    mu_s, sd_s = (v.ravel() for v in cv2.meanStdDev(src, mask=sel))
    mu_r, sd_r = (v.ravel() for v in cv2.meanStdDev(ref, mask=sel))
    gain = (sd_r / (sd_s + 1e-6)).astype(np.float32)
    # the same affine map for every pixel of a channel: one 256-entry table per channel does it
    levels = np.arange(256, dtype=np.float32)[:, None]
    table = (levels - mu_s[:3].astype(np.float32)) * gain[:3] + mu_r[:3].astype(np.float32)
    table = np.clip(table + 0.5, 0, 255).astype(np.uint8).reshape(1, 256, 3)
    return cv2.cvtColor(cv2.LUT(src, table), cv2.COLOR_LAB2RGB)


def match_histogram(source: np.ndarray, reference: np.ndarray, mask=None) -> np.ndarray:
    """Map each RGB channel of `source` so its histogram (inside the mask) becomes `reference`'s."""
    sel = np.ones(source.shape[:2], bool) if mask is None else np.asarray(mask) > 0.5
    if sel.sum() < 16:
        return source
    out = np.empty_like(source)
    for c in range(3):
        s_cdf = np.cumsum(np.bincount(source[..., c][sel], minlength=256)).astype(np.float64)
        r_cdf = np.cumsum(np.bincount(reference[..., c][sel], minlength=256)).astype(np.float64)
        # each source level goes to the first reference level reached at the same quantile
        lut = np.searchsorted(r_cdf / r_cdf[-1], s_cdf / s_cdf[-1] - 1e-9, side="left")
        out[..., c] = np.clip(lut, 0, 255).astype(np.uint8)[source[..., c]]
    return out


def transfer_color(source, reference, mask=None, method: str | None = "lab") -> np.ndarray:
    """Colour-match the model's face to the original one: 'lab' (mean/std), 'hist' (histogram) or None."""
    if method is None:
        return source
    if method == "lab":
        return transfer_color_lab(source, reference, mask)
    if method == "hist":
        return match_histogram(source, reference, mask)
    raise ValueError(f"color must be one of {COLOR_METHODS}, got {method!r}")


def _roi(matrix, size: int, frame_shape, part=None) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) in the frame of where the crop (or `part` of it, x, y, w, h) lands, clipped; None if outside."""
    inverse = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    px, py, pw, ph = (0, 0, size, size) if part is None else part
    corners = np.array([[px, py], [px + pw, py], [px, py + ph], [px + pw, py + ph]], np.float64)
    pts = to_crop(corners, inverse)
    h, w = frame_shape[:2]
    x0, y0 = np.floor(pts.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def paste_back(frame: np.ndarray, crop: np.ndarray, matrix, mask: np.ndarray, seamless: bool = False) -> np.ndarray:
    """Warp `crop` (S,S,3) and its soft `mask` (S,S) back into a copy of `frame` with the inverse alignment.

    Only the part of the frame under the mask is touched: it is found from
    the mask's own bounding box, so the corners of the square cost nothing.
    """
    size = crop.shape[0]
    out = frame.copy()
    support = cv2.boundingRect((mask > 0).astype(np.uint8))
    if support[2] == 0 or support[3] == 0:
        return out
    box = _roi(matrix, size, frame.shape, support)
    if box is None:
        return out
    x0, y0, x1, y1 = box
    inverse = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    inverse[:, 2] -= (x0, y0)  # warp straight into the region of interest
    dsize = (x1 - x0, y1 - y0)
    face = cv2.warpAffine(crop, inverse, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask.astype(np.float32), inverse, dsize, flags=cv2.INTER_LINEAR, borderValue=0.0)
    region = out[y0:y1, x0:x1]
    if seamless:
        face = _seamless(region, face, alpha)
    out[y0:y1, x0:x1] = mix(region, face, alpha)
    return out


def mix(base: np.ndarray, top: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 base * (1 - alpha) + top * alpha, rounded; alpha float32 (H, W) in [0, 1].

    cv2.blendLinear does it in one pass, ten times faster than numpy's float
    arithmetic; an OpenCV without it gets the numpy version (same result within 1).
    """
    blend_linear = getattr(cv2, "blendLinear", None)
    if blend_linear is not None:
        return blend_linear(top, base, alpha, 1 - alpha)
    a = alpha[..., None]
    return np.clip(base.astype(np.float32) * (1 - a) + top.astype(np.float32) * a + 0.5, 0, 255).astype(np.uint8)


def _seamless(region: np.ndarray, face: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Poisson-blend the face into the region (cv2.seamlessClone); falls back to the face if OpenCV refuses."""
    hard = (alpha > 0.5).astype(np.uint8) * 255
    hard[:2], hard[-2:], hard[:, :2], hard[:, -2:] = 0, 0, 0, 0  # the clone must not touch the border
    ys, xs = np.nonzero(hard)
    if len(xs) < 16:
        return face
    centre = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
    try:
        cloned = cv2.seamlessClone(face[..., ::-1].copy(), region[..., ::-1].copy(), hard, centre, cv2.NORMAL_CLONE)
    except cv2.error:
        return face
    return cloned[..., ::-1]


def blend_face(
    frame: np.ndarray,
    new_crop: np.ndarray,
    matrix,
    original_crop: np.ndarray | None = None,
    landmarks=None,
    mask: str = "hull",
    color: str | None = "lab",
    seamless: bool = False,
    erode: float = 0.04,
    feather: float = 0.05,
) -> np.ndarray:
    """The frame with the model's face pasted in: masked, colour-matched to `original_crop`, feathered.

    `matrix` maps frame -> crop pixels for a crop the size of `new_crop`;
    `landmarks` are in frame coordinates.
    """
    new_crop = np.asarray(new_crop)
    if new_crop.dtype != np.uint8 or new_crop.ndim != 3 or new_crop.shape[0] != new_crop.shape[1] or new_crop.shape[2] != 3:
        raise ValueError(f"new_crop must be a square RGB uint8 face (size, size, 3); got {new_crop.dtype} {new_crop.shape}")
    size = new_crop.shape[0]
    lm = None if landmarks is None else to_crop(landmarks, matrix)
    soft = face_mask(size, lm, mask, erode, feather)
    if original_crop is not None and color is not None:
        new_crop = transfer_color(new_crop, original_crop, soft, color)
    return paste_back(frame, new_crop, matrix, soft, seamless)


def blend_steps(frame, new_crop, matrix, original_crop, landmarks=None, erode: float = 0.04, feather: float = 0.05) -> dict:
    """The same paste done step by step, for seeing what each trick adds (lesson 05's pictures).

    Returns {title: frame}: the bare square, the soft mask, the mask plus LAB
    colour transfer, histogram matching instead, and seamless cloning on top.
    """
    size = new_crop.shape[0]
    lm = None if landmarks is None else to_crop(landmarks, matrix)
    square = np.ones((size, size), np.float32)
    soft = face_mask(size, lm, "hull", erode, feather)
    lab = transfer_color(new_crop, original_crop, soft, "lab")
    return {
        "square paste": paste_back(frame, new_crop, matrix, square),
        "feathered mask": paste_back(frame, new_crop, matrix, soft),
        "mask + LAB colour": paste_back(frame, lab, matrix, soft),
        "mask + histogram": paste_back(frame, transfer_color(new_crop, original_crop, soft, "hist"), matrix, soft),
        "LAB + seamless": paste_back(frame, lab, matrix, soft, seamless=True),
    }


# ---------------------------------------------------------------- a whole photo (lesson 04)

@dataclass
class TranslatedImage:
    image: np.ndarray  # the picture with translated faces pasted back (the input when paste=False or no face)
    crops: np.ndarray  # aligned input crops (N, S, S, 3)
    translated: np.ndarray  # translated crops (N, S, S, 3)
    matrices: list = field(default_factory=list)  # image -> crop pixel maps, one per face


def translate_image(rgb: np.ndarray, translator, detector="mtcnn", size: int = 256, paste: bool = True, mask: str = "hull", feather: float = 0.05) -> TranslatedImage:
    """Find faces with notebook 02's detector and aligner, translate them, optionally paste them back.

    `translator` is anything with `translate(crops) -> crops` (helpers.facemodel's
    Translator). Paste-back is `blend_face` above, without colour transfer:
    matching the old skin colour would wash the makeup out.
    """
    from .faces import align_face, make_detector

    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be a uint8 (H, W, 3) RGB array, got {getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}")
    detector = make_detector(detector)
    faces = detector.detect(rgb)
    empty = np.zeros((0, size, size, 3), np.uint8)
    if not faces:
        return TranslatedImage(rgb.copy(), empty, empty)
    aligned = [align_face(rgb, face, size=size) for face in faces]
    crops = np.stack([a.image for a in aligned])
    out = translator.translate(crops)
    image = rgb
    if paste:
        for crop, a, face in zip(out, aligned, faces):
            image = blend_face(image, crop, a.matrix, landmarks=face.landmarks, mask=mask, color=None, feather=feather)
    return TranslatedImage(image.copy(), crops, out, [a.matrix for a in aligned])
