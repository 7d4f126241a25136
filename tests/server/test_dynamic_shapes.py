"""Bare third-party .onnx files on the server: symbolic dims bound by a spec or `dims`, the signature sent back,
unbound dims refused with a list, int64 constants, runtime_error vs runtime_crashed, the final phase, and
`edgekit bench --server` with --input."""

from __future__ import annotations

import json

import pytest

from edgekit.cli import main

from .conftest import upload, wait_job

pytest.importorskip("onnx")
FAST = {"runs": 5, "warmup": 0, "min_seconds": 0, "warmup_seconds": 0}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from dynmodels import all_models

    return all_models(tmp_path_factory.mktemp("dyn"))


def _bare(client, path) -> dict:
    r = upload(client, path.read_bytes(), filename=path.name)
    assert r.status_code == 201, r.text
    return r.json()


def _submit(client, art, **body):
    return client.post("/v1/benchmarks", json={"artifact_id": art["id"], **FAST, **body})


def test_detector_signature_spec_and_dims(client, models):
    art = _bare(client, models["detector"])
    assert art["signature"]["inputs"] == [{"name": "x", "shape": ["N", 3, "H", "W"], "dtype": "float32"}]
    assert not art["has_reference_inputs"] and art["runnable"]

    spec = [{"name": "x", "shape": [1, 3, 64, 64], "dtype": "float32"}]
    job = wait_job(client, _submit(client, art, inputs=spec).json()["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["phase"] == "done" and job["result"]["latency"]["p50_ms"] > 0
    assert job["result"]["inputs_used"] == [{**spec[0], "fill": "random normal"}]
    assert job["config"]["inputs"] == "spec" and job["config"]["input_spec"] == spec

    # the server's own signature sent back validates; its symbols take their sizes from dims
    r = _submit(client, art, inputs=art["signature"]["inputs"], dims={"N": 1, "H": 32, "W": 16})
    assert r.status_code == 201, r.text
    job = wait_job(client, r.json()["id"])
    assert job["status"] == "succeeded" and job["result"]["inputs_used"][0]["shape"] == [1, 3, 32, 16]
    job = wait_job(client, _submit(client, art, inputs="random", dims={"N": 2, "H": 8, "W": 8}).json()["id"])
    assert job["status"] == "succeeded" and job["result"]["inputs_used"][0]["shape"] == [2, 3, 8, 8]


def test_detector_rest_at_640(client, models):
    art = _bare(client, models["detector"])
    spec = [{"name": "x", "shape": [1, 3, 640, 640], "dtype": "float32"}]
    job = wait_job(client, _submit(client, art, inputs=spec, runs=3).json()["id"], timeout=120)
    assert job["status"] == "succeeded" and job["result"]["inputs_used"][0]["shape"] == [1, 3, 640, 640]


def test_spec_mismatch_and_unbound_dims_are_422(client, models):
    det = _bare(client, models["detector"])
    r = _submit(client, det, inputs=[{"name": "x", "shape": [1, 4, 64, 64], "dtype": "float32"}])
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_input" and "input 'x' dimension 1 is 4" in err["message"]
    assert err["details"]["input"] == "x" and err["details"]["axis"] == 1 and err["details"]["dim"] == 3
    assert err["details"]["expected"] == det["signature"]["inputs"]

    r = _submit(client, det, inputs="random")
    assert r.status_code == 422 and r.json()["error"]["code"] == "unbound_dims"
    assert [u["dim"] for u in r.json()["error"]["details"]["unbound"]] == ["N", "H", "W"]
    r = _submit(client, det, inputs=det["signature"]["inputs"])  # sent back without dims: still unbound
    assert r.status_code == 422 and r.json()["error"]["code"] == "unbound_dims"

    unb = _bare(client, models["unbound"])
    assert unb["signature"]["inputs"][0]["shape"] == [None, 4]
    r = _submit(client, unb, inputs="random")
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "unbound_dims" and "x[0]=?, y[0]=B" in err["message"]
    assert err["details"]["unbound"] == [{"input": "x", "axis": 0, "dim": None}, {"input": "y", "axis": 0, "dim": "B"}]
    r = _submit(client, unb, inputs=[{"name": "x", "shape": [3, 4]}], dims={"B": 3})
    assert wait_job(client, r.json()["id"])["status"] == "succeeded"

    r = _submit(client, det, inputs="random", dims={"N": -1})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_int64_constant_and_runtime_error_vs_crash(client, models):
    vad = _bare(client, models["vad"])
    assert vad["signature"]["inputs"][2] == {"name": "sr", "shape": [1], "dtype": "int64"}
    job = wait_job(client, _submit(client, vad, inputs=[{"name": "input", "shape": [1, 512]},
                                                        {"name": "sr", "value": 16000}]).json()["id"])
    assert job["status"] == "succeeded", job["error"]
    assert [t["fill"] for t in job["result"]["inputs_used"]] == ["random normal", "random normal", "=16000"]

    # the default 1..16 reaches the model, which raises: runtime_error with the runtime's message, final phase
    job = wait_job(client, _submit(client, vad, inputs="random", dims={"B": 1, "T": 512}).json()["id"])
    assert job["status"] == "failed" and job["reason"] == "runtime_error"
    assert "Reshape" in job["error"]["message"] and job["error"]["details"]["exception"] == "Fail"
    assert job["phase"] == "first_run" and job["error"]["details"]["phase"] == "first_run"
    assert "random 1..16 (default)" in job["error"]["details"]["fix"]
    page = client.get(f"/dashboard/jobs/{job['id']}").text
    assert "runtime_error: Fail: [ONNXRuntimeError]" in page and "<td>first_run</td>" in page


def test_bench_server_cli_with_input_flags(server, models, capsys):
    server.start()
    url = server.url
    quick = ["--runs", "5", "--warmup", "0", "--min-seconds", "0"]
    html = server.data_dir.parent / "r.html"
    assert main(["bench", "--server", url, str(models["detector"]), "--input", "x:1x3x640x640", *quick,
                 "--json", str(server.data_dir.parent / "r.json"), "--html", str(html)]) == 0
    (r,) = json.loads((server.data_dir.parent / "r.json").read_text())
    assert r["inputs_used"][0]["shape"] == [1, 3, 640, 640] and r["latency"]["runs"] >= 5
    page = html.read_text()
    assert page.count("class='p50'") == 1 and "detector.onnx · 1 thr" in page and url in page
    assert f"{r['latency']['p50_ms']:.3f} ms" in page and "<script" not in page
    assert main(["bench", "--server", url, str(models["vad"]), "--dim", "B=1", "--dim", "T=256",
                 "--input", "sr:int64:=16000", *quick]) == 0
    assert "onnxruntime" in capsys.readouterr().out
    # a bare static model: random inputs, as the local bench does (no no_reference_inputs)
    from onnx import TensorProto as T
    from onnx import helper

    from dynmodels import _save

    g = helper.make_graph([helper.make_node("Relu", ["a"], ["b"])], "static",
                          [helper.make_tensor_value_info("a", T.FLOAT, [1, 16])],
                          [helper.make_tensor_value_info("b", T.FLOAT, [1, 16])])
    static = _save(g, server.data_dir.parent / "static.onnx")
    assert main(["bench", "--server", url, str(static), *quick]) == 0
    assert "no_reference_inputs" not in capsys.readouterr().err
    # failures: unbound dims refused at submit; a runtime error prints the runtime's message and phase
    assert main(["bench", "--server", url, str(models["unbound"]), *quick]) == 2
    assert "x[0]=?, y[0]=B" in capsys.readouterr().err
    assert main(["bench", "--server", url, str(models["vad"]), "--dim", "B=1", "--dim", "T=256", *quick]) == 2
    err = capsys.readouterr().err
    assert "[runtime_error]" in err and "in phase 'first_run'" in err and "Reshape" in err


def test_crash_shows_the_childs_stderr(server, models):
    """A child killed by a signal is runtime_crashed and the client shows the first lines of its stderr."""
    from edgekit.client import ServerError, bench_remote

    from .fault_child import ABORT

    server.start()
    with pytest.raises(ServerError) as e:
        bench_remote([server.url], [str(models["detector"])], show_progress=False, seed=ABORT,
                     inputs="random", dims={"N": 1, "H": 8, "W": 8}, **FAST)
    assert e.value.code == "runtime_crashed" and "SIGABRT" in e.value.message
    assert "in phase 'first_run'" in e.value.message
    assert "stderr:\n    fault_child: aborting in first_run" in e.value.message


def test_phase_is_final_on_a_job_that_failed_in_inputs(client, artifacts, tmp_path):
    import shutil

    import numpy as np

    from .conftest import zip_dir

    broken = tmp_path / "broken"
    shutil.copytree(artifacts["onnx"], broken)
    np.savez(broken / "reference_io.npz", **{"in/other": np.zeros((1, 8), np.float32)})
    art = upload(client, zip_dir(broken), filename="broken.zip").json()
    assert art["has_reference_inputs"]
    r = _submit(client, art, dims={"N": 2})  # dims with reference inputs would be ignored: refused instead
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_input_spec", r.text
    assert "fixed shapes" in r.json()["error"]["message"]
    job = wait_job(client, _submit(client, art).json()["id"])
    assert job["status"] == "failed" and job["reason"] == "invalid_input"
    assert job["phase"] == "inputs" and "reference inputs lack ['input']" in job["error"]["message"]
