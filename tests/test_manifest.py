"""The typed manifest: manifests written by earlier edgekit versions still load, and round-trip unchanged.

tests/fixtures/manifests_v1/ holds manifests written by the previous code (see its README): main at
2a068af (classifier onnx plain and palettize4, tiny LLM executorch and onnx) and a9cecb7, before
manifests listed their methods.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgekit.artifact import load_artifact, write_manifest
from edgekit.errors import EdgekitError
from edgekit.manifest import (MIGRATIONS, SCHEMA_VERSION, Compression, LedgerRow, Manifest, method_specs,
                              migrate)

FIXTURES = Path(__file__).parent / "fixtures" / "manifests_v1"
ALL = sorted(p.name for p in FIXTURES.glob("*.json"))


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def _artifact_dir(tmp_path: Path, name: str) -> Path:
    d = tmp_path / "art"
    d.mkdir()
    shutil.copy(FIXTURES / name, d / "manifest.json")
    return d


@pytest.mark.parametrize("name", ALL)
def test_previous_manifests_load_typed(tmp_path, name):
    raw = _fixture(name)
    art = load_artifact(_artifact_dir(tmp_path, name))
    info = art.info
    assert isinstance(info, Manifest) and info.schema_version == SCHEMA_VERSION == raw["schema_version"]
    assert (info.target, info.model_file, info.kind) == (raw["target"], raw["model_file"], raw["kind"])
    assert art.sha256 == next(f["sha256"] for f in raw["files"] if f["path"] == raw["model_file"])
    assert art.model_bytes == next(f["bytes"] for f in raw["files"] if f["path"] == raw["model_file"])
    assert [t.name for t in art.inputs] == [t["name"] for t in raw["signature"]["inputs"]]
    # what was there comes back as it was; migration only adds
    out = info.to_json()
    assert {k: out[k] for k in raw} == raw
    assert set(out) - set(raw) <= {"methods"}


def test_pre_methods_manifest_gains_forward():
    raw = _fixture("pre_methods_classifier_onnx_palettize4.json")
    assert "methods" not in raw
    info = Manifest.from_json(raw)
    fwd = info.methods["forward"]
    assert list(info.methods) == ["forward"] and fwd.file == "model.onnx"
    assert [(t.name, t.shape, t.dtype) for t in fwd.inputs] == [("image", (1, 3, 32, 32), "float32")]
    assert [(t.name, t.shape) for t in fwd.outputs] == [("output_0", (1, 10))]
    # the same artifact written by the newer code lists exactly that method
    newer = _fixture("classifier_onnx_palettize4.json")
    assert info.to_json()["methods"] == newer["methods"]


def test_ledger_rows_are_typed():
    info = Manifest.from_json(_fixture("classifier_onnx_palettize4.json"))
    rows = info.compression.ledger
    assert len(rows) == 13 and all(isinstance(r, LedgerRow) for r in rows)
    first = rows[0]
    assert (first.layer, first.shape, first.requested["kind"], first.requested["bits"]) == ("stem.0", [8, 3, 3, 3],
                                                                                              "lut", 4)
    assert (first.capability, first.encoded_kind, first.bytes_written, first.dense_bytes) == ("native", "native",
                                                                                            206, 864)
    assert sum(r.bytes_written for r in rows) == info.compression.summary["bytes_written"] == 39838
    assert info.compression.file["weight_bytes"] == 39838


def test_ledger_rows_without_capability_get_the_targets():
    raw = _fixture("classifier_onnx_palettize4.json")
    raw["target"] = "tflite"  # no table op: the capability for lut is decompressed
    for r in raw["compression"]["ledger"]:
        del r["capability"]
    rows = Manifest.from_json(raw).compression.ledger
    assert {r.capability for r in rows} == {"decompressed"}


def test_llm_in_place_manifest_without_reset_gains_it():
    raw = _fixture("llm_executorch.json")
    del raw["methods"]["reset"]
    assert list(method_specs(raw)) == ["prefill", "decode", "reset"]
    assert Manifest.from_json(raw).methods["reset"].file == "model.pte"
    onnx = _fixture("llm_onnx.json")  # explicit cache: no reset
    assert list(Manifest.from_json(onnx).methods) == ["prefill", "decode"]
    assert Manifest.from_json(onnx).extra["tokenizer"] == "tokenizer.json"


def test_versions_it_cannot_read(tmp_path):
    raw = _fixture("classifier_onnx.json")
    with pytest.raises(EdgekitError, match="schema_version 2; this edgekit reads 1") as e:
        migrate(raw | {"schema_version": 2})
    assert e.value.fix == "upgrade edgekit to read it"
    with pytest.raises(EdgekitError, match="schema_version None") as e:
        migrate({k: v for k, v in raw.items() if k != "schema_version"})
    assert e.value.code == "manifest_version"
    broken = dict(raw)
    del broken["model_file"]
    d = tmp_path / "broken"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps(broken))
    with pytest.raises(EdgekitError, match="not a valid edgekit manifest") as e:
        load_artifact(d)
    assert e.value.code == "manifest_invalid"


def test_a_registered_migration_runs(monkeypatch):
    """The path a future schema bump takes: version 1 documents go through MIGRATIONS[1]."""
    raw = _fixture("classifier_onnx.json")
    monkeypatch.setattr("edgekit.manifest.SCHEMA_VERSION", 2)
    monkeypatch.setitem(MIGRATIONS, 1, lambda m: {**m, "schema_version": 2, "precision": m["precision"].upper()})
    m = migrate(raw)
    assert (m["schema_version"], m["precision"]) == (2, "FP32")


def test_write_manifest_round_trips_and_counts_files(tmp_path):
    raw = _fixture("classifier_onnx_palettize4.json")
    d = tmp_path / "art"
    d.mkdir()
    (d / "model.onnx").write_bytes(b"\0" * 123)
    np.savez_compressed(d / "reference_io.npz", **{"in/image": np.zeros(3, np.float32)})
    info = Manifest.from_json(raw)
    info.min_runtime_version = "0.1.0"
    write_manifest(d, info)
    written = json.loads((d / "manifest.json").read_text())
    assert list(written)[:3] == ["kind", "created", "producer"] and list(written)[-2:] == ["schema_version", "files"]
    assert written["min_runtime_version"] == "0.1.0"
    assert [f["path"] for f in written["files"]] == ["model.onnx", "reference_io.npz"]
    assert written["files"][0]["bytes"] == 123
    assert {k: written[k] for k in raw if k not in ("files",)} == {k: raw[k] for k in raw if k != "files"}
    assert load_artifact(d).model_bytes == 123
    with pytest.raises(EdgekitError, match="not a valid edgekit manifest"):
        write_manifest(d, {"target": "onnx", "model_file": "model.onnx"})  # no signature: refused, not written
    assert json.loads((d / "manifest.json").read_text()) == written


def test_compression_section_keeps_other_keys():
    section = {"recipe": None, "ledger": [], "skipped": [{"layer": "fc", "reason": "too small"}]}
    c = Compression.from_json(section)
    assert c.extra == {"skipped": [{"layer": "fc", "reason": "too small"}]} and c.to_json() == section


def test_a_hand_written_ledger_row_may_leave_fields_out():
    """Rows written by hand (not by an exporter) load; what they leave out is None and stays out."""
    row = {"layer": "proj", "requested": {"kind": "palettize", "bits": 4}, "capability": "native",
           "encoded": {"kind": "lut", "format": "packed"}, "bytes_written": 96}
    typed = LedgerRow.from_json(row)
    assert typed.shape is None and typed.encoded_kind == "lut" and typed.to_json() == row
    with pytest.raises(TypeError):
        LedgerRow.from_json({"shape": [2, 2]})  # a row names its layer
