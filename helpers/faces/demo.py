"""A folder of awkward photos, made from the sample files, to show what crop_folder copes with.

Scraped folders hold sideways phone photos, print files, grayscale scans,
group photos and files that are not images at all. Lesson 02 crops this
folder to show each case handled: turned upright, read as RGB, the largest
face kept, the broken files named and skipped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from .images import load_image

EXIF_ORIENTATION = 0x0112
ROTATE_CLOCKWISE = 6  # EXIF orientation value: "turn me 90 degrees clockwise to display"


def write_messy_photos(root: str | Path, samples: dict[str, Path]) -> Path:
    """Empty `root` (a scratch folder), write seven awkward photos into root/photos, and return that folder.

    Emptying `root` also clears faces cropped there before, so the demo crops afresh each run.

    Four are good faces in awkward files (a sideways phone photo with its EXIF
    tag, a CMYK print file, a grayscale PNG, a group photo); three are broken
    (an empty file, a web page saved as .jpg, a download cut short).
    `samples` is helpers.samples.fetch_samples' {name: path}.
    """
    from PIL import Image

    shutil.rmtree(root, ignore_errors=True)
    folder = Path(root) / "photos"
    folder.mkdir(parents=True)
    grace, astronaut = load_image(samples["grace_hopper.jpg"]), load_image(samples["astronaut.png"])
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_CLOCKWISE  # stored turned left, displayed upright
    Image.fromarray(np.ascontiguousarray(np.rot90(grace))).save(folder / "sideways_phone_photo.jpg", exif=exif)
    Image.fromarray(astronaut).convert("CMYK").save(folder / "print_cmyk.jpg")
    Image.fromarray(astronaut).convert("L").save(folder / "grayscale.png")
    shutil.copy(samples["multi_face.jpg"], folder / "group.jpg")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "actually_html.jpg").write_text("<html>403 Forbidden</html>")
    (folder / "cut_off.jpg").write_bytes(Path(samples["grace_hopper.jpg"]).read_bytes()[:20000])
    return folder
