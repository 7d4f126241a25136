"""edgekit.targets is the one module that names the targets; everything else derives from it."""

from __future__ import annotations

import ast
import importlib
from dataclasses import fields
from pathlib import Path

import pytest

from edgekit.targets import SUFFIXES, TARGET_NAMES, names_with, target_for_suffix, target_info

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("edgekit", "exporters", "kernels", "model_zoo", "server")
THE_MODULE = ROOT / "edgekit" / "targets.py"


def _spelled_lists(path: Path) -> list[str]:
    """Literal lists, tuples, sets and dicts in ``path`` holding two or more target names or model suffixes."""
    names, suffixes = set(TARGET_NAMES), set(SUFFIXES)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            elts = node.elts
        elif isinstance(node, ast.Dict):
            elts = [*node.keys, *node.values]
        else:
            continue
        values = {e.value for e in elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
        for known in (names, suffixes):
            if len(values & known) >= 2:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {sorted(values & known)}")
    return found


def test_scanner_finds_a_spelled_list(tmp_path):
    bad = ROOT / "edgekit" / "_probe_not_a_module.py"  # inside ROOT so the relative path works
    try:
        bad.write_text('X = {"onnx": 1, "tflite": 2}\nif t in (".pte", ".onnx"):\n    pass\nY = ("onnx",)\n')
        assert [s.split(":")[1] for s in _spelled_lists(bad)] == ["1", "2"]
    finally:
        bad.unlink()


def test_only_the_targets_module_spells_the_target_list():
    offenders = [hit for pkg in PACKAGES for path in sorted((ROOT / pkg).rglob("*.py")) if path != THE_MODULE
                 for hit in _spelled_lists(path)]
    assert offenders == [], "derive these from edgekit.targets instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize("name", TARGET_NAMES)
def test_exporter_and_session_come_from_the_table(name):
    from edgekit.exporters import get_exporter

    t = target_info(name)
    exporter = get_exporter(name)
    assert (exporter.name, exporter.suffix, exporter.runtime) == (name, t.suffix, name)
    assert exporter.capabilities == dict(t.compressed)
    assert set(t.compressed) == {"lut", "shift", "sparse", "lut+sparse", "shift+sparse", "int8"}
    module, cls = t.session.split(":")
    assert importlib.import_module(module).__dict__[cls].__name__ == cls
    assert target_for_suffix(t.suffix) is t


def test_derived_tables():
    from edgekit.artifact import MODEL_SUFFIXES
    from edgekit.exporters.compression.ledger import REQUANTIZE_FIX
    from edgekit.exporters.pipeline import PRODUCERS
    from edgekit.runtime import RUNTIMES

    assert MODEL_SUFFIXES == {".mlpackage": "coreml", ".pte": "executorch", ".tflite": "tflite", ".onnx": "onnx"}
    assert set(RUNTIMES) == set(TARGET_NAMES)
    assert set(REQUANTIZE_FIX) == {"executorch", "tflite"}
    assert set(PRODUCERS) == {"edgekit-sdk", "torch", "executorch", "coremltools", "litert-torch", "onnx",
                              "onnxscript", "numpy"}
    assert names_with("first") == ("executorch",) and names_with("llm") == TARGET_NAMES
    with pytest.raises(Exception, match="choose one of coreml, executorch, tflite, onnx"):
        target_info("tensorrt")


def test_server_formats_and_runtimes():
    pytest.importorskip("fastapi")
    from edgekit.server.ingest import EXTENSIONS
    from edgekit.server.schemas import RUNTIMES
    from edgekit.server.sniff import FORMATS, claimed_format

    assert FORMATS == (*TARGET_NAMES, "edgekit")
    assert RUNTIMES == {"coreml": "coreml", "executorch": "executorch", "tflite": "litert", "onnx": "onnxruntime"}
    assert EXTENSIONS == {"executorch": ".pte", "tflite": ".tflite", "onnx": ".onnx"}  # .mlpackage comes zipped
    assert claimed_format("m.mlpackage.zip", None) == "coreml" and claimed_format("a.pte", None) == "executorch"


def test_cli_flags_are_generated_from_the_options_dataclasses():
    from edgekit.cli import build_parser
    from edgekit.cli.target_flags import target_options
    from edgekit.exporters import get_exporter

    defaults = target_options(build_parser().parse_args(["export", "m"]))
    for name in TARGET_NAMES:  # no flag given: exactly the dataclass defaults, every field
        options = get_exporter(name).Options
        assert get_exporter(name).make_options(defaults[name]) == options()
        assert set(defaults[name]) == {f.name for f in fields(options)}
    args = build_parser().parse_args(["export", "m", "--coreml-target", "iOS18", "--onnx-opset", "21",
                                      "--no-onnx-pow2-int8", "--executorch-kernels", "edgekit"])
    opts = target_options(args)
    assert opts["coreml"]["minimum_deployment_target"] == "iOS18"
    assert (opts["onnx"]["opset"], opts["onnx"]["pow2_int8"]) == (21, False)
    assert opts["executorch"]["kernels"] == "edgekit" and opts["tflite"]["pow2_int8"] is True
