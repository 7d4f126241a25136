"""VoVNet: exact parameter counts (ALGORITHMS.md §1.6), ceil-mode pooling, eSE placement, timm checkpoints."""

from __future__ import annotations

import pytest
import torch

from edgekit.errors import EdgekitError
from edgekit.model_zoo import count_macs, create_model, get_spec, list_models
from edgekit.model_zoo.vovnet import VoVNet, VoVNetConfig, cfgs, load_timm_state_dict

# (variant, params in millions at 2 decimals, timm/paper name) — 1000 classes, 224x224.
PARAM_TABLE = [
    ("vovnet27_slim", 3.53),
    ("vovnet39", 22.60),
    ("vovnet57", 36.64),
    ("vovnet_v2_19_slim_dw", 1.90),
    ("vovnet_v2_19_dw", 6.54),
    ("vovnet_v2_19_slim", 3.17),
    ("vovnet_v2_19", 11.21),
    ("vovnet_v2_39", 24.57),
    ("vovnet_v2_57", 38.61),
    ("vovnet_v2_99", 63.20),
]


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,millions", PARAM_TABLE, ids=[n for n, _ in PARAM_TABLE])
def test_param_count_equals_table(name, millions):
    assert round(n_params(create_model(name)) / 1e6, 2) == millions


@pytest.mark.parametrize("name,millions", [("vovnet_v2_39", 26.21), ("vovnet_v2_57", 42.48),
                                           ("vovnet_v2_99", 70.55)])
def test_ese_in_every_block_matches_detectron2_count(name, millions):
    assert round(n_params(create_model(name, ese="every")) / 1e6, 2) == millions


def test_ceil_mode_feature_sizes_at_224():
    model = create_model("vovnet_v2_19_slim_dw")
    sizes = [f.shape[-1] for f in model.forward_features(torch.zeros(1, 3, 224, 224))]
    assert sizes == [56, 56, 28, 14, 7]  # 27 instead of 28 without ceil mode


def test_macs_close_to_timm():
    spec = get_spec("vovnet_v2_19_slim_dw")
    macs = count_macs(spec.build(), spec.example_inputs(0))
    assert macs / 1e9 == pytest.approx(0.40, abs=0.02)


def test_identity_and_ese_placement():
    model = create_model("vovnet_v2_57")
    stage = model.stages[2]  # four blocks
    assert [b.residual for b in stage.blocks] == [False, True, True, True]
    assert [b.attn is not None for b in stage.blocks] == [False, False, False, True]
    assert all(b.attn is None and not b.residual for s in create_model("vovnet57").stages for b in s.blocks)


def test_tiny_forward_shape():
    spec = get_spec("vovnet_tiny")
    (x,) = spec.example_inputs(0)
    assert x.shape == (1, 3, 32, 32)
    assert spec.build()(torch.from_numpy(x)).shape == (1, 10)


def test_digits_variant_is_v2_19_slim_at_32x32():
    assert "vovnet19_slim_digits" in list_models("vovnet*")
    spec = get_spec("vovnet19_slim_digits")
    model = spec.build()
    (x,) = spec.example_inputs(0)
    assert x.shape == (1, 3, 32, 32)
    sizes = [f.shape[-1] for f in model.forward_features(torch.from_numpy(x))]
    assert sizes == [16, 16, 8, 4, 2]  # stem stride 2 instead of 4: a 2x2 last stage, not 1x1
    assert model(torch.from_numpy(x)).shape == (1, 10)
    # the same layers as ese_vovnet19b_slim, with a 10-class head
    assert n_params(model) == n_params(create_model("vovnet_v2_19_slim", num_classes=10)) == 2_658_266


def test_bad_config_names_the_value_and_the_fix():
    with pytest.raises(EdgekitError, match="ese='sometimes'.*choose one of"):
        VoVNetConfig(**(cfgs["vovnet_tiny"] | {"ese": "sometimes"}))
    with pytest.raises(EdgekitError, match="same length"):
        VoVNetConfig(**(cfgs["vovnet_tiny"] | {"block_per_stage": (1, 1)}))
    with pytest.raises(EdgekitError, match="stem_stride=3 unsupported; choose 1, 2 or 4"):
        VoVNetConfig(**(cfgs["vovnet_tiny"] | {"stem_stride": 3}))


# ---- timm checkpoints: the key layout below is written from timm's vovnet.py, not from our module.


def timm_shapes(cfg: VoVNetConfig) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix, c):
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{leaf}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    def conv_norm_act(prefix, cin, cout, k):
        shapes[f"{prefix}.conv.weight"] = (cout, cin, k, k)
        bn(f"{prefix}.bn", cout)

    def separable(prefix, cin, cout):
        shapes[f"{prefix}.conv_dw.weight"] = (cin, 1, 3, 3)
        shapes[f"{prefix}.conv_pw.weight"] = (cout, cin, 1, 1)
        bn(f"{prefix}.bn", cout)

    mid_conv = separable if cfg.depthwise else (lambda p, a, b: conv_norm_act(p, a, b, 3))
    s = cfg.stem_chs
    conv_norm_act("stem.0", cfg.in_chans, s[0], 3)
    mid_conv("stem.1", s[0], s[1])
    mid_conv("stem.2", s[1], s[2])
    cin = s[2]
    for i, (mid, cout, nb) in enumerate(zip(cfg.stage_chs, cfg.concat_chs, cfg.block_per_stage)):
        for j in range(nb):
            p = f"stages.{i}.blocks.{j}"
            if cfg.depthwise and cin != mid:
                conv_norm_act(f"{p}.conv_reduction", cin, mid, 1)
            width = mid if cfg.depthwise else cin
            for k in range(cfg.layer_per_block):
                mid_conv(f"{p}.conv_mid.{k}", width, mid)
                width = mid
            conv_norm_act(f"{p}.conv_concat", cin + cfg.layer_per_block * mid, cout, 1)
            if j == nb - 1:
                shapes[f"{p}.attn.fc.weight"] = (cout, cout, 1, 1)
                shapes[f"{p}.attn.fc.bias"] = (cout,)
            cin = cout
    shapes["head.fc.weight"] = (cfg.num_classes, cin)
    shapes["head.fc.bias"] = (cfg.num_classes,)
    return shapes


def timm_state_dict(cfg: VoVNetConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in timm_shapes(cfg).items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            out[k] = torch.rand(shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(shape, generator=g)
    return out


@pytest.mark.parametrize("name", ["vovnet_tiny", "vovnet_tiny_dw"])
@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_loads_timm_layout_state_dict(tmp_path, name, fmt):
    cfg = VoVNetConfig(**cfgs[name])
    state = timm_state_dict(cfg)
    path = tmp_path / f"ckpt.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state}, path)  # wrapped, as training scripts often save it
    model = load_timm_state_dict(VoVNet(cfg), path)
    own = model.state_dict()
    assert set(own) == set(state)
    for k, v in state.items():
        assert torch.equal(own[k], v), k


def test_timm_checkpoint_mismatch_names_keys(tmp_path):
    cfg = VoVNetConfig(**cfgs["vovnet_tiny"])
    state = timm_state_dict(cfg)
    del state["head.fc.bias"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(EdgekitError, match="head.fc.bias"):
        load_timm_state_dict(VoVNet(cfg), tmp_path / "bad.pth")
