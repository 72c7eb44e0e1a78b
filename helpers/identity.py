"""Did the swap work? Ask a face recognizer we did not train.

A swap's loss says how well each decoder redraws its own person; it cannot
say whether A's face, painted by decoder B, *is* B. An independent judge can:
dlib's ResNet face recognizer (the model behind the `face_recognition`
package, 99.38 % on LFW) maps a face to 128 numbers, and two photos of one
person lie closer than 0.6 apart, its published same-person threshold.

The weights come from the `face_recognition_models` package on PyPI (dlib's
own release, CC0); dlib itself from `dlib` (Colab has it) or the prebuilt
`dlib-bin` wheels. Nothing is downloaded at run time. Where either is
missing, `unavailable()` says so in one sentence and the lessons skip the
number instead of failing: `pip install "polyjuice-helpers[identity]"`.

Each identity is known from a gallery (its training faces). A face is
"taken for" a person when its median distance to that person's gallery is
under the threshold, and "nearer" them when that distance is smaller than
to the other person's gallery. `swap_success` scores held-out faces:

    A->B, B->A         swapped faces, judged against the target
    A, B (unswapped)   the held-out faces themselves, judged against their own person
    A->A, B->B         reconstructions, judged against their own person

The sanity rows must score high for the number to mean anything; a
"swapper" that returns its input scores 0 % on the swap rows.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

THRESHOLD = 0.6  # dlib's published same-person distance for this model
RECOGNIZER = "dlib ResNet face recognizer (face_recognition_models, LFW 99.38 %)"
INSTALL = 'pip install "polyjuice-helpers[identity]"'
CHIP = 150  # dlib's recognizer reads 150 px face chips
IDENTITIES = ("A", "B")


def _models_folder() -> Path | None:
    """face_recognition_models' data folder, found without importing it (its __init__ needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def unavailable() -> str | None:
    """None when the recognizer can run here; otherwise the one sentence that says why not and what to do."""
    if importlib.util.find_spec("dlib") is None:
        return f"The swap-success number is skipped: dlib is not installed ({INSTALL} adds it)."
    folder = _models_folder()
    if folder is None or not (folder / "dlib_face_recognition_resnet_model_v1.dat").is_file():
        return f"The swap-success number is skipped: the recognizer's weights (face_recognition_models) are not installed ({INSTALL})."
    return None


class Recognizer:
    """dlib's face recognizer on aligned crops: `embed(faces) -> (N, 128)` descriptors."""

    name, threshold = RECOGNIZER, THRESHOLD

    def __init__(self):
        reason = unavailable()
        if reason:
            raise RuntimeError(reason)
        import dlib

        folder = _models_folder()
        self._landmarks = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat"))
        self._dlib = dlib

    def embed(self, faces: np.ndarray) -> np.ndarray:
        """uint8 RGB aligned crops (N, S, S, 3), as lesson 02 writes them -> float32 (N, 128).

        The crops are centred on the face (helpers.faces.align), so the face's
        box is the central square; dlib finds its own five landmarks inside it
        and cuts its own chip, as it would from a detection.
        """
        faces = np.asarray(faces)
        if faces.ndim != 4 or faces.shape[-1] != 3 or faces.dtype != np.uint8:
            raise ValueError(f"Faces must be uint8 (N, H, W, 3) RGB, got {faces.dtype} {faces.shape}")
        out = np.empty((len(faces), 128), np.float32)
        for i, face in enumerate(faces):
            face = _at_least(face, 2 * CHIP)
            side = face.shape[0]
            inner = side / 1.4  # the tight face square inside the default 20 % margin (helpers.faces.align)
            lo, hi = int(round((side - inner) / 2)), int(round((side + inner) / 2))
            shape = self._landmarks(face, self._dlib.rectangle(lo, lo, hi, hi))
            chip = self._dlib.get_face_chip(face, shape, size=CHIP, padding=0.25)
            out[i] = np.asarray(self._net.compute_face_descriptor(chip), np.float32)
        return out


def _at_least(face: np.ndarray, side: int) -> np.ndarray:
    """Small crops (a 64 px swap) upscaled, so dlib's landmarks and chip see a face of the size it knows."""
    import cv2

    face = np.ascontiguousarray(face)
    if face.shape[0] >= side:
        return face
    return cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)


@dataclass
class Row:
    """One line of the report: which faces, whom they should be taken for, and how many were."""

    label: str
    should_be: str
    faces: int
    accepted: float  # share within the threshold of `should_be`'s gallery
    nearer: float  # share nearer `should_be` than the other identity
    distance: float  # mean median-distance to `should_be`'s gallery

    def text(self) -> str:
        return (f"{self.label:<16} {self.faces:>5}  {self.accepted:>7.0%}  {self.nearer:>7.0%}  {self.distance:>8.3f}")


