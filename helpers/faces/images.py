"""Reading photos upright as RGB uint8, whatever their format, and measuring their sharpness.

Scraped folders hold sideways phone photos, CMYK prints, 16-bit PNGs and
files that are not images at all; `load_image` turns the first kinds into
plain RGB and names the reason for the last (ImageError).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif", ".heic", ".avif")


def check_rgb(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"
        raise ValueError(f"Expected an RGB uint8 image of shape (H, W, 3), got {got}; use load_image() to read files.")
    return image


def blur_score(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image: high for sharp edges, low for blur (Pech-Pacheco 2000)."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


class ImageError(ValueError):
    """A file that is not a readable image; the message says why."""


def _to_rgb8(pil) -> np.ndarray:
    """Any Pillow mode -> RGB uint8: transparency onto white, 16-bit scaled down, CMYK converted."""
    from PIL import Image

    mode = pil.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(pil, dtype=np.float64)
        top = 65535.0 if a.max() > 255 else 255.0
        gray = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([gray] * 3, -1))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in pil.info):
        rgba = pil.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        pil = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(pil.convert("RGB"), dtype=np.uint8))


def _cv2_read(path: Path) -> np.ndarray | None:
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        return None
    if image.dtype == np.uint16:
        image = (image / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image.astype(np.float64), None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        alpha = image[..., 3:4].astype(np.float64) / 255.0
        image = (image[..., :3] * alpha + 255 * (1 - alpha) + 0.5).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read a photo upright as RGB uint8, whatever its mode; raise ImageError with the reason if unreadable.

    Phones store portrait photos sideways plus an EXIF orientation tag; we
    apply it. Pillow reads first (it knows EXIF); OpenCV is the fallback for
    formats Pillow does not identify.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ImageError("not a file")
    if path.stat().st_size == 0:
        raise ImageError("empty file")
    try:
        with Image.open(path) as pil:
            pil.load()
            pil = ImageOps.exif_transpose(pil)
            image = _to_rgb8(pil)
    except UnidentifiedImageError:
        image = _cv2_read(path)
        if image is None:
            raise ImageError("not an image (unknown format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        reason = "truncated" if "truncated" in str(exc).lower() else "corrupt"
        raise ImageError(f"{reason} ({exc})") from None
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ImageError(f"too small ({image.shape[1]}x{image.shape[0]})")
    return image


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder (by extension, not recursive), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No folder {folder}: check the path (notebook 01 writes workspace/raw/<domain>/).")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
