"""`python -m helpers.course results`: the laptop presets end to end on the sample data, and the proof.

It crops every frame of the sample videos, trains the swap (SwapConfig.laptop)
and U-GAT-IT (UGATITConfig.laptop) on this machine's CPU, judges the swap with
an independent face recognizer (helpers.identity), renders a swapped and a
translated clip, and writes the pictures the README opens with, plus
results.json: commit, device, threads, minutes, steps and every metric.
Training resumes, so a stopped run continues when the command runs again.
`quick=True` is the same path with the quick presets (the test).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "assets" / "results"
CLIP_SECONDS = 4.0  # of each rendered clip, in the GIF and the MP4
STRICT_PX = 128  # the stricter question, also recorded: the swap judged against a sharper gallery than the model draws
MP4_LIMIT = 3 * 2**20


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"device": gpu or f"CPU: {cpu}", "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}


def crop_samples(ws, names=("woman", "man", "cartoon"), every: int = 1) -> dict:
    """Every `every`-th frame of each sample video, detected, aligned and cropped by helpers.faces.crop_video."""
    from .data import list_faces
    from .faces import SAMPLE_VIDEOS, crop_video
    from .samples import fetch_samples

    videos = fetch_samples(ws.samples, [SAMPLE_VIDEOS[n] for n in names], progress=False)
    counts = {}
    for name in names:
        folder = ws.faces / name
        if not (folder.is_dir() and list_faces(folder)):
            crop_video(videos[SAMPLE_VIDEOS[name]], folder, size=256, every=every, detector="mtcnn", progress=False)
        counts[name] = len(list_faces(folder))
    return counts


def lesson_grids(ws, names=("woman", "man", "cartoon"), n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Lessons 01 and 02 in two pictures: raw frames of each sample video, then aligned crops of the same people."""
    import cv2

    from .data import load_faces
    from .faces import SAMPLE_VIDEOS
    from .video import frames_at, probe
    from .viz import image_grid

    frames, crops = [], []
    for name in names:
        video = ws.samples / SAMPLE_VIDEOS[name]
        duration = probe(video).duration or 1.0
        for f in frames_at(video, list(np.linspace(0.05, 0.9, n) * duration)):
            h, w = f.image.shape[:2]
            frames.append(cv2.resize(f.image, (round(w * 128 / h), 128), interpolation=cv2.INTER_AREA))
        faces = load_faces(ws.faces / name, 128, progress=False)
        crops += list(faces[np.linspace(0, len(faces) - 1, n).round().astype(int)])
    width = max(f.shape[1] for f in frames)
    frames = [np.pad(f, ((0, 0), (0, width - f.shape[1]), (0, 0)), constant_values=255) for f in frames]
    return image_grid(frames, ncol=n), image_grid(crops, ncol=n)


def train_swap_preset(ws, quick: bool) -> tuple:
    """Lesson 03's laptop preset on woman (A) and man (B); returns (config, run, minutes of training)."""
    from .swap import SwapConfig, train_swap

    cfg = SwapConfig.quick(identity_every=30) if quick else SwapConfig.laptop()
    run = train_swap(cfg, ws.faces / "woman", ws.faces / "man", ws.checkpoints / "swap-laptop", device="cpu", progress=not quick)
    return cfg, run


def swap_grid(swapper, held: dict, n: int = 6) -> np.ndarray:
    """Held-out faces of each person over their swaps: A, A as B, B, B as A."""
    from .viz import image_grid

    a, b = held["A"][np.linspace(0, len(held["A"]) - 1, n).round().astype(int)], held["B"][np.linspace(0, len(held["B"]) - 1, n).round().astype(int)]
    rows = [a, swapper.swap(a, to="B"), b, swapper.swap(b, to="A")]
    return image_grid([img for row in rows for img in row], ncol=n)


def train_ugatit_preset(ws, quick: bool, iterations: int | None, steps: int | None = None):
    """Lesson 04's laptop preset (real faces -> cartoon); `iterations` shortens its schedule and `steps` stops
    this call early (0: use the run as it is); both show in results.json (iterations_planned, steps)."""
    from .ugatit import Trainer, UGATITConfig

    over = {"iterations": iterations} if iterations else {}
    cfg = UGATITConfig.quick(**over) if quick else UGATITConfig.laptop(**over)
    trainer = Trainer(cfg, ws.faces, ws.checkpoints / "ugatit-laptop", device="cpu", quiet=quick)
    run = trainer.train(steps=steps)
    return cfg, trainer, run


