"""Find faces, align them on their eyes, crop them, and keep only the good ones.

Why align: a model that sees every face at the same place, size and angle
spends its capacity on the face itself, not on undoing head tilt and zoom.
The seeds cropped the Haar cascade's box as it came; here the eye line sets
the angle and position, and the eye distance (or, for a turned head, the
eye-to-mouth distance) sets the zoom, so every face lands on one template.
We keep that similarity transform (rotation, uniform scale, shift) so a face
can later be pasted back into its frame (notebook 05).

    det = make_detector("mtcnn")
    faces = det.detect(rgb)                      # [Face(box, score, landmarks)]
    crop = align_face(rgb, faces[0], size=256)   # Aligned(image, matrix image->crop)
    report = crop_video("woman.mp4", ws.faces / "woman", every=4)

A face folder holds the aligned PNGs and `faces.csv`, one row per decision:
kept faces, rejected faces with the reason, frames without a face and
unreadable files. Running a crop again skips the sources already in the CSV.

One concern per module: detect (detectors), align (the template and the
matrices), images (reading photos), index (faces.csv), crop (the crop runs
and their filters), draw (pictures), demo (lesson 02's folder of awkward photos),
sample_faces (the sample identities).
"""

from ..phash import hamming, phash  # noqa: F401  (one perceptual hash for the scraper and the cropper)
from .align import (  # noqa: F401
    BOX_GEOMETRY, DEFAULT_MARGIN, FACE_CENTRE, FACE_SIDE, MEAN_FACE, REFINE_SIZE, YAW_SLACK, Aligned, align_face,
    box_matrix, compose, face_matrix, landmark_matrix, outside_fraction, refine_matrix, template, transform_points, warp,
)
from .crop import MULTI_POLICIES, CropConfig, CropReport, crop_folder, crop_video  # noqa: F401
from .detect import (  # noqa: F401
    DETECTOR_NAMES, DETECTORS, HAAR_CASCADE, NO_HAAR, Detector, Face, HaarDetector, HaarUnavailable, MTCNNDetector,
    detector_name, haar_available, make_detector,
)
from .demo import write_messy_photos  # noqa: F401
from .draw import draw_faces, draw_template, face_grid, plot_sharpness  # noqa: F401
from .images import IMAGE_EXTS, ImageError, blur_score, check_rgb, image_files, load_image  # noqa: F401
from .index import (  # noqa: F401
    COLUMNS, INDEX, Rejected, append_index, face_hash, face_rows, iter_faces, parse_array, read_face, read_index,
    rejected_by_reason, rejected_examples, rejection_reason, row_face, set_status, status_counts, status_summary, twin_of,
    write_index,
)
from .sample_faces import SAMPLE_VIDEOS, ensure_sample_faces, sample_every  # noqa: F401  (lessons 03-05 without 02)
