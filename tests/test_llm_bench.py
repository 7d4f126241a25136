"""`edgekit bench` on LLM artifacts: time to first token, prefill/decode tokens/s, per-token percentiles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import needs_export
from edgekit.cli import main

pytestmark = needs_export


def test_time_generation_times_every_new_token(tiny_llm_artifacts):
    from edgekit.generate import LLMSession
    from edgekit.llm_bench import decode_rate_artifact, time_generation

    llm = LLMSession(tiny_llm_artifacts["onnx"], threads=1)
    tokens = np.arange(10, 40, dtype=np.int64)  # 12-token prompt: two prefill chunks of 8
    ttft, steps = time_generation(llm, tokens, 12)
    assert len(steps) == 18 and ttft > 0 and all(t > 0 for t in steps)
    assert decode_rate_artifact(llm, tokens, 12) > 0


def test_bench_cli_reports_llm_figures(tiny_llm_artifacts, tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["bench", str(tiny_llm_artifacts["onnx"]), "--runs", "40", "--warmup", "0", "--min-seconds", "0",
               "--prompt-tokens", "8", "--new-tokens", "16", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "decode tok/s" in text and "TTFT ms" in text and "p50 ms/token" in text and "8+16" in text
    (r,) = json.loads(out.read_text())
    llm = r["llm"]
    assert r["kind"] == "llm" and r["target"] == "onnx" and r["runtime"] == "onnxruntime"
    assert llm["prompt_tokens"] == 8 and llm["new_tokens"] == 16 and llm["rounds"] == 3  # 3 x 16 >= 40 steps
    assert r["latency"]["runs"] == llm["timed_tokens"] == 48
    assert llm["ttft_ms"]["runs"] == 3 and llm["prefill_tokens_per_s"] > 0
    # decode tok/s is the timed steps over their total time: consistent with the per-token mean
    assert llm["decode_tokens_per_s"] == pytest.approx(1e3 / r["latency"]["mean_ms"], rel=1e-6)
    for key in ("sha256", "model_bytes", "cold_start_ms", "load_ms", "peak_rss_mb", "machine", "runtime_version"):
        assert r[key], key
    assert r["config"]["prompt_tokens"] == 8 and "samples_ms" not in r


def test_bench_llm_checks_the_context(tiny_llm_artifacts, capsys):
    rc = main(["bench", str(tiny_llm_artifacts["tflite"]), "--prompt-tokens", "40", "--new-tokens", "40"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "bad_option" in err and "exceeds the model's context of 64" in err


def test_classifier_bench_config_has_no_llm_fields(tiny_artifacts):
    from edgekit.bench import benchmark

    r = benchmark(tiny_artifacts["onnx"], runs=5, warmup=0, min_seconds=0)
    assert "llm" not in r and "kind" not in r
    assert "prompt_tokens" not in r["config"] and "new_tokens" not in r["config"]
