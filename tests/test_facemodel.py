"""Both trained models keep one face contract, and loading says what is wrong instead of a KeyError.

Every checkpoint here is made by the test: a tiny swap autoencoder and a tiny
U-GAT-IT, in our run-folder format, in the official layout, and in PyTorch's
pre-1.6 (legacy, non-zip) format that the official 2019 code wrote.
"""

import numpy as np
import pytest
import torch

from helpers.checkpoint import list_checkpoints, save_checkpoint
from helpers.facemodel import (
    FaceModel,
    Swapper,
    Translator,
    WrongCheckpointKind,
    fetch_checkpoint,
    load_face_model,
    load_swapper,
    load_translator,
    read_weights,
)
from helpers.models.autoencoder import FaceSwapAutoencoder, spec_for
from helpers.models.ugatit import build_networks, official_state

pytestmark = pytest.mark.usefixtures("one_thread")

UGATIT_ARCH = dict(img_size=32, light=True, ch=4, n_res=1)


def make_swap_run(folder, step=5):
    torch.manual_seed(0)
    model = FaceSwapAutoencoder(spec_for("tiny", 32))
    return save_checkpoint(folder, step, {"model": model.state_dict(), "config": {"model": "tiny", "size": 32}})


def ugatit_networks(**arch):
    torch.manual_seed(0)
    a = {**UGATIT_ARCH, **arch}
    return build_networks(a["img_size"], a["light"], a["ch"], a["n_res"])


def make_ugatit_run(folder, step=3, **arch):
    nets = ugatit_networks(**arch)
    return save_checkpoint(folder, step, {"nets": official_state(nets), "config": {**UGATIT_ARCH, **arch, "iterations": 10}})


