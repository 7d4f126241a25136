"""The local benchmark and the CLI around it."""

from __future__ import annotations

import json

import pytest

from conftest import needs_export
from edgekit.bench import benchmark
from edgekit.cli import main
from edgekit.errors import EdgekitError


@needs_export
@pytest.mark.parametrize("target", ["onnx", "tflite"])
def test_benchmark_reports_the_whole_distribution(tiny_artifacts, target):
    r = benchmark(tiny_artifacts[target], runs=30, warmup=5, min_seconds=0.2, threads=2)
    lat = r["latency"]
    assert lat["runs"] >= 30
    assert 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert lat["std_ms"] >= 0 and lat["cv"] >= 0 and isinstance(lat["outliers"], int)
    assert r["threads"] == 2 and r["warmup_runs"] >= 5
    assert r["cold_start_ms"] >= r["load_ms"] > 0 and r["first_run_ms"] > 0
    assert r["peak_rss_mb"] > 10
    from edgekit.artifact import load_artifact
    assert r["sha256"] == load_artifact(tiny_artifacts[target]).sha256
    assert r["runtime_version"] and r["machine"]["cpu_count"] >= 1 and "load_average" in r["machine"]


@needs_export
def test_too_few_runs_flag_percentiles_as_estimates(tiny_artifacts):
    r = benchmark(tiny_artifacts["onnx"], runs=10, warmup=1, min_seconds=0, warmup_seconds=0)
    assert r["latency"]["runs"] == 10
    assert r["latency"]["estimates"] == ["p90", "p99"]


def test_bad_bench_config_is_a_user_error(tmp_path):
    with pytest.raises(EdgekitError, match="runs must be >= 1, got 0"):
        benchmark(tmp_path, runs=0)
    with pytest.raises(EdgekitError, match="not an edgekit artifact|does not exist|cannot tell the format"):
        benchmark(tmp_path / "missing", runs=5)


@needs_export
def test_cli_bench_and_inspect(tiny_artifacts, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    assert main(["bench", str(tiny_artifacts["onnx"]), "--runs", "20", "--min-seconds", "0.1",
                 "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "p50 ms" in out and "~" in out  # 20 runs: p90/p99 are estimates
    assert json.loads(out_json.read_text())[0]["latency"]["runs"] >= 20
    assert main(["inspect", str(tiny_artifacts["executorch"])]) == 0
    out = capsys.readouterr().out
    assert "resnet_tiny" in out and "XnnpackBackend" in out and "ok cos" in out
    assert main(["inspect", str(tiny_artifacts["coreml"])]) == 0
    assert "structural ok" in capsys.readouterr().out


def test_cli_user_errors_have_no_traceback(tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not an edgekit artifact" in err and "Traceback" not in err
    assert main(["export", "resnet_nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "model 'resnet_nope' unknown" in err and "resnet18" in err
    assert main(["export", "resnet_tiny", "--coreml-precision", "fp8", "--out", str(tmp_path)]) == 2
    assert "compute_precision 'fp8' unknown; choose one of fp16, fp32" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse rejects an unknown target before anything runs
        main(["export", "resnet_tiny", "--target", "tflit"])
    assert "invalid choice: 'tflit'" in capsys.readouterr().err


@needs_export
def test_zoo_list(capsys):
    assert main(["zoo", "list", "resnet*"]) == 0
    out = capsys.readouterr().out
    assert "resnet18 " in out and "11.69M" in out and "1814.1M" in out  # ResNet-18: params and MACs at 224