def clip(video, out_mp4: Path, out_gif: Path, model, seconds: float, quick: bool):
    """Render `seconds` of a sample video through `model`, keep the MP4 under 3 MB, and a GIF of it."""
    from .render import render_video

    report = render_video(video, out_mp4, model, detector="mtcnn", max_seconds=seconds, progress=False, crf=28)
    if out_mp4.stat().st_size > MP4_LIMIT:
        report = render_video(video, out_mp4, model, detector="mtcnn", max_seconds=seconds, progress=False, crf=35)
    gif_of(out_mp4, out_gif, width=320 if not quick else 160)
    return report


def gif_of(video, out: Path, width: int = 320, every: int = 2) -> Path:
    """Every `every`-th frame of a video as a looping GIF `width` px wide."""
    from PIL import Image

    from .video import iter_frames, probe

    fps = probe(video).fps or 25
    frames = []
    for frame in iter_frames(video, every=every):
        h, w = frame.image.shape[:2]
        frames.append(Image.fromarray(frame.image).resize((width, round(h * width / w)), Image.LANCZOS))
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=int(1000 * every / fps), loop=0, optimize=True)
    return out


def _ugatit_minutes(log: dict) -> float | None:
    """Training minutes of the whole run (resumed calls included) from log.csv's seconds per step."""
    if "sec_per_step" not in log or not len(log["step"]):
        return None
    steps = np.diff(np.concatenate([[0.0], log["step"]]))
    return round(float(np.nansum(steps * log["sec_per_step"])) / 60, 1)


