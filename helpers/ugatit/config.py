"""What a U-GAT-IT run is: its configuration (the official defaults) and its learning-rate schedule."""

from __future__ import annotations

from dataclasses import dataclass

LOSS_NAMES = ("d_loss", "g_loss", "g_adv", "g_cycle", "g_identity", "g_cam")
ARCH_FIELDS = ("img_size", "light", "ch", "n_res")


@dataclass
class UGATITConfig:
    """Everything a run needs; defaults are the official code's (its main.py and UGATIT.py)."""

    # data: face folders under ws.faces; several folders make one domain (a tuple, or a comma list: "woman,man")
    domain_a: tuple = ("selfie",)
    domain_b: tuple = ("drag",)
    img_size: int = 256
    load_size: int | None = None  # resize before the random crop; None = img_size * 286 / 256 (official: 286 for 256)
    flip: bool = True
    holdout: float = 0.1  # fraction of each domain never trained on (sample grids, timelapse, KID); as in helpers.swap
    # networks
    light: bool = False
    ch: int = 64
    n_res: int = 4
    # optimisation
    iterations: int = 1_000_000
    batch_size: int = 1
    lr: float = 1e-4
    betas: tuple = (0.5, 0.999)
    weight_decay: float = 1e-4
    decay_flag: bool = True  # linear decay to 0 over the second half of `iterations`
    adv_weight: float = 1.0
    cycle_weight: float = 10.0
    identity_weight: float = 10.0
    cam_weight: float = 1000.0
    # speed
    amp: str = "auto"  # "auto": bf16 on GPUs with native bf16, fp16 + grad scaler on older GPUs, off on CPU; or "bf16", "fp16", "off"
    channels_last: bool = True  # on CUDA only: on a CPU channels-last convolutions measured slower
    compile: bool = False
    reference_mode: bool = False  # the official per-step work, for honest speed comparisons
    # watching and saving
    log_every: int = 100
    log_minutes: float | None = None  # also a log row this often (None: by steps only)
    preview_every: int = 1000  # sample grid + timelapse frame; official print_freq
    preview_minutes: float | None = None
    kid_every: int = 10_000
    kid_subsets: int = 100
    save_every: int = 1000
    save_minutes: float = 10.0  # and at least this often: a Colab session can end at any moment
    keep_last: int = 2  # full-state checkpoints for resume; README "Checkpoints on Google Drive" sizes a run with 2
    milestone_every: int | None = 100_000  # official save_freq: kept for good (None: no milestones)
    seed: int = 0

    @classmethod
    def quick(cls, **overrides) -> "UGATITConfig":
        """A CPU smoke run: real faces (woman + man) -> cartoon at 64 px, light model, a few steps."""
        base = dict(
            domain_a=("woman", "man"), domain_b=("cartoon",), img_size=64, light=True, ch=16,
            iterations=16, holdout=0.2, log_every=2, preview_every=8, kid_every=8, kid_subsets=20,
            save_every=8, save_minutes=5.0, keep_last=2, milestone_every=None,
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def laptop(cls, **overrides) -> "UGATITConfig":
        """A real translation on a laptop's CPU: light U-GAT-IT at 64 px, real faces -> cartoon, under 2 hours on 2 cores.

        The official losses and schedule (constant, then linear decay over the
        second half) at a quarter of the width and a quarter of the side;
        twice the official learning rate, for a run of 10,000 steps instead of
        a million: about 1.8 steps/s on one core of a 2-core AMD EPYC box, so
        an hour and a half. A fifth of each domain is held out, so that KID
        (every 1,000 steps, on held-out faces) has enough faces to be steady;
        bench/bench_laptop.py records the curve beside the untranslated
        selfies' KID, the line the translation must get under.
        """
        base = dict(
            domain_a=("woman", "man"), domain_b=("cartoon",), img_size=64, light=True, ch=16, n_res=4,
            iterations=10_000, lr=2e-4, holdout=0.2, log_every=100, preview_every=1000, kid_every=1000, kid_subsets=50,
            save_every=2000, save_minutes=10.0, keep_last=2, milestone_every=None,
        )
        base.update(overrides)
        return cls(**base)

    def __post_init__(self):
        self.domain_a, self.domain_b, self.betas = _names(self.domain_a), _names(self.domain_b), tuple(self.betas)
        if self.img_size % 4 or self.img_size < 32:
            raise ValueError(f"img_size must be a multiple of 4 and at least 32, got {self.img_size}")
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', got {self.amp!r}")
        if self.iterations < 1 or self.batch_size < 1:
            raise ValueError("iterations and batch_size must be at least 1")
        if not 0 <= self.holdout < 1:
            raise ValueError(f"holdout is the fraction of faces kept out of training, in [0, 1); got {self.holdout}")

    @property
    def crop_from(self) -> int:
        """Side the faces are resized to before the random crop (286 for 256 px, scaled for other sizes)."""
        return self.load_size or int(round(self.img_size * 286 / 256))


def official_lr(step: int, cfg: UGATITConfig) -> float:
    """Learning rate of step `step` (1-based): constant, then linear to 0 over the second half.

    The official loop subtracts lr/(iterations//2) before every step past the
    half-way point; this is the same number computed from the step, so a
    resumed run cannot drift from it. (With an odd number of iterations the
    official rate ends one decrement below zero; we stop at zero.)
    """
    half = cfg.iterations // 2
    if not cfg.decay_flag or step <= half or half == 0:
        return cfg.lr
    return max(0.0, cfg.lr - cfg.lr / half * (step - half))


def _names(domain) -> tuple:
    """A domain's face folders: a tuple or list of names, or one comma-separated string (the notebook's DOMAIN_A)."""
    names = tuple(n.strip() for n in domain.split(",")) if isinstance(domain, str) else tuple(domain)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"a domain is one or more face folder names, like 'selfie' or 'woman,man'; got {domain!r}")
    return names
