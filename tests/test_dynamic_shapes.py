"""Third-party .onnx files with symbolic / unknown dimensions, several inputs and int64 inputs: input specs,
the runtime's shape check, local `edgekit bench` with --input / --dim, and crash reports with stderr."""

from __future__ import annotations

import json
import signal
import stat

import numpy as np
import pytest

from edgekit import runtime
from edgekit.artifact import TensorSpec
from edgekit.bench import benchmark, stderr_head
from edgekit.cli import main
from edgekit.errors import EdgekitError, InputMismatch
from edgekit.inputspec import DEFAULT_INT_RANGE, make_arrays, parse_dims, parse_input, resolve

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

DET = [{"name": "x", "shape": ["N", 3, "H", "W"], "dtype": "float32"}]
VAD = [{"name": "input", "shape": ["B", "T"], "dtype": "float32"},
       {"name": "state", "shape": [2, "B", 16], "dtype": "float32"},
       {"name": "sr", "shape": [1], "dtype": "int64"}]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from dynmodels import all_models

    return all_models(tmp_path_factory.mktemp("dyn"))


# -- parsing ---------------------------------------------------------------------------------------

def test_parse_input_forms():
    assert parse_input("x:1x3x640x640") == {"name": "x", "shape": [1, 3, 640, 640], "dtype": None,
                                             "value": None, "range": None}
    assert parse_input("rate:int64:=16000") == {"name": "rate", "shape": None, "dtype": "int64", "value": 16000,
                                                 "range": None}
    assert parse_input("ids:1x16:int64:0..30000")["range"] == [0, 30000]
    assert parse_input("t:scalar:float32:=0.5") == {"name": "t", "shape": [], "dtype": "float32", "value": 0.5,
                                                     "range": None}
    for bad, why in [("x:1x3xHx4", "neither a shape"), (":1x3", "no input name"), ("x:=abc", "not a number"),
                     ("x:int64:=1:0..3", "not both"), ("x:5..1", "low <= high")]:
        with pytest.raises(EdgekitError, match=why) as e:
            parse_input(bad)
        assert e.value.code == "bad_input_spec"
    assert parse_dims(["N=1", "H=640"]) == {"N": 1, "H": 640}
    with pytest.raises(EdgekitError, match="NAME=SIZE"):
        parse_dims(["N:1"])


# -- binding ---------------------------------------------------------------------------------------

def test_resolve_binds_symbols_from_a_shape_or_dims():
    (r,) = resolve(DET, [parse_input("x:1x3x640x640")])
    assert (r.name, r.shape, r.dtype) == ("x", (1, 3, 640, 640), "float32")
    (r,) = resolve(DET, [], {"N": 2, "H": 32, "W": 48})
    assert r.shape == (2, 3, 32, 48)
    # B comes from the first input's shape and sizes `state` too; sr keeps its concrete [1]
    rs = resolve(VAD, [parse_input("input:1x512"), parse_input("sr:int64:=16000")])
    assert [r.shape for r in rs] == [(1, 512), (2, 1, 16), (1,)] and rs[2].value == 16000
    # the signature sent back as is (symbols included) plus dims is a valid spec
    (r,) = resolve(DET, DET, {"N": 1, "H": 8, "W": 8})
    assert r.shape == (1, 3, 8, 8)


def test_resolve_names_the_input_and_the_dimension_on_a_mismatch():
    with pytest.raises(EdgekitError) as e:
        resolve(DET, [parse_input("x:1x4x64x64")])
    assert e.value.code == "invalid_input" and "input 'x' dimension 1 is 4" in e.value.message
    assert e.value.details["axis"] == 1 and e.value.details["dim"] == 3
    with pytest.raises(EdgekitError, match=r"input 'state' dimension 1 \('B'\) is 2: 'B' is already 1"):
        resolve(VAD, [parse_input("input:1x512"), parse_input("state:2x2x16")])
    with pytest.raises(EdgekitError, match=r"dimension 2 \('H'\) is 64: 'H' is already 32 \(from --dim"):
        resolve(DET, [parse_input("x:1x3x64x64")], {"H": 32})
    with pytest.raises(EdgekitError, match="rank 4 .* rank 3"):
        resolve(DET, [parse_input("x:1x3x64")])
    with pytest.raises(EdgekitError, match="the model takes float32, the spec says int64"):
        resolve(DET, [parse_input("x:1x3x8x8:int64")])
    with pytest.raises(EdgekitError, match=r"input\(s\) \['y'\] unknown; the model takes \['x'\]"):
        resolve(DET, [parse_input("y:1x3x8x8")])
    with pytest.raises(EdgekitError, match=r"dims \['Q'\] name no symbolic dimension.*\['H', 'N', 'W'\]"):
        resolve(DET, [], {"Q": 1})
    with pytest.raises(EdgekitError, match="range 0..300 does not fit int8"):
        resolve([{"name": "i", "shape": [2], "dtype": "int8"}], [parse_input("i:0..300")])
    with pytest.raises(EdgekitError, match="constant 0.5 is not a int64 value"):
        resolve(VAD, [parse_input("sr:=0.5")], {"B": 1, "T": 4})


