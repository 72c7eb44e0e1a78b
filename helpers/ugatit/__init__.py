"""Train U-GAT-IT the official way, faster, without ever losing progress; then translate faces.

    cfg = UGATITConfig.quick()                     # or UGATITConfig(light=True, iterations=300_000)
    trainer = Trainer(cfg, ws.faces, ws.checkpoints / "ugatit", ws.device)
    trainer.train()                                # resumes from the newest checkpoint; Ctrl-C saves
    translator = load_translator(ws.checkpoints / "ugatit", ws.device)
    drag = translator.translate(selfie_crops)      # uint8 (N, H, W, 3) -> same

The recipe is the official one (losses, weights, optimiser, learning-rate
decay, augmentation). What differs is only how the work is done:

- the generators run once per step (the official step runs them twice and
  back-propagates the discriminator loss into them, then throws that away):
  fakes are detached for the discriminator step and reused for the generator step;
- calls that share a network and do not depend on each other are batched
  (every norm here is per image, so this changes no number);
- bf16 autocast on GPUs that have it (fp16 + grad scaler on older ones), with
  the norm statistics and spectral norms in float32; channels-last and fused
  Adam on CUDA; optional torch.compile; discriminator weights frozen while
  the generators learn;
- losses stay on the device and are read every `log_every` steps, so the
  step never waits for the host.

The loop around the step (resume, saves, Ctrl-C, logs, sample grids, the live
view, torchrun) is `helpers.train.fit`, the same one lesson 03 uses.

Modules: config (UGATITConfig, the learning-rate schedule), data (sample faces,
held-out faces, the batch stream), trainer (the Trainer and its step), pictures
(sample grids, CAM overlays, timelapse frames), kid (the metric). Inference
lives in helpers.facemodel; `translate_image` (a whole photo) in helpers.blend.

`reference_mode=True` does the official per-step work instead (float32, eager,
fakes not detached, generators run twice, a host read of the loss every step)
so the benchmark can compare like with like.
"""

from ..blend import TranslatedImage, translate_image  # noqa: F401  (a whole photo: detect, translate, paste back)
from ..facemodel import Translator, load_translator  # noqa: F401  (inference is shared with the face swap)
from ..facemodel import fetch_shared_ugatit as fetch_shared_checkpoint  # noqa: F401
from ..facemodel import read_weights as _read_weights  # noqa: F401
from ..train import make_timelapse  # noqa: F401  (the lesson's timelapse: make_timelapse(run_dir / "timelapse"))
from .config import ARCH_FIELDS, LOSS_NAMES, UGATITConfig, official_lr  # noqa: F401
from .data import SAMPLE_VIDEOS, FaceStream, describe_faces, domain_examples, ensure_faces, load_domain, to_tensor, to_uint8_images  # noqa: F401
from .kid import InceptionFeatures, ONetFeatures, kernel_inception_distance, kid_feature_extractor  # noqa: F401
from .pictures import cam_overlay, latest_sample, plot_kid, plot_rho, rho_by_layer, sample_grid, timelapse_frame  # noqa: F401
from .trainer import Trainer  # noqa: F401
