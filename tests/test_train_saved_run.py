"""helpers.train.match_saved_run: both lessons say the same thing when a run folder holds another model."""

from dataclasses import dataclass

import pytest
import torch

from helpers.checkpoint import save_checkpoint
from helpers.train import match_saved_run


@dataclass
class Config:
    model: str = "classic"
    size: int = 64
    steps: int = 100


def save_run(folder, **config):
    save_checkpoint(folder, 5, {"model": {"w": torch.zeros(2)}, "config": {**Config().__dict__, **config}, "step": 5})


def test_an_empty_or_matching_folder_keeps_the_asked_config_and_says_nothing(tmp_path):
    said = []
    asked = Config(model="tiny")
    assert match_saved_run(tmp_path / "new", asked, ("model", "size"), say=said.append) is asked
    save_run(tmp_path / "run", model="tiny", steps=7)  # another length is not another model
    assert match_saved_run(tmp_path / "run", asked, ("model", "size"), say=said.append) is asked
    assert said == []


def test_a_folder_with_another_model_is_continued_in_one_line_naming_what_differs(tmp_path):
    save_run(tmp_path, model="classic", size=128)
    said = []
    cfg = match_saved_run(tmp_path, Config(model="tiny", size=64, steps=9), ("model", "size"), say=said.append)
    assert (cfg.model, cfg.size, cfg.steps) == ("classic", 128, 9)
    assert len(said) == 1
    assert "'classic' (you asked for 'tiny')" in said[0] and "128 (you asked for 64)" in said[0]
    assert "continuing the saved one" in said[0] and "RUN_NAME" in said[0]


def test_keep_asked_stops_with_one_sentence_and_the_way_out(tmp_path):
    save_run(tmp_path, model="classic")
    with pytest.raises(ValueError, match=r"model 'classic' \(you asked for 'tiny'\).*another RUN_NAME or move that folder away"):
        match_saved_run(tmp_path, Config(model="tiny"), ("model",), keep="asked")


def test_bad_arguments_fail_at_once(tmp_path):
    with pytest.raises(ValueError, match="keep must be"):
        match_saved_run(tmp_path, Config(), ("model",), keep="mine")
    with pytest.raises(ValueError, match="no field 'width'"):
        match_saved_run(tmp_path, Config(), ("width",))


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("lesson", ["swap", "ugatit"])
def test_both_lessons_configs_continue_the_saved_network_after_the_match(lesson, tmp_path):
    """The saved config of either real trainer round-trips: the matched config resumes the run instead of failing on it."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    for name in "ab":
        (tmp_path / "faces" / name).mkdir(parents=True)
        for i in range(6):
            cv2.imwrite(str(tmp_path / "faces" / name / f"{i}.png"), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    quiet = dict(save_every=2, save_minutes=0, log_every=2, preview_every=0)
    if lesson == "swap":
        from helpers.swap import ARCHITECTURE as fields, SwapConfig, train_swap

        def train(cfg):
            return train_swap(cfg, tmp_path / "faces" / "a", tmp_path / "faces" / "b", tmp_path / "run", device="cpu", progress=False)

        first, asked = (SwapConfig.quick(size=size, steps=steps, batch_size=2, eval_faces=2, preview_faces=2, **quiet)
                        for size, steps in ((32, 2), (64, 4)))
    else:
        from helpers.ugatit import ARCH_FIELDS as fields, Trainer, UGATITConfig

        def train(cfg):
            return Trainer(cfg, tmp_path / "faces", tmp_path / "run", "cpu", quiet=True).train()

        first, asked = (UGATITConfig.quick(domain_a=("a",), domain_b=("b",), img_size=32, ch=ch, n_res=1, iterations=steps,
                                           kid_every=0, **quiet) for ch, steps in ((8, 2), (16, 4)))
    train(first)
    said = []
    cfg = match_saved_run(tmp_path / "run", asked, fields, say=said.append)
    assert len(said) == 1 and {k: getattr(cfg, k) for k in fields} == {k: getattr(first, k) for k in fields}
    run = train(cfg)
    assert (run.start_step, run.step) == (2, 4)