def test_resolve_lists_every_unbound_dimension():
    sig = [{"name": "x", "shape": [None, 4], "dtype": "float32"}, {"name": "y", "shape": ["B", 4], "dtype": "float32"}]
    with pytest.raises(EdgekitError) as e:
        resolve(sig)
    assert e.value.code == "unbound_dims"
    assert e.value.details["unbound"] == [{"input": "x", "axis": 0, "dim": None}, {"input": "y", "axis": 0, "dim": "B"}]
    assert "x[0]=?, y[0]=B" in e.value.message and "--dim B=SIZE" in e.value.fix
    # binding B leaves the unnamed dimension: only a shape for x binds it
    with pytest.raises(EdgekitError, match=r"no size: x\[0\]=\?\n"):
        resolve(sig, [], {"B": 2})
    assert [r.shape for r in resolve(sig, [parse_input("x:3x4")], {"B": 3})] == [(3, 4), (3, 4)]


def test_integer_inputs_are_never_silently_zero():
    rs = resolve([{"name": "ids", "shape": [4, 256], "dtype": "int64"}, {"name": "m", "shape": [64], "dtype": "bool"},
                  {"name": "sr", "shape": [1], "dtype": "int64"}, {"name": "tok", "shape": [8], "dtype": "int32"}],
                 [parse_input("sr:=16000"), parse_input("tok:0..30000")])
    ids, mask, sr, tok = make_arrays(rs, seed=0)
    lo, hi = DEFAULT_INT_RANGE
    assert ids.dtype == np.int64 and ids.min() >= lo == 1 and ids.max() <= hi == 16 and len(np.unique(ids)) == 16
    assert mask.dtype == np.bool_ and 0 < mask.sum() < 64
    assert sr.tolist() == [16000] and sr.dtype == np.int64
    assert tok.dtype == np.int32 and tok.max() > 16 and tok.max() <= 30000
    assert [r.fill() for r in rs] == ["random 1..16 (default)", "random 0/1", "=16000", "random 0..30000"]


# -- runtime ----------------------------------------------------------------------------------------

def test_signature_keeps_symbolic_and_unknown_dims(models):
    det = runtime.load(models["detector"])
    assert det.inputs == [TensorSpec("x", ("N", 3, "H", "W"), "float32")]
    assert det.outputs == [TensorSpec("scores", ("N", 8), "float32")]
    assert runtime.load(models["unbound"]).inputs[0].shape == (None, 4)
    assert TensorSpec.from_json(det.inputs[0].to_json()) == det.inputs[0]
    assert TensorSpec.from_json({"name": "a", "shape": [-1, "7", None], "dtype": "float32"}).shape == (None, 7, None)


def test_runtime_accepts_concrete_sizes_for_symbolic_dims(models):
    det = runtime.load(models["detector"])
    x = np.random.default_rng(0).standard_normal((2, 3, 40, 24)).astype(np.float32)
    (scores,) = det.run([x])
    assert scores.shape == (2, 8)
    # a 3x3 conv + ReLU + global mean: check one value against numpy
    import onnx
    from onnx import numpy_helper

    w = numpy_helper.to_array(onnx.load(str(models["detector"])).graph.initializer[0])
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv = sum(w[0, c, i, j] * xp[1, c, i:i + 40, j:j + 24] for c in range(3) for i in range(3) for j in range(3))
    assert scores[1, 0] == pytest.approx(np.maximum(conv, 0).mean(), rel=1e-4)
    with pytest.raises(InputMismatch, match="dimension 1 must be 3"):
        det.run([np.zeros((1, 4, 8, 8), np.float32)])
    vad = runtime.load(models["vad"])
    out, state = vad.run({"input": np.ones((1, 512), np.float32), "state": np.ones((2, 1, 16), np.float32),
                          "sr": np.array([16000])})
    assert out[0, 0] == pytest.approx(512 / 16000 * 3 + 1) and state.shape == (2, 1, 16)
    with pytest.raises(InputMismatch, match="dimension 1 'B' is 1 elsewhere in this call"):
        vad.run({"input": np.ones((1, 512), np.float32), "state": np.ones((2, 2, 16), np.float32),
                 "sr": np.array([16000])})


# -- local bench and CLI ----------------------------------------------------------------------------

QUICK = ["--runs", "5", "--warmup", "1", "--min-seconds", "0"]


