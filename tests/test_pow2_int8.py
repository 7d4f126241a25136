"""The exact int8 encoding of power-of-two weights used by the ONNX exporter."""

import numpy as np
import pytest

from edgekit.exporters.onnx.pow2_int8 import exact_int8


def test_shift_weights_round_trip_exactly():
    rng = np.random.default_rng(0)
    scale = rng.uniform(0.01, 2.0, size=(8, 1, 1, 1)).astype(np.float32)
    k = rng.integers(0, 4, size=(8, 4, 3, 3))                      # 3-bit: 4 magnitudes
    w = (scale * rng.choice([-1.0, 1.0], size=k.shape) * 2.0 ** -k).astype(np.float32)
    q, s = exact_int8(w)
    assert q.dtype == np.int8 and s.shape == (8,)
    np.testing.assert_array_equal(q.astype(np.float32) * s[:, None, None, None], w)


def test_other_weights_are_left_alone():
    rng = np.random.default_rng(1)
    assert exact_int8(rng.standard_normal((8, 4, 3, 3)).astype(np.float32)) is None
    k = rng.integers(0, 9, size=(8, 16))                            # 9 octaves: beyond int8
    w = (rng.choice([-1.0, 1.0], size=k.shape) * 2.0 ** -k).astype(np.float32)
    w[:, 0] = 1.0
    w[:, 1] = 2.0 ** -8
    assert exact_int8(w) is None
    assert exact_int8(np.zeros((8, 16), np.float32)) is None


# ---- the TFLite flatbuffer rewrite (exporters/tflite/pow2_int8.py)


def _pow2(shape, axis_scale, rng):
    """±2^-k (k < 4) times a per-output-channel scale: a 3-bit shift weight after BN folding."""
    k = rng.integers(0, 4, size=shape)
    return (axis_scale * rng.choice([-1.0, 1.0], size=shape) * 2.0**-k).astype(np.float32)


def test_tflite_rewrite_is_exact_and_leaves_other_weights_alone(tmp_path):
    torch = pytest.importorskip("torch")
    litert_torch = pytest.importorskip("litert_torch")
    from ai_edge_litert import schema_py_generated as fb
    from ai_edge_litert.interpreter import Interpreter

    from edgekit.exporters.tflite.pow2_int8 import _version, encode, layer_of_tensor

    rng = np.random.default_rng(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, groups=8),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 16), torch.nn.Linear(16, 4)).eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(_pow2((8, 4, 3, 3), rng.uniform(0.1, 1, (8, 1, 1, 1)), rng)))
        model[2].weight.copy_(torch.from_numpy(_pow2((8, 1, 3, 3), rng.uniform(0.1, 1, (8, 1, 1, 1)), rng)))
        model[4].weight.copy_(torch.from_numpy(_pow2((16, 128), rng.uniform(0.1, 1, (16, 1)), rng)))
    x = torch.randn(1, 4, 8, 8)
    path = tmp_path / "m.tflite"
    litert_torch.convert(model, (x,)).export(str(path))
    buf = path.read_bytes()
    new, converted = encode(buf)
    assert len(converted) == 3  # the two convs and the first linear; the random last linear stays float
    assert sorted(layer_of_tensor(model, converted).values()) == ["0", "2", "4"]
    numel = 8 * 4 * 9 + 8 * 9 + 16 * 128
    assert sum(converted.values()) == numel + 4 * (8 + 8 + 16)  # int8 codes + fp32 per-channel scales
    assert len(new) <= len(buf) - 2.5 * numel  # 3 of every 4 weight bytes gone, less the new ops and tensors
    meta = fb.ModelT.InitFromPackedBuf(new, 0)  # DEQUANTIZE v5 needs TFLite 2.7: the metadata says so
    runtime = [bytes(meta.buffers[m.buffer].data).rstrip(b"\0").decode() for m in meta.metadata
               if m.name == b"min_runtime_version"]
    assert all(_version(v) >= (2, 7, 0) for v in runtime)

    def run(model_content):
        it = Interpreter(model_content=model_content)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x.numpy())
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"]), it

    (want, _), (got, it) = run(buf), run(new)
    np.testing.assert_array_equal(got, want)  # bit-identical to the float32 flatbuffer
    int8 = [t for t in it.get_tensor_details() if t["dtype"] == np.int8]
    assert len(int8) == 3 and {op["op_name"] for op in it._get_ops_details()} >= {"DEQUANTIZE"}
    torch_weights = [model[i].weight.detach().numpy() for i in (0, 2, 4)]
    for t in int8:  # dequantized == the PyTorch weight (TFLite layouts: OHWI, 1HWO, OI), every element
        q, p = it.get_tensor(t["index"]), t["quantization_parameters"]
        shape = [1] * q.ndim
        shape[p["quantized_dimension"]] = -1
        w = q.astype(np.float32) * p["scales"].reshape(shape)
        assert not p["zero_points"].any()
        assert any(np.array_equal(w, np.transpose(tw, axes)) for tw in torch_weights
                   for axes in ([0, 2, 3, 1], [1, 2, 3, 0], [0, 1]) if tw.ndim == len(axes))


def test_tflite_option_must_be_a_boolean():
    from edgekit.errors import EdgekitError
    from edgekit.exporters.tflite import TFLiteOptions

    with pytest.raises(EdgekitError, match=r"pow2_int8='yes' is not a boolean; choose true or false") as err:
        TFLiteOptions(pow2_int8="yes")
    assert "pow2_int8" in err.value.fix
