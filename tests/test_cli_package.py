"""The CLI is a package of small command modules; LLM export orchestration lives in the library."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.cli import COMMANDS, build_parser, main
from edgekit.errors import EdgekitError

CLI = Path(__file__).resolve().parents[1] / "edgekit" / "cli"


def test_one_module_per_command_in_help_order():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    names = list(sub.choices)
    assert names == ["zoo", "export", "compress", "inspect", "bench", "generate", "export-llm", "compress-llm",
                     "train", "doctor", "bundle", "serve", "demo"]
    for command in COMMANDS:  # each registered module holds its command: parser and function
        if ":" in command:  # a command module outside this package
            module, function = command.split(":")
            assert callable(getattr(importlib.import_module(module), function))
            continue
        module = importlib.import_module(f"edgekit.cli.{command}")
        assert callable(module.add_parser) and (CLI / f"{command}.py").is_file()
    for path in CLI.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 200, f"{path.name}: a command module stays small"


def test_python_dash_m_runs_the_cli():
    proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "export", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "--onnx-opset ONNX_OPSET" in proc.stdout and "--coreml-target" in proc.stdout


def test_export_llm_checks_before_loading(tmp_path, capsys):
    from edgekit.exporters.llm_export import export_checkpoint

    with pytest.raises(EdgekitError, match="has no tokenizer.json") as e:
        export_checkpoint(tmp_path, ["onnx"], tmp_path / "out")
    assert e.value.code == "no_tokenizer"
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(EdgekitError, match="--first exports fp32 weights only"):
        export_checkpoint(tmp_path, ["executorch"], tmp_path / "out", first="r.safetensors", weights="int4")
    assert main(["export-llm", str(tmp_path / "nowhere"), "--target", "onnx"]) == 2
    assert "has no tokenizer.json" in capsys.readouterr().err


def test_export_llm_from_the_cli_writes_a_checked_artifact(tmp_path, capsys):
    from conftest import HAS_EXPORT, tiny_llm_with_tokenizer

    if not HAS_EXPORT:
        pytest.skip("needs the export extra")
    from edgekit.model_zoo.llama import save_hf_checkpoint

    ckpt = tmp_path / "tiny"
    ckpt.mkdir()
    model, _, _ = tiny_llm_with_tokenizer(ckpt, n_layers=2)
    save_hf_checkpoint(model, ckpt)
    assert main(["export-llm", str(ckpt), "--target", "onnx", "--prefill-len", "8", "--onnx-opset", "20",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "onnx: converting and checking parity" in out.err and "tiny/onnx" in out.out
    manifest = json.loads((tmp_path / "tiny" / "onnx" / "manifest.json").read_text())
    assert manifest["parity"]["ok"] and list(manifest["methods"]) == ["prefill", "decode"]
    assert manifest["target"] == "onnx" and manifest["options"] == {"prefill_len": 8, "opset": 20}
    import onnx  # the opset asked for, not a hard-coded one

    for method in ("prefill", "decode"):
        model = onnx.load(str(tmp_path / "tiny" / "onnx" / f"{method}.onnx"), load_external_data=False)
        assert {o.domain: o.version for o in model.opset_import}[""] == 20


def test_bench_flags_come_from_the_bench_config():
    from dataclasses import fields

    from edgekit.bench import BenchConfig

    args = build_parser().parse_args(["bench", "a.onnx"])
    flagged = [f for f in fields(BenchConfig) if f.metadata.get("cli")]
    assert [f.name for f in flagged] == ["runs", "warmup", "min_seconds", "threads", "prompt_tokens", "new_tokens"]
    assert all(getattr(args, f.name) == f.default for f in flagged)
    args = build_parser().parse_args(["bench", "a.onnx", "--new-tokens", "32", "--min-seconds", "0.5"])
    assert (args.new_tokens, args.min_seconds) == (32, 0.5) and isinstance(args.new_tokens, int)