def crops(n=3, size=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# ---------------------------------------------------------------- one contract

@pytest.fixture
def both_models(tmp_path):
    make_swap_run(tmp_path / "swap")
    make_ugatit_run(tmp_path / "ugatit")
    return [load_face_model(tmp_path / "swap", "cpu", to="A"), load_face_model(tmp_path / "ugatit", "cpu", direction="B2A")]


def test_either_model_takes_uint8_crops_and_gives_back_the_same_shape(both_models):
    swapper, translator = both_models
    assert isinstance(swapper, Swapper) and isinstance(translator, Translator)
    assert (swapper.kind, swapper.size, swapper.name) == ("swap", 32, "swap to A (step 5)")
    assert (translator.kind, translator.size, translator.name) == ("ugatit", 32, "U-GAT-IT B2A (step 3)")
    faces = crops()
    for model in both_models:
        assert isinstance(model, FaceModel)
        out = model(faces)
        assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == faces.shape
        assert not np.array_equal(out, faces)
        tensor_out = model(torch.from_numpy(faces))
        assert tensor_out.dtype == torch.uint8 and np.abs(tensor_out.numpy().astype(int) - out).max() <= 1
        x = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1
        y = model(x)
        assert y.shape == x.shape and y.dtype == x.dtype and y.abs().max() <= 1
        assert model(faces[:0]).shape == (0, 40, 40, 3)
        with pytest.raises(ValueError, match=r"uint8 \(N, H, W, 3\)"):
            model(faces.astype(np.float32))
    # the swap's own call keeps its identity choice; the translator keeps its heatmaps
    assert np.array_equal(swapper(faces), swapper.swap(faces, to="A"))
    out, heat = translator.translate(faces, return_cam=True)
    assert heat.shape == (3, 40, 40)


def test_render_takes_either_model_as_its_face_function(both_models):
    from helpers.render import _run_model

    faces = crops(2, 64)
    for model in both_models:
        assert _run_model(model, faces).shape == faces.shape


# ---------------------------------------------------------------- the wrong kind of checkpoint

def test_load_translator_on_a_swap_folder_names_what_the_folder_holds(tmp_path):
    make_swap_run(tmp_path / "swap")
    with pytest.raises(WrongCheckpointKind, match="holds a face-swap autoencoder checkpoint.*use load_swapper"):
        load_translator(tmp_path / "swap", "cpu")


def test_load_swapper_on_a_ugatit_folder_names_what_the_folder_holds(tmp_path):
    make_ugatit_run(tmp_path / "ugatit")
    with pytest.raises(WrongCheckpointKind, match="holds a U-GAT-IT checkpoint.*use load_translator"):
        load_swapper(tmp_path / "ugatit", "cpu")
    official = tmp_path / "official" / "selfie2drag_params_0001000.pt"
    official.parent.mkdir()
    torch.save(official_state(ugatit_networks()), official)
    with pytest.raises(WrongCheckpointKind, match="use load_translator"):
        load_swapper(official, "cpu")


def test_a_shared_file_of_the_other_kind_is_refused_by_name(tmp_path, http_root):
    www, base, _ = http_root
    make_swap_run(tmp_path / "theirs")
    (www / "swap.pt").write_bytes(list_checkpoints(tmp_path / "theirs")[-1][1].read_bytes())
    with pytest.raises(WrongCheckpointKind, match="face-swap autoencoder.*load_swapper"):
        fetch_checkpoint(f"{base}/swap.pt", tmp_path / "ugatit", "ugatit")
    assert not list_checkpoints(tmp_path / "ugatit")


# ---------------------------------------------------------------- PyTorch's legacy (pre-1.6) format

def test_a_legacy_format_ugatit_checkpoint_loads_and_fetches(tmp_path, http_root):
    www, base, _ = http_root
    nets = ugatit_networks()
    legacy = www / "selfie2drag_params_0100000.pt"
    torch.save(official_state(nets), legacy, _use_new_zipfile_serialization=False)
    assert read_weights(legacy)["genA2B"]["FC.0.weight"].shape == nets["genA2B"].FC[0].weight.shape

    translator = load_translator(legacy, "cpu", img_size=32)
    expected = nets["genA2B"].eval()(torch.zeros(1, 3, 32, 32))[0]
    assert torch.allclose(translator(torch.zeros(1, 3, 32, 32)), expected, atol=1e-5)

    from helpers.ugatit import fetch_shared_checkpoint

    got = fetch_shared_checkpoint(f"{base}/{legacy.name}", tmp_path / "run")
    assert got.name == legacy.name
    assert load_translator(tmp_path / "run", "cpu", img_size=32).size == 32


# ---------------------------------------------------------------- argument checks at the loaders

@pytest.mark.parametrize("device", ["gpu", "cuda:banana", 3])
def test_a_bad_device_is_refused_before_anything_loads(tmp_path, device):
    make_ugatit_run(tmp_path / "ugatit")
    with pytest.raises((ValueError, TypeError), match="device"):
        load_translator(tmp_path / "ugatit", device)
    with pytest.raises((ValueError, TypeError), match="device"):
        load_swapper(tmp_path / "nothing_here", device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_on_a_cpu_machine_says_switch_the_runtime(tmp_path):
    make_swap_run(tmp_path / "swap")
    with pytest.raises(ValueError, match="no GPU"):
        load_swapper(tmp_path / "swap", "cuda")


def test_direction_batch_size_and_img_size_are_checked(tmp_path):
    make_ugatit_run(tmp_path / "ugatit")
    make_swap_run(tmp_path / "swap")
    with pytest.raises(ValueError, match="'A2B' or 'B2A'"):
        load_translator(tmp_path / "ugatit", "cpu", direction="a2b")
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="batch_size"):
            load_translator(tmp_path / "ugatit", "cpu", batch_size=bad)
        with pytest.raises(ValueError, match="batch_size"):
            load_swapper(tmp_path / "swap", "cpu", batch_size=bad)
    for bad in (0, 30, "256"):
        with pytest.raises(ValueError, match="img_size"):
            load_translator(tmp_path / "ugatit", "cpu", img_size=bad)
    with pytest.raises(ValueError, match='"A" or "B"'):
        load_swapper(tmp_path / "swap", "cpu", to="C")
    translator = load_translator(tmp_path / "ugatit", "cpu")
    with pytest.raises(ValueError, match="batch_size"):
        translator.translate(crops(), batch_size=0)


def test_half_precision_weights_milestones_load_like_full_checkpoints(tmp_path):
    from helpers.checkpoint import save_weights

    torch.manual_seed(0)
    model = FaceSwapAutoencoder(spec_for("tiny", 32))
    save_weights(tmp_path / "swap", 7, {"model": model.state_dict(), "config": {"model": "tiny", "size": 32}})
    nets = ugatit_networks()
    save_weights(tmp_path / "ugatit", 9, {"nets": {n: nets[n].state_dict() for n in ("genA2B", "genB2A")}, "config": UGATIT_ARCH})
    assert load_swapper(tmp_path / "swap", "cpu").step == 7
    translator = load_face_model(tmp_path / "ugatit", "cpu")
    assert isinstance(translator, Translator) and translator.step == 9
    assert translator(crops()).shape == crops().shape


# ---------------------------------------------------------------- Trainer.load_pretrained infers the networks from the file

@pytest.fixture
def random_faces(tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    for name in ("woman", "man", "cartoon"):
        (tmp_path / "faces" / name).mkdir(parents=True)
        for i in range(4):
            cv2.imwrite(str(tmp_path / "faces" / name / f"{i}.png"), rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    return tmp_path / "faces"


def test_load_pretrained_builds_the_full_model_an_official_file_holds(random_faces, tmp_path, capsys):
    from helpers.ugatit import Trainer, UGATITConfig

    full = ugatit_networks(img_size=32, light=False, ch=4, n_res=1)
    official = tmp_path / "selfie2anime_params_1000000.pt"
    torch.save(official_state(full), official, _use_new_zipfile_serialization=False)  # the official code's 2019 format
    cfg = UGATITConfig.quick(img_size=32, light=True, ch=4, n_res=1, kid_every=0, preview_every=0)
    trainer = Trainer(cfg, random_faces, tmp_path / "run", "cpu")
    trainer.load_pretrained(official)
    assert "holds a full U-GAT-IT at 32 px" in capsys.readouterr().out
    assert trainer.cfg.light is False
    for name in ("genA2B", "disLB"):
        assert all(torch.equal(v, trainer.nets[name].state_dict()[k]) for k, v in full[name].state_dict().items())
    assert trainer.opt_g.param_groups[0]["params"][0] is next(trainer.nets["genA2B"].parameters())
    trainer.train(steps=1)  # the rebuilt networks train and save
    assert load_translator(tmp_path / "run", "cpu").size == 32 and trainer.step == 1

    other_size = tmp_path / "other_params.pt"
    torch.save(official_state(ugatit_networks(img_size=64, light=False, ch=4, n_res=1)), other_size)
    with pytest.raises(ValueError, match="img_size=64"):
        Trainer(cfg, random_faces, tmp_path / "run2", "cpu").load_pretrained(other_size)
    make_swap_run(tmp_path / "swap")
    with pytest.raises(WrongCheckpointKind, match="load_swapper"):
        trainer.load_pretrained(list_checkpoints(tmp_path / "swap")[-1][1])


# ---------------------------------------------------------------- lesson 05 picks its model

def test_lesson_05_takes_the_model_asked_for_else_the_other_else_says_what_to_run(tmp_path, monkeypatch, capsys):
    from helpers import facemodel, lesson_model
    from helpers.env import LessonStop, Workspace

    ws = Workspace(tmp_path / "ws", "local", torch.device("cpu"))
    with pytest.raises(LessonStop, match="run notebook 03 .* or notebook 04"):
        facemodel.model_for_render(ws, "swap")
    toy = []
    monkeypatch.setattr(lesson_model, "train_toy_swapper", lambda ws, folder, to, detector: toy.append(folder) or "toy")
    assert facemodel.model_for_render(ws, "ugatit", quick=True) == "toy" and toy == [ws.checkpoints / "swap"]

    make_ugatit_run(ws.checkpoints / "ugatit")
    model = facemodel.model_for_render(ws, "swap", to="A", direction="B2A")
    assert isinstance(model, Translator) and model.direction == "B2A"
    assert "using lesson 04's U-GAT-IT B2A (step 3) instead" in capsys.readouterr().out
    make_swap_run(ws.checkpoints / "swap")
    assert facemodel.model_for_render(ws, "swap", to="A").name == "swap to A (step 5)"
    assert facemodel.model_for_render(ws, "ugatit").kind == "ugatit"
    with pytest.raises(ValueError, match="mode"):
        facemodel.model_for_render(ws, "ugatit2")



def test_lesson_05s_toy_swap_gets_the_sample_faces_from_ensure_sample_faces(tmp_path, monkeypatch, capsys):
    import helpers.data
    import helpers.faces
    import helpers.swap
    from helpers import facemodel, lesson_model
    from helpers.env import Workspace

    ws = Workspace(tmp_path / "ws", "local", torch.device("cpu"))
    calls = []
    monkeypatch.setattr(helpers.faces, "ensure_sample_faces",
                        lambda root, names, samples, **kw: calls.append(("faces", root, names, samples, kw["detector"]))
                        or {n: "present" for n in names})
    monkeypatch.setattr(helpers.data, "require_faces", lambda folder, lesson: calls.append(("require", folder)))
    monkeypatch.setattr(helpers.swap, "train_swap", lambda cfg, a, b, folder, device: calls.append(("train", a, b, folder)))
    monkeypatch.setattr(lesson_model, "load_swapper", lambda folder, device, to: ("swapper", folder, to))

    model = facemodel.train_toy_swapper(ws, ws.checkpoints / "swap", to="A", detector="haar")
    assert calls == [("faces", ws.faces, ["woman", "man"], ws.samples, "haar"),
                     ("require", ws.faces / "woman"), ("require", ws.faces / "man"),
                     ("train", ws.faces / "woman", ws.faces / "man", ws.checkpoints / "swap")]
    assert model == ("swapper", ws.checkpoints / "swap", "A")
    assert "woman: present" in capsys.readouterr().out

# ---------------------------------------------------------------- notebook 04 alone, with only a shared checkpoint

@pytest.mark.notebook
def test_notebook_04_with_only_a_shared_checkpoint_goes_straight_to_translating(tmp_path, http_root, monkeypatch):
    import nbformat

    from helpers.course import find_notebook, run_notebook

    www, base, _ = http_root
    make_ugatit_run(tmp_path / "theirs", step=3)
    (www / "selfie2drag.pt").write_bytes(list_checkpoints(tmp_path / "theirs")[-1][1].read_bytes())
    monkeypatch.setenv("POLYJUICE_DEVICE", "cpu")
    monkeypatch.setenv("POLYJUICE_OFFLINE", "1")
    workspace = tmp_path / "fresh"  # no faces, no checkpoints: defaults (QUICK = False) and the URL only
    out = run_notebook(find_notebook("04"), tmp_path / "04.ipynb", {"SHARED_CHECKPOINT_URL": f"{base}/selfie2drag.pt"}, workspace)

    cells = {c.get("id"): c for c in nbformat.read(str(out), as_version=4).cells}
    said = "".join(o.get("text", "") for o in cells["shared04"].outputs)
    assert "no faces of selfie, drag to train on" in said and "straight to translating" in said
    assert all(not c.outputs for c in cells.values() if c.cell_type == "code" and c.source.startswith("%%skip_if not TRAIN"))
    assert not (workspace / "faces" / "selfie").exists()

    def pictures(cell):
        return [o for o in cell.outputs if "image/png" in o.get("data", {})]

    translation = cells["1d52dbbf"]
    assert "U-GAT-IT A2B (step 3), 32 px" in "".join(o.get("text", "") for o in translation.outputs)
    assert pictures(translation), "the translation figure (selfie, attention, translated) is shown"
    assert pictures(cells["0fb4a58d"]), "the photo translated and pasted back is shown"


def test_skip_if_skips_a_cell_and_a_failing_cell_still_fails():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "helpers.cells")
    shell.user_ns.update(TRAIN=False, ran=[])
    assert shell.run_cell("%%skip_if not TRAIN\nran.append(1)").success and shell.user_ns["ran"] == []
    shell.user_ns["TRAIN"] = True
    assert shell.run_cell("%%skip_if not TRAIN\nran.append(2)").success and shell.user_ns["ran"] == [2]
    assert not shell.run_cell("%%skip_if not TRAIN\n1 / 0").success  # a notebook run stops here, as without the magic


def test_translate_only_when_a_model_is_ready_and_faces_are_missing(tmp_path):
    from helpers.facemodel import translate_only

    faces, run = tmp_path / "faces", tmp_path / "run"
    assert translate_only(run, faces, ["selfie", "drag"]) is None  # nothing to translate with: train (or say what is missing)
    make_ugatit_run(run)
    assert "no faces of selfie, drag" in translate_only(run, faces, ["selfie", "drag"])
    assert translate_only(run, faces, ["woman", "cartoon"]) is None  # sample domains are cropped on the spot
    make_swap_run(tmp_path / "swap")
    assert translate_only(tmp_path / "swap", faces, ["selfie"]) is None  # a swap run cannot translate


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_both_models_agree_with_the_cpu_under_the_shared_precision_policy(tmp_path):
    from helpers.train import autocast_dtype

    make_swap_run(tmp_path / "swap")
    make_ugatit_run(tmp_path / "ugatit")
    faces = crops(5, 48)
    for folder in ("swap", "ugatit"):
        cpu, gpu = load_face_model(tmp_path / folder, "cpu"), load_face_model(tmp_path / folder, "cuda")
        assert gpu.dtype == autocast_dtype(torch.device("cuda"), "auto") and cpu.dtype is None
        on_gpu = gpu(torch.from_numpy(faces).cuda())
        assert on_gpu.is_cuda and on_gpu.dtype == torch.uint8
        assert np.abs(on_gpu.cpu().numpy().astype(int) - cpu(faces)).mean() < 3