def test_bench_detector_with_input_flag(models, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["bench", str(models["detector"]), "--input", "x:1x3x96x64", *QUICK, "--json", str(out)]) == 0
    assert "onnxruntime" in capsys.readouterr().out
    (r,) = json.loads(out.read_text())
    assert r["inputs_used"] == [{"name": "x", "shape": [1, 3, 96, 64], "dtype": "float32", "fill": "random normal"}]
    assert r["latency"]["runs"] >= 5 and r["latency"]["p50_ms"] > 0
    # --dim binds the same symbols
    r = benchmark(models["detector"], runs=3, warmup=0, min_seconds=0, warmup_seconds=0,
                  inputs="random", dims={"N": 1, "H": 32, "W": 32})
    assert r["inputs_used"][0]["shape"] == [1, 3, 32, 32]


def test_bench_detector_at_640(models, tmp_path):
    r = benchmark(models["detector"], runs=3, warmup=0, min_seconds=0, warmup_seconds=0,
                  input_spec=[parse_input("x:1x3x640x640")], inputs="spec")
    small = benchmark(models["detector"], runs=3, warmup=0, min_seconds=0, warmup_seconds=0,
                      input_spec=[parse_input("x:1x3x64x64")], inputs="spec")
    assert r["inputs_used"][0]["shape"] == [1, 3, 640, 640]
    assert r["latency"]["p50_ms"] > 5 * small["latency"]["p50_ms"]  # 100x the pixels: the spec really applies


def test_bench_multi_input_model_with_a_stated_constant(models, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["bench", str(models["vad"]), "--input", "input:1x512", "--input", "sr:int64:=16000", *QUICK,
                 "--json", str(out)]) == 0
    (r,) = json.loads(out.read_text())
    assert [(t["name"], t["shape"], t["fill"]) for t in r["inputs_used"]] == [
        ("input", [1, 512], "random normal"), ("state", [2, 1, 16], "random normal"), ("sr", [1], "=16000")]
    # without the constant the default 1..16 reaches the model, which refuses it: a runtime_error saying so
    assert main(["bench", str(models["vad"]), "--dim", "B=1", "--dim", "T=512", *QUICK]) == 2
    err = capsys.readouterr().err
    assert "[runtime_error]" in err and "Reshape" in err and "sr int64 [1] random 1..16 (default)" in err
    assert "--input sr:=VALUE" in err and "Traceback" not in err


def test_bench_unbound_dims_is_a_clear_error(models, capsys):
    assert main(["bench", str(models["unbound"]), "--inputs", "random", *QUICK]) == 2
    err = capsys.readouterr().err
    assert "[unbound_dims]" in err and "x[0]=?, y[0]=B" in err and "--dim B=SIZE" in err
    assert main(["bench", str(models["detector"]), "--input", "x:1x4x8x8", *QUICK]) == 2
    assert "input 'x' dimension 1 is 4: the model fixes it to 3" in capsys.readouterr().err
    assert main(["bench", str(models["detector"]), "--input", "x:1x3xHx8"]) == 2
    assert "[bad_input_spec]" in capsys.readouterr().err


def test_default_integer_fill_is_announced(tmp_path, capsys):
    from onnx import TensorProto as T
    from onnx import helper

    from dynmodels import _save

    g = helper.make_graph([helper.make_node("Cast", ["ids"], ["f"], to=T.FLOAT)], "ids",
                          [helper.make_tensor_value_info("ids", T.INT64, [1, 8])],
                          [helper.make_tensor_value_info("f", T.FLOAT, [1, 8])])
    path = _save(g, tmp_path / "ids.onnx")
    assert main(["bench", str(path), *QUICK]) == 0
    err = capsys.readouterr().err
    assert "note: int64 input 'ids' [1, 8] was filled with random 1..16 (default)" in err


def test_a_crashed_child_shows_its_stderr(models, tmp_path, monkeypatch, capsys):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'Fatal Python error: Segmentation fault' >&2\necho 'in libfoo.so' >&2\n"
                    "kill -SEGV $$\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr("edgekit.bench.sys.executable", str(fake))
    with pytest.raises(EdgekitError) as e:
        benchmark(models["detector"], runs=1)
    assert e.value.code == "runtime_crashed" and f"killed by signal {int(signal.SIGSEGV)}" in str(e.value)
    assert "stderr:\n    Fatal Python error: Segmentation fault\n    in libfoo.so" in e.value.message
    assert main(["bench", str(models["detector"]), "--dim", "N=1", "--dim", "H=8", "--dim", "W=8"]) == 2
    err = capsys.readouterr().err
    assert "Fatal Python error: Segmentation fault" in err and "see details" not in err


def test_stderr_head_keeps_the_first_lines_and_the_last():
    text = "\n".join(f"line {i}" for i in range(40))
    head = stderr_head(text, lines=3)
    assert head.splitlines() == ["", "stderr:", "  line 0", "  line 1", "  line 2", "  ... (36 more lines)",
                                 "  line 39"]
    assert stderr_head("") == "" and stderr_head(None) == ""
