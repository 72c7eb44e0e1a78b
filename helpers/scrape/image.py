"""The bytes of one download as an image: magic numbers, a real decode (upright RGB), size limits, an atomic save."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import numpy as np

from .config import DownloadConfig, Skip, _short


def sniff(data: bytes) -> str | None:
    """The image format the first bytes announce (magic numbers), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    return None


def _describe(data: bytes) -> str:
    head = data[:64].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg", b"<")):
        return "the bytes are HTML/XML text, not an image"
    if not data:
        return "empty body"
    return f"unknown first bytes {data[:8].hex()}"


def _to_rgb(im) -> np.ndarray:
    """RGB uint8 from any Pillow mode: transparency over white, CMYK and grey converted, 16-bit scaled."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    elif im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(im, dtype=np.float64)
        scale = 257.0 if a.max() > 255 else 1.0
        return np.repeat(np.clip(a / scale, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(im.convert("RGB"))


_PIL_READY = threading.Lock()


def decode_image(data: bytes, max_pixels: int = DownloadConfig.max_pixels) -> np.ndarray:
    """Really decode the bytes (Pillow), apply the EXIF orientation, return upright RGB uint8."""
    from PIL import Image, ImageOps

    with _PIL_READY:
        Image.init()  # register every format plugin once, before threads race to do it lazily
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG", "PNG", "GIF", "WEBP", "BMP")) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise Skip("too_large", f"{w}x{h} = {w * h / 1e6:.0f} megapixels > max_pixels")
            upright = ImageOps.exif_transpose(im)  # also forces the full decode: truncation shows up here
            return _to_rgb(upright)
    except Skip:
        raise
    except Image.DecompressionBombError as exc:
        raise Skip("too_large", _short(exc, 160)) from exc
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... for broken files
        raise Skip("corrupt", f"does not decode: {_short(exc, 160)}") from exc


def _limit_side(rgb: np.ndarray, max_side: int) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    s = max_side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _save_jpeg(rgb: np.ndarray, folder: Path, name: str, quality: int) -> None:
    """Write atomically (temp file, then rename) and never over an existing file."""
    from PIL import Image

    dest = folder / name
    if dest.resolve().parent != folder.resolve():
        raise Skip("error", f"refusing to write outside {folder}: {name}")  # cannot happen with hex names
    if dest.exists():
        return  # same SHA-256 name = same content, written by an earlier (interrupted) run
    tmp = folder / f".{name}.{threading.get_ident()}.part"
    Image.fromarray(rgb).save(tmp, "JPEG", quality=quality)
    os.replace(tmp, dest)


def square_thumbnails(paths, size: int = 128) -> list[np.ndarray]:
    """Centre-cropped square RGB thumbnails, for a grid of what came in."""
    import cv2
    from PIL import Image

    thumbs = []
    for p in paths:
        with Image.open(p) as im:
            rgb = np.asarray(im.convert("RGB"))
        h, w = rgb.shape[:2]
        s = min(h, w)
        crop = rgb[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        thumbs.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return thumbs
