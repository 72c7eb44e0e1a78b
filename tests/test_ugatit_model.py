"""U-GAT-IT networks: the official checkpoint layout, the sizes we train at, and the norms' arithmetic."""

import numpy as np
import pytest
import torch

from helpers.models.ugatit import (
    ILN,
    NET_NAMES,
    AdaILN,
    RhoClipper,
    build_networks,
    cam_attention,
    fit_layers,
    infer_official_config,
    instance_layer_norm,
    load_official_state,
)


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- the official layout, written out from its structure

def official_generator_layout(ch, n_res, img_size, light):
    """Parameter names and shapes of the official ResnetGenerator (Sequential indices included)."""
    c = ch * 4
    layout = {
        "DownBlock.1.weight": (ch, 3, 7, 7),  # pad, conv, IN, relu
        "DownBlock.5.weight": (ch * 2, ch, 3, 3),
        "DownBlock.9.weight": (ch * 4, ch * 2, 3, 3),
    }
    for i in range(n_res):  # encoder residual blocks follow the 12 down-sampling modules
        layout[f"DownBlock.{12 + i}.conv_block.1.weight"] = (c, c, 3, 3)
        layout[f"DownBlock.{12 + i}.conv_block.5.weight"] = (c, c, 3, 3)
    layout.update({
        "gap_fc.weight": (1, c), "gmp_fc.weight": (1, c),
        "conv1x1.weight": (c, 2 * c, 1, 1), "conv1x1.bias": (c,),
        "FC.0.weight": (c, c if light else (img_size // 4) ** 2 * c), "FC.2.weight": (c, c),
        "gamma.weight": (c, c), "beta.weight": (c, c),
    })
    for i in range(1, n_res + 1):
        for j in (1, 2):
            layout[f"UpBlock1_{i}.conv{j}.weight"] = (c, c, 3, 3)
            layout[f"UpBlock1_{i}.norm{j}.rho"] = (1, c, 1, 1)
    # up-sampling: (upsample, pad, conv, ILN, relu) x 2, then pad, conv, tanh
    for idx, cin in ((2, c), (7, c // 2)):
        layout[f"UpBlock2.{idx}.weight"] = (cin // 2, cin, 3, 3)
        for p in ("rho", "gamma", "beta"):
            layout[f"UpBlock2.{idx + 1}.{p}"] = (1, cin // 2, 1, 1)
    layout["UpBlock2.11.weight"] = (3, ch, 7, 7)
    return layout


def official_discriminator_layout(ndf, n_layers):
    """Names and shapes of the official Discriminator, spectral-norm buffers included (weight_orig/_u/_v)."""
    layout = {}

    def sn(name, shape, bias=False):
        layout[f"{name}.weight_orig"] = shape
        layout[f"{name}.weight_u"] = (shape[0],)
        layout[f"{name}.weight_v"] = (int(np.prod(shape[1:])),)
        if bias:
            layout[f"{name}.bias"] = (shape[0],)

    chans = [3] + [ndf * 2**i for i in range(n_layers - 1)]  # 3, ndf, 2ndf, ... (n_layers-1 convs)
    for k in range(n_layers - 1):  # every conv sits after a ReflectionPad2d, before a LeakyReLU
        sn(f"model.{3 * k + 1}", (chans[k + 1], chans[k], 4, 4), bias=True)
    c = chans[-1]
    sn("gap_fc", (1, c))
    sn("gmp_fc", (1, c))
    layout["conv1x1.weight"], layout["conv1x1.bias"] = (c, 2 * c, 1, 1), (c,)
    sn("conv", (1, c, 4, 4))
    return layout


def official_layout(img_size=256, light=True, ch=64, n_res=4):
    gen = official_generator_layout(ch, n_res, img_size, light)
    return {"genA2B": gen, "genB2A": gen, "disGA": official_discriminator_layout(ch, 7), "disGB": official_discriminator_layout(ch, 7),
            "disLA": official_discriminator_layout(ch, 5), "disLB": official_discriminator_layout(ch, 5)}


@pytest.mark.parametrize("img_size, light", [(256, True), (128, False)], ids=["light-256", "full-128"])
def test_an_official_checkpoint_loads_strictly(tmp_path, img_size, light):
    ch = 64 if light else 16  # the full MLP grows with img_size and ch: keep that one small
    layout = official_layout(img_size, light, ch)
    params = {net: {k: torch.randn(shape) for k, shape in keys.items()} for net, keys in layout.items()}
    torch.save(params, tmp_path / "selfie2drag_params_0100000.pt")
    del params
    loaded = torch.load(tmp_path / "selfie2drag_params_0100000.pt", weights_only=True)

    nets = build_networks(img_size, light=light, ch=ch)
    load_official_state(nets, loaded)  # strict=True: any extra, missing or mis-shaped tensor fails
    for net in NET_NAMES:
        assert torch.equal(nets[net].state_dict()["conv1x1.weight"], loaded[net]["conv1x1.weight"])
    assert infer_official_config(loaded)["light"] == light
    assert infer_official_config(loaded)["img_size"] == (256 if light else img_size)

    with torch.no_grad():
        out, cam, heat = nets["genA2B"](torch.zeros(1, 3, img_size, img_size))
    assert out.shape == (1, 3, img_size, img_size) and cam.shape == (1, 2) and heat.shape == (1, 1, img_size // 4, img_size // 4)


def test_a_checkpoint_with_a_wrong_shape_names_the_network():
    nets = build_networks(64, light=True, ch=8, n_res=1)
    params = {n: nets[n].state_dict() for n in NET_NAMES}
    params["disLB"]["conv1x1.bias"] = torch.zeros(3)
    with pytest.raises(RuntimeError, match="disLB"):
        load_official_state(nets, params)
    with pytest.raises(KeyError, match="genB2A"):
        load_official_state(nets, {"genA2B": params["genA2B"]})


# ---------------------------------------------------------------- sizes

@pytest.mark.parametrize("size", [64, 128, 256])
def test_forward_shapes_at_64_128_256(size):
    nets = build_networks(size, light=True, ch=8, n_res=2)
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        out, cam, heat = nets["genA2B"](x)
        assert out.shape == x.shape and out.abs().max() <= 1
        assert cam.shape == (2, 2) and heat.shape == (2, 1, size // 4, size // 4)
        for name in ("disGA", "disLB"):
            logit, dcam, _ = nets[name](x)
            assert logit.shape[:2] == (2, 1) and min(logit.shape[2:]) >= 1 and dcam.shape == (2, 2)
    # the published 7-layer global discriminator where it fits; one layer fewer at 64 px
    assert nets["disGA"].n_layers == (6 if size == 64 else 7)
    assert nets["disLA"].n_layers == 5


def test_discriminator_depth_is_official_from_128_px_up():
    assert [fit_layers(s, 7) for s in (32, 64, 128, 256, 512)] == [5, 6, 7, 7, 7]
    assert [fit_layers(s, 5) for s in (32, 64, 256)] == [5, 5, 5]
    with pytest.raises(ValueError):
        fit_layers(4, 5)


def test_full_generator_refuses_another_size_with_a_message():
    gen = build_networks(64, light=False, ch=8, n_res=1)["genA2B"]
    with pytest.raises(ValueError, match="64 px"):
        gen(torch.zeros(1, 3, 128, 128))


# ---------------------------------------------------------------- arithmetic

def naive_iln(x, rho, gamma, beta, eps=1e-5):
    """AdaLIN as the paper writes it: blend of instance- and layer-normalised x, then gamma and beta."""
    x_in = (x - x.mean((2, 3), keepdim=True)) / torch.sqrt(x.var((2, 3), keepdim=True) + eps)
    x_ln = (x - x.mean((1, 2, 3), keepdim=True)) / torch.sqrt(x.var((1, 2, 3), keepdim=True) + eps)
    return (rho * x_in + (1 - rho) * x_ln) * gamma + beta


def test_folded_instance_layer_norm_equals_the_definition():
    torch.manual_seed(0)
    x = torch.randn(3, 16, 9, 7) * 3 + 1
    rho = torch.rand(1, 16, 1, 1)
    gamma, beta = torch.randn(3, 16, 1, 1), torch.randn(3, 16, 1, 1)
    torch.testing.assert_close(instance_layer_norm(x, rho, gamma, beta), naive_iln(x, rho, gamma, beta), atol=1e-4, rtol=1e-4)
    # half-precision input: statistics are taken in float32, output comes back in the input's dtype
    out = instance_layer_norm(x.bfloat16(), rho, gamma, beta)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), naive_iln(x.bfloat16().float(), rho, gamma, beta), atol=0.1, rtol=0.02)


def test_folded_norms_have_the_definitions_gradients():
    torch.manual_seed(3)
    x = (torch.randn(2, 8, 6, 6) * 2 + 0.5).requires_grad_()
    rho, gamma, beta = torch.rand(1, 8, 1, 1, requires_grad=True), torch.randn(2, 8, 1, 1, requires_grad=True), torch.randn(2, 8, 1, 1)
    weights = torch.randn(2, 8, 6, 6)
    ours = torch.autograd.grad((instance_layer_norm(x, rho, gamma, beta) * weights).sum(), (x, rho, gamma))
    ref = torch.autograd.grad((naive_iln(x, rho, gamma, beta) * weights).sum(), (x, rho, gamma))
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_encoder_instance_norm_equals_torchs():
    from helpers.models.ugatit import InstanceNorm

    x = torch.randn(2, 5, 7, 9) * 3 - 1
    torch.testing.assert_close(InstanceNorm(5)(x), torch.nn.InstanceNorm2d(5)(x), atol=1e-5, rtol=1e-5)


def test_adailn_and_iln_start_where_the_paper_starts():
    ada, iln = AdaILN(8), ILN(8)
    assert torch.all(ada.rho == 0.9) and torch.all(iln.rho == 0) and torch.all(iln.gamma == 1) and torch.all(iln.beta == 0)
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(iln(x), naive_iln(x, iln.rho, 1.0, 0.0), atol=1e-5, rtol=1e-5)


def test_folded_cam_attention_equals_weight_concat_conv():
    torch.manual_seed(1)
    c = 12
    x = torch.randn(2, c, 6, 6)
    gap, gmp, conv = torch.nn.Linear(c, 1, bias=False), torch.nn.Linear(c, 1, bias=False), torch.nn.Conv2d(2 * c, c, 1)
    out, logits = cam_attention(x, gap, gmp, conv)
    explicit = conv(torch.cat([x * gap.weight[0].view(1, c, 1, 1), x * gmp.weight[0].view(1, c, 1, 1)], 1))
    torch.testing.assert_close(out, explicit, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, torch.cat([gap(x.mean((2, 3))), gmp(x.amax((2, 3)))], 1))


def test_spectral_norm_matches_torch_and_stays_float32_under_autocast():
    from helpers.models.ugatit import SNConv2d

    torch.manual_seed(2)
    ours, hook = SNConv2d(8, 16, 4), torch.nn.utils.spectral_norm(torch.nn.Conv2d(8, 16, 4))
    hook.load_state_dict(ours.state_dict())  # same keys: weight_orig, weight_u, weight_v, bias
    x = torch.randn(2, 8, 10, 10)
    for training in (True, True, False):  # one power iteration per call in training, none in eval
        ours.train(training), hook.train(training)
        torch.testing.assert_close(ours(x), hook(x))
    torch.testing.assert_close(ours.weight_u, hook.weight_u)
    ours.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ours(x).dtype == torch.bfloat16
    assert ours.weight_u.dtype == torch.float32 and torch.isfinite(ours.weight_u).all()


def test_one_batched_discriminator_call_equals_the_official_two_calls():
    """The fast step calls each discriminator once on cat([real, fake]); the official code calls it twice.

    Two calls run two power iterations and the fake call sees the second estimate of
    sigma; under `official_power_iterations` the one call gives the same logits, the
    same gradients and the same power-iteration state. Without it, it would not.
    """
    import copy

    from helpers.models.ugatit import official_power_iterations

    torch.manual_seed(3)
    official = build_networks(64, light=True, ch=8, n_res=2)["disGA"].train()
    batched, plain = copy.deepcopy(official), copy.deepcopy(official)
    real, fake = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)

    def loss(outputs):
        return sum((o.float() - t).square().mean() for o, t in zip(outputs, (1.0, 1.0))) if len(outputs) == 2 else None

    r_logit, r_cam, _ = official(real)
    f_logit, f_cam, _ = official(fake)
    with official_power_iterations(batched, 2):
        logit, cam, _ = batched(torch.cat([real, fake]))
    torch.testing.assert_close(logit, torch.cat([r_logit, f_logit]), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cam, torch.cat([r_cam, f_cam]), rtol=1e-5, atol=1e-5)
    (loss((r_logit, r_cam)) + loss((f_logit, f_cam))).backward()
    (loss((logit[:2], cam[:2])) + loss((logit[2:], cam[2:]))).backward()
    for (name, a), b in zip(official.named_parameters(), batched.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)
    for (name, a), b in zip(official.named_buffers(), batched.buffers()):
        torch.testing.assert_close(b, a, msg=name)
    assert all(m.sn_split is None for m in batched.modules() if hasattr(m, "sn_split"))  # the context cleans up

    plain(torch.cat([real, fake]))  # one plain call: one power iteration, not the official two
    assert not torch.allclose(plain.model[1].weight_u, official.model[1].weight_u, atol=1e-4)


def test_rho_clipper_keeps_rho_in_unit_interval():
    gen = build_networks(64, light=True, ch=8, n_res=2)["genA2B"]
    with torch.no_grad():
        for name, p in gen.named_parameters():
            if name.endswith("rho"):
                p.uniform_(-3, 3)
    gen.apply(RhoClipper(0, 1))
    rhos = torch.cat([p.flatten() for n, p in gen.named_parameters() if n.endswith("rho")])
    assert rhos.min() >= 0 and rhos.max() <= 1 and (rhos == 0).any() and (rhos == 1).any()