@dataclass
class SwapSuccess:
    """The report of `swap_success`: swap rows first, then the sanity rows."""

    rows: list[Row]
    threshold: float = THRESHOLD
    recognizer: str = RECOGNIZER
    names: dict = field(default_factory=lambda: {"A": "A", "B": "B"})
    judge: "Judge | None" = field(default=None, repr=False)  # the galleries it used, to judge more faces alike

    def row(self, label: str) -> Row:
        return next(r for r in self.rows if r.label == label)

    @property
    def worst_swap(self) -> float:
        """The lower of the two directions' accepted shares: the number a preset must reach."""
        return min(self.row("A->B").accepted, self.row("B->A").accepted)

    def sentence(self) -> str:
        """What a learner reads under the swap picture."""
        a, b = self.names["A"], self.names["B"]
        ab, ba = self.row("A->B"), self.row("B->A")
        said = (f"A face recognizer we did not train takes {ab.accepted:.0%} of {a}'s held-out faces, swapped, for {b}, "
                f"and {ba.accepted:.0%} of {b}'s for {a}")
        sane = [r for r in self.rows if r.label in ("A", "B")]
        if sane:  # the check that the judge itself is sound
            low = min(r.accepted for r in sane)
            said += f" (as a check: of the unswapped faces, it takes {low:.0%}{'' if low == 1 else ' or more'} for their own person)"
        return said + "."

    def table(self) -> str:
        head = f"{'faces':<16} {'n':>5}  {'taken':>7}  {'nearer':>7}  {'distance':>8}   (taken: within {self.threshold} of the person's gallery)"
        return "\n".join([head] + [r.text() for r in self.rows])

    def log_row(self, step: int) -> dict:
        """A row for identity.csv: accepted and nearer shares per row, mean distance of the swaps."""
        row = {"step": step}
        for r in self.rows:
            key = r.label.replace("->", "2")
            row[f"taken_{key}"] = f"{r.accepted:.4f}"
            row[f"nearer_{key}"] = f"{r.nearer:.4f}"
        for r in self.rows[:2]:
            row[f"distance_{r.label.replace('->', '2')}"] = f"{r.distance:.4f}"
        return row

    def __repr__(self) -> str:
        return f"{self.sentence()}\n{self.table()}"


class Judge:
    """The recognizer plus each identity's gallery, embedded once; scores batches of faces against them."""

    def __init__(self, gallery: dict, recognizer: Recognizer | None = None, max_gallery: int = 64):
        self.recognizer = recognizer or Recognizer()
        self.gallery = {}
        for k in IDENTITIES:
            faces = np.asarray(gallery[k])
            if len(faces) == 0:
                raise ValueError(f"The gallery of {k} is empty: the judge needs real faces of each person.")
            pick = np.linspace(0, len(faces) - 1, min(max_gallery, len(faces))).round().astype(int)
            self.gallery[k] = self.recognizer.embed(faces[pick])

    def distances(self, faces: np.ndarray) -> dict[str, np.ndarray]:
        """Each face's median distance to each identity's gallery."""
        emb = self.recognizer.embed(faces)
        return {k: np.median(np.linalg.norm(emb[:, None] - g[None], axis=-1), axis=1) for k, g in self.gallery.items()}

    def row(self, label: str, faces: np.ndarray, should_be: str) -> Row:
        if len(faces) == 0:
            return Row(label, should_be, 0, float("nan"), float("nan"), float("nan"))
        d = self.distances(faces)
        other = "B" if should_be == "A" else "A"
        mine = d[should_be]
        return Row(label, should_be, len(faces), float(np.mean(mine < self.recognizer.threshold)),
                   float(np.mean(mine < d[other])), float(np.mean(mine)))


def swap_success(swap: Callable, heldout: dict, gallery: dict | None = None, judge: Judge | None = None,
                 sanity: bool = True, names: dict | None = None) -> SwapSuccess:
    """Score a swap on held-out faces. `swap(faces, to)` is `Swapper.swap`; faces are uint8 (N, S, S, 3).

    `heldout` and `gallery` map "A" and "B" to faces of each person (the gallery:
    faces the judge knows them by, e.g. the training faces). Swap rows: A->B and
    B->A. Sanity rows (sanity=True): the unswapped held-out faces and the
    reconstructions A->A, B->B, each judged against its own person.
    """
    judge = judge or Judge(gallery)
    rows = [judge.row("A->B", swap(heldout["A"], "B"), "B"), judge.row("B->A", swap(heldout["B"], "A"), "A")]
    if sanity:
        rows += [judge.row("A", heldout["A"], "A"), judge.row("B", heldout["B"], "B"),
                 judge.row("A->A", swap(heldout["A"], "A"), "A"), judge.row("B->B", swap(heldout["B"], "B"), "B")]
    return SwapSuccess(rows, judge.recognizer.threshold, judge.recognizer.name, names or {"A": "A", "B": "B"}, judge)


