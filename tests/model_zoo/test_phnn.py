"""PHNN: the Kronecker weight layout, the three forward forms, parameter counts, the 1/n artifact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekit.errors import EdgekitError
from edgekit.model_zoo import create_model, get_spec
from edgekit.model_zoo.phnn import PHConv, PHCResNetConfig, PHMLinear, cfgs, fold_phc, kron_weight, set_phc_form


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_kron_layout_matches_torch_kron():
    n, o, m = 3, 2, 5
    A, F = torch.randn(n, n, n), torch.randn(n, o, m, 3, 3)
    W = kron_weight(A, F)
    for y in range(3):
        for x in range(3):
            ref = sum(torch.kron(A[i], F[i, :, :, y, x]) for i in range(n))
            torch.testing.assert_close(W[:, :, y, x], ref)


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("n", [1, 2, 3, 6])
@pytest.mark.parametrize("bias", [False, True])
def test_factorised_equals_kron_equals_folded(dim, n, bias):
    torch.manual_seed(0)
    layer = PHConv(6, 12, 3, n, stride=2, padding=1, dim=dim, bias=bias)
    if bias:
        torch.nn.init.normal_(layer.bias)
    x = torch.randn(2, 6, *([9] * dim))
    fact = layer(x)
    ref = set_phc_form(layer, "kron")(x)
    dense = layer.to_dense()(x)
    torch.testing.assert_close(fact, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dense, ref, rtol=1e-5, atol=1e-5)


def test_n1_is_a_dense_conv_scaled_by_A():
    layer = PHConv(4, 8, 3, 1, padding=1)
    x = torch.randn(1, 4, 6, 6)
    ref = torch.nn.functional.conv2d(x, layer.A[0, 0, 0] * layer.F[0], padding=1)
    torch.testing.assert_close(layer(x), ref)


def test_phm_linear_count_and_forms():
    layer = PHMLinear(512, 512, 4)
    assert n_params(layer) == 66_112  # 4^3 + 512*512/4 + 512 (ALGORITHMS.md §2.3)
    x = torch.randn(3, 7, 512)
    torch.testing.assert_close(layer(x), set_phc_form(layer, "kron")(x), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(layer(x), layer.to_dense()(x), rtol=1e-4, atol=1e-4)


def test_gradients_reach_A_and_F():
    layer = PHConv(4, 8, 3, 2, padding=1)
    layer(torch.randn(2, 4, 5, 5)).square().sum().backward()
    assert layer.A.grad.abs().sum() > 0 and layer.F.grad.abs().sum() > 0


def test_n_must_divide_channels():
    with pytest.raises(EdgekitError, match=r"n=3 must divide in=4 and out=8; valid n: \[1, 2, 4\]"):
        PHConv(4, 8, 3, 3)
    with pytest.raises(EdgekitError, match="n=3"):
        PHCResNetConfig(**(cfgs["phc_resnet18"] | {"n": 3}))


def formula(cfg: PHCResNetConfig) -> int:
    """n^3 + out*in*k^2/n (+ out with bias) per PHC conv, 2C per BN, the real linear head."""
    n, total = cfg.n, 0

    def conv(cin, cout, k):
        return n**3 + cout * cin * k * k // n + (cout if cfg.conv_bias else 0) + 2 * cout  # + its BN

    exp = 1 if cfg.block == "basic" else 4
    total += conv(cfg.in_chans, cfg.widths[0], 3)
    cin = cfg.widths[0]
    for i, (w, d) in enumerate(zip(cfg.widths, cfg.depths)):
        for j in range(d):
            stride = 2 if (j == 0 and i > 0) else 1
            if cfg.block == "basic":
                total += conv(cin, w, 3) + conv(w, w, 3)
            else:
                total += conv(cin, w, 1) + conv(w, w, 3) + conv(w, 4 * w, 1)
            if stride != 1 or cin != w * exp:
                total += conv(cin, w * exp, 1)
            cin = w * exp
    return total + cin * cfg.num_classes + cfg.num_classes


@pytest.mark.parametrize("name", sorted(cfgs))
@pytest.mark.parametrize("conv_bias", [False, True])
def test_param_count_equals_formula(name, conv_bias):
    cfg = PHCResNetConfig(**(cfgs[name] | {"conv_bias": conv_bias}))
    assert n_params(create_model(name, conv_bias=conv_bias)) == formula(cfg)


# ALGORITHMS.md §2.3 (10 classes, 32x32; the [D] counts include HyperNets' registered conv bias).
TABLE = [
    ("phc_resnet18", dict(n=2), 5.60), ("phc_resnet18", dict(n=4), 2.81),
    ("phc_resnet18_large", dict(n=3), 3.64), ("phc_resnet18_large", dict(n=4, in_chans=4), 2.74),
    ("phc_resnet50", dict(n=2), 11.82), ("phc_resnet50", dict(n=4), 5.97),
    ("phc_resnet50_large", dict(n=3), 7.59), ("phc_resnet50_large", dict(n=4, in_chans=4), 5.72),
]


@pytest.mark.parametrize("name,over,millions", TABLE, ids=[f"{n}-n{o['n']}" for n, o, _ in TABLE])
def test_param_count_equals_table(name, over, millions):
    assert round(n_params(create_model(name, conv_bias=True, **over)) / 1e6, 2) == millions


def _onnx_weight_bytes(path) -> int:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    return sum(numpy_helper.to_array(t).nbytes for t in graph.initializer)


@pytest.mark.export
def test_factorised_artifact_keeps_one_nth_of_the_weight_bytes(tmp_path):
    import edgekit

    spec = get_spec("phnn_tiny")
    model, n = spec.build(), spec.hints["n"]
    dense, report = fold_phc(model)
    assert len(report["folded"]) == sum(1 for _ in filter(lambda m: isinstance(m, PHConv), model.modules()))
    kw = dict(input_names=spec.input_names, dataset=spec.dataset, parity_samples=8, show_progress=False)
    fact_art = edgekit.export(model, spec.example_inputs(0), "onnx", tmp_path / "fact", **kw)
    dense_art = edgekit.export(dense.eval(), spec.example_inputs(0), "onnx", tmp_path / "dense", **kw)
    fact_bytes = _onnx_weight_bytes(fact_art.model_file)
    dense_bytes = _onnx_weight_bytes(dense_art.model_file)
    assert fact_bytes <= 1.2 * dense_bytes / n, (fact_bytes, dense_bytes)
    import onnx
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(fact_art.model_file))).graph
    stored = {t.name for t in graph.initializer} | {v.name for v in graph.value_info if v.name.endswith(".F")}
    computed = [len(v.type.tensor_type.shape.dim) for v in graph.value_info if v.name not in stored]
    assert max(computed) <= 4  # every computed tensor well inside Core ML's rank limit of 5
    x = spec.example_inputs(0)[0]
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.from_numpy(x)).numpy(), dense(torch.from_numpy(x)).numpy(),
                                   rtol=1e-4, atol=1e-4)