def make_results(ws, out: str | os.PathLike = OUT, quick: bool = False, ugatit_iterations: int | None = None,
                 ugatit_steps: int | None = None) -> dict:
    """Run the laptop presets end to end and write the pictures and results.json into `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .facemodel import load_translator
    from .swap_pictures import _identity_log, plot_identity
    from .train import write_picture
    from .ugatit.pictures import latest_sample, plot_kid
    from .viz import read_log

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = {"commit": _commit(), "made": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), **_machine(),
              "preset": "quick" if quick else "laptop",
              "command": "python -m helpers.course results" + (" --quick" if quick else "")}
    result["faces"] = crop_samples(ws, every=12 if quick else 1)
    sources, faces = lesson_grids(ws)
    write_picture(out / "sources.png", sources)
    write_picture(out / "faces.png", faces)

    # -- lesson 03: the swap, judged by a recognizer we did not train
    swap_cfg, swap_run = train_swap_preset(ws, quick)
    swap_log = read_log(swap_run.log)
    result["swap"] = {"model": swap_cfg.model, "size": swap_cfg.size, "batch_size": swap_cfg.batch_size, "lr": swap_cfg.lr,
                      "steps": swap_run.step, "minutes": round(float(swap_log["minutes"][-1]), 1)}
    from .identity import unavailable

    if unavailable() is None:
        from .identity import judge_swapper
        from .swap import heldout_faces, load_swapper

        swapper = load_swapper(swap_run.folder, "cpu")
        report = judge_swapper(swapper, ws.faces / "woman", ws.faces / "man", swap_cfg, names={"A": "woman", "B": "man"})
        judge = report.judge
        held = {k: heldout_faces(ws.faces / n, swap_cfg, k, 128) for k, n in (("A", "woman"), ("B", "man"))}
        result["swap"]["success"] = {r.label: {"faces": r.faces, "taken": round(r.accepted, 3), "nearer": round(r.nearer, 3),
                                               "distance": round(r.distance, 3)} for r in report.rows}
        result["swap"]["sentence"] = report.sentence()
        result["swap"]["judged_at_px"] = swap_cfg.size
        strict = judge_swapper(swapper, ws.faces / "woman", ws.faces / "man", swap_cfg, size=STRICT_PX)
        result["swap"][f"success_at_{STRICT_PX}px"] = {r.label: {"faces": r.faces, "taken": round(r.accepted, 3),
                                                                "distance": round(r.distance, 3)} for r in strict.rows}
        write_picture(out / "swap_heldout.png", swap_grid(swapper, held))
        ids = _identity_log(swap_run.folder)
        if ids:
            minutes = np.interp(ids["step"], swap_log["step"], swap_log["minutes"])
            ax = plot_identity({**ids, "minutes": minutes}, x="minutes")
            ax.figure.savefig(out / "swap_success.png", dpi=100)
            plt.close(ax.figure)
            result["swap"]["curve"] = [{"minutes": round(float(m), 1), "A->B": float(a), "B->A": float(b)}
                                       for m, a, b in zip(minutes, ids["taken_A2B"], ids["taken_B2A"])]
        if swap_run.timelapse:
            shutil.copyfile(swap_run.timelapse, out / "swap_timelapse.gif")
        from .samples import fetch_samples

        video = fetch_samples(ws.samples, ["woman.mp4"], progress=False)["woman.mp4"]
        swapper.to = "B"
        clip(video, out / "swap_clip.mp4", out / "swap_clip.gif", swapper, 1.0 if quick else CLIP_SECONDS, quick)
        from .identity import video_success

        video_row = video_success(out / "swap_clip.mp4", judge, "B", every=4)
        result["swap"]["rendered_frames_taken_for_B"] = {"frames": video_row.faces, "taken": round(video_row.accepted, 3)}
    else:
        result["swap"]["success"] = unavailable()

    # -- lesson 04: U-GAT-IT, real faces -> cartoon
    ug_cfg, trainer, ug_run = train_ugatit_preset(ws, quick, ugatit_iterations, ugatit_steps)
    kid = read_log(trainer.kid_path) if trainer.kid_path.is_file() else {}
    kid_col = next((c for c in kid if c.startswith("kid_") and not c.endswith("_std")), None)
    ug_log = read_log(ug_run.log)
    result["ugatit"] = {"light": ug_cfg.light, "img_size": ug_cfg.img_size, "ch": ug_cfg.ch, "lr": ug_cfg.lr,
                        "iterations_planned": ug_cfg.iterations, "steps": ug_run.step,
                        "minutes": _ugatit_minutes(ug_log),
                        "sec_per_step": round(float(np.nanmedian(ug_log["sec_per_step"])), 4) if "sec_per_step" in ug_log else None}
    if kid_col:
        untranslated = trainer.kid_untranslated()  # same features, same target faces, the selfies as they are
        result["ugatit"]["kid"] = {"feature": kid_col[4:], "steps": kid["step"].astype(int).tolist(),
                                   "values": [round(float(v), 5) for v in kid[kid_col]],
                                   "untranslated": round(float(untranslated), 5)}
        plt.close("all")
        figs = plot_kid(trainer.kid_path, untranslated)
        (figs[0] if isinstance(figs, list) else figs).savefig(out / "ugatit_kid.png", dpi=100)
        plt.close("all")
    sample = latest_sample(trainer.run_dir)
    if sample:
        shutil.copyfile(sample, out / "ugatit_samples.png")
    from .samples import fetch_samples

    translator = load_translator(trainer.run_dir, "cpu")
    video = fetch_samples(ws.samples, ["man.mp4"], progress=False)["man.mp4"]
    clip(video, out / "ugatit_clip.mp4", out / "ugatit_clip.gif", translator, 1.0 if quick else CLIP_SECONDS, quick)

    result["total_minutes"] = round((time.perf_counter() - t0) / 60, 1)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


LESSON_PICTURES = {  # what each lesson's "where this lesson ends" shows, from assets/results/
    "01": [("sources.png", "raw frames of each domain: what lesson 01 collects")],
    "02": [("faces.png", "the same people detected, aligned on the eyes and cropped")],
    "03": [("swap_heldout.png", "held-out faces (rows 1 and 3) swapped (rows 2 and 4)"), ("swap_success.png", None)],
    "04": [("ugatit_samples.png", "real faces to cartoon, with the attention maps"), ("ugatit_kid.png", None)],
    "05": [("swap_clip.gif", "a swapped clip"), ("ugatit_clip.gif", "a translated clip")],
}


def provenance(result: dict) -> str:
    """One line: which command made the pictures, on what, from which commit."""
    return (f"Made by `{result.get('command')}` ({result.get('preset')} presets) on {result.get('device')}, "
            f"{result.get('cpu_cores')} cores, commit {result.get('commit')}, {result.get('made')}.")


def show_result(lesson: str, folder: str | os.PathLike = OUT) -> None:
    """'Where this lesson ends': the committed pictures of the laptop run, with how they were made (not a QUICK run)."""
    from IPython.display import Image, Markdown, display

    folder = Path(folder)
    path = folder / "results.json"
    if not path.is_file():
        print(f"No results in {folder} yet: `python -m helpers.course results` makes them.")
        return
    result = json.loads(path.read_text())
    for name, caption in LESSON_PICTURES[lesson]:
        if (folder / name).is_file():
            if caption:
                display(Markdown(f"*{caption}*"))
            display(Image(filename=str(folder / name), width=560))
    if lesson in ("03", "05") and isinstance(result.get("swap", {}).get("sentence"), str):
        display(Markdown(result["swap"]["sentence"]))
    display(Markdown(provenance(result)))


def smoke_note(lesson: str) -> str:
    """What a QUICK run is, in one sentence, and where the real result is."""
    return (f"QUICK is a smoke run: it checks that every step of lesson {lesson} works, not what the model can do. "
            "The real result (the laptop preset, trained for real) is at the top of this notebook and of the README.")