def video_success(video, judge: Judge, should_be: str, every: int = 4, detector="auto", device=None) -> Row:
    """Lesson 05's number: of a rendered video's frames (every `every`-th), the share whose largest face the
    recognizer takes for `should_be`. The frames are read back from the file, as a viewer would see them."""
    from .faces import align_face, make_detector
    from .video import iter_frames

    detect = make_detector(detector, device=device)
    crops = []
    for frame in iter_frames(video, every=every):
        faces = detect.detect(frame.image)
        if faces:
            crops.append(align_face(frame.image, max(faces, key=lambda f: f.size), size=256).image)
    faces = np.stack(crops) if crops else np.zeros((0, 256, 256, 3), np.uint8)
    return judge.row(f"frames as {should_be}", faces, should_be)


def judge_swapper(swapper, faces_a, faces_b, cfg, size: int | None = None, names: dict | None = None) -> SwapSuccess | None:
    """Lesson 03's number: swap_success on the faces training held out, each person known by the faces it trained on.

    `size` defaults to the model's own (cfg.size), the resolution training judges at too: a 64 px model
    draws 64 px faces, and against a sharper gallery the recognizer marks down blur, not identity (on
    the sample swap at 256 px it took only 38 % of the woman's own reconstructions for her). Pass a
    larger size to ask the stricter question. Returns None, after printing the one sentence that says
    why, where the recognizer is not installed.
    """
    size = size or cfg.size
    from .data import load_faces
    from .swap import _split_seed
    from .train import split_holdout

    reason = unavailable()
    if reason:
        print(reason)
        return None
    held, gallery = {}, {}
    for k, folder in (("A", faces_a), ("B", faces_b)):
        faces = load_faces(folder, size, limit=cfg.max_faces, progress=False)
        train, ho = split_holdout(len(faces), cfg.holdout, _split_seed(cfg, k))
        gallery[k], held[k] = faces[train.numpy()], faces[ho.numpy()]
    return swap_success(lambda f, to: swapper.swap(f, to=to), held, judge=Judge(gallery), names=names)


def judge_render(rendered, original, faces_a, faces_b, to: str = "A", every: int = 4) -> str | None:
    """Lesson 05's number, in one sentence: the share of rendered frames taken for `to`, beside the original's share.

    None (after printing why) where the recognizer is not installed.
    """
    from .data import load_faces

    reason = unavailable()
    if reason:
        print(reason)
        return None
    judge = Judge({"A": load_faces(faces_a, 160, progress=False), "B": load_faces(faces_b, 160, progress=False)})
    after, before = video_success(rendered, judge, to, every), video_success(original, judge, to, every)
    return (f"A face recognizer we did not train takes {after.accepted:.0%} of the rendered frames' faces ({after.faces} judged) "
            f"for {to}, and {before.accepted:.0%} of the original's ({before.faces} judged).")


def identity_hooks(trainer) -> list:
    """The swap trainer's identity.csv hook every `identity_every` steps, where the recognizer is installed;
    else one sentence (on rank 0) and no hook."""
    from .train import Hook, is_main

    if not trainer.cfg.identity_every:
        return []
    reason = unavailable()
    if reason:
        if is_main():
            print(reason)
        return []
    return [Hook("identity", lambda: judge_training(trainer), every=trainer.cfg.identity_every)]


def judge_training(trainer, sanity: bool = False) -> dict | None:
    """A row for identity.csv: how often the recognizer takes the trainer's held-out swaps for the target.

    The galleries (the training faces) are embedded once and kept on the trainer.
    """
    import torch

    from .facemodel import Swapper

    n = trainer.cfg.identity_faces
    held = {k: trainer.heldout_faces[k][:n].permute(0, 2, 3, 1).cpu().numpy() for k in IDENTITIES}
    if min(len(f) for f in held.values()) == 0:
        return None
    if getattr(trainer, "_judge", None) is None:
        trainer._judge = Judge({k: trainer.train_faces[k].permute(0, 2, 3, 1).cpu().numpy() for k in IDENTITIES})
    swapper = Swapper(trainer.model, trainer.device, to="B")
    try:
        with torch.no_grad():
            report = swap_success(lambda f, to: swapper.swap(f, to=to), held, judge=trainer._judge, sanity=sanity)
    finally:
        trainer.model.train()
    trainer.last_identity = report
    return report.log_row(trainer.step)
