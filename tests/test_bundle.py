"""`edgekit bundle`: the generated Kotlin/Swift wrappers agree with the manifest (parsed from the generated
source, per method and tensor), files are copied and sha256-checked, and bad requests fail whole."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import needs_export, tiny_llm_with_tokenizer
from edgekit.artifact import method_specs, sha256_of
from edgekit.bundle import bundle
from edgekit.errors import EdgekitError

pytestmark = needs_export

KOTLIN_TYPES = {"float32": "FloatArray", "float64": "DoubleArray", "int64": "LongArray", "int32": "IntArray",
                "int8": "ByteArray", "uint8": "ByteArray"}
SWIFT_TYPES = {"float32": "Float", "float64": "Double", "int64": "Int64", "int32": "Int32", "int8": "Int8",
               "uint8": "UInt8"}
CASES = [("android", "executorch"), ("android", "tflite"), ("ios", "coreml"), ("ios", "executorch")]


@pytest.fixture(scope="session")
def llm_artifacts(tmp_path_factory) -> dict[str, Path]:
    """A 2-layer tiny LLM exported (no parity run: the bundle reads only the manifest and the file) to the
    three mobile formats: .pte (prefill/decode/reset, in-place cache), .tflite and .mlpackage (explicit cache)."""
    from edgekit.exporters.llm import export_llm

    out = tmp_path_factory.mktemp("bundle_llm")
    model, tok_file, _ = tiny_llm_with_tokenizer(out, n_layers=2)
    return {t: export_llm(model, tok_file, t, out / t, name="tiny_llm", prefill_len=8).path
            for t in ("executorch", "tflite", "coreml")}


@pytest.fixture(scope="session")
def bundles(tiny_artifacts, llm_artifacts, tmp_path_factory) -> dict[tuple[str, str, str], Path]:
    """Every (kind, platform, target) bundle, written once; Android packages differ so they compile together."""
    out = tmp_path_factory.mktemp("bundles")
    made = {}
    for kind, arts in (("classifier", tiny_artifacts), ("llm", llm_artifacts)):
        for platform, target in CASES:
            made[kind, platform, target] = bundle(arts[target], platform, out / f"{kind}-{platform}-{target}",
                                                  package=f"bundletest.{kind}.{target}").path
    return made


def file_signature(artifact: Path, target: str) -> dict[str, dict]:
    """The model file's own method keys and tensor names/dtypes, read here independently of edgekit.bundle."""
    from edgekit.artifact import load_artifact

    methods = method_specs(load_artifact(artifact).manifest)
    if target == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=str(artifact / "model.tflite"))
        sigs = interp.get_signature_list()
        keys = {m: (m if m in sigs else next(iter(sigs))) for m in methods}
        return {m: {"key": k, "inputs": sigs[k]["inputs"], "outputs": sigs[k]["outputs"],
                    "in_dtypes": [interp.get_signature_runner(k).get_input_details()[n]["dtype"].__name__
                                  for n in sigs[k]["inputs"]]} for m, k in keys.items()}
    if target == "coreml":
        from edgekit.exporters.coreml.structure import describe_mlpackage

        out = {}
        for m in methods:
            fn = "main" if len(methods) == 1 else m
            d = describe_mlpackage(artifact / "model.mlpackage", function=fn)
            out[m] = {"key": fn, "inputs": [f["name"] for f in d["inputs"]], "outputs": [f["name"] for f in d["outputs"]]}
        return out
    return {m: {"key": m, "inputs": None, "outputs": None} for m in methods}


# --- parsers of the generated source -------------------------------------------------------------

def _split_functions(source: str, start: str) -> dict[str, tuple[str, str, str]]:
    """{function name: (parameter list, return type, body)} of the class's top-level functions."""
    pat = re.compile(start + r"(\w+)\(([^)]*)\)(?::| throws ->) (\w+) \{\n(.*?)\n    \}\n", re.S)
    return {m.group(1): (m.group(2), m.group(3), m.group(4)) for m in pat.finditer(source)}


def _shape(text: str) -> list[int | None]:
    return [None if int(v.rstrip("L")) < 0 else int(v.rstrip("L")) for v in re.findall(r"-?\d+L?", text)]


def parse_kotlin(source: str) -> dict:
    infos = {m.group(1): (m.group(2), _shape(m.group(3)), m.group(4)) for m in re.finditer(
        r'@JvmField val (\w+) = TensorInfo\("([^"]*)", longArrayOf\(([^)]*)\), "(\w+)"', source)}
    sigs = {m.group(1): ([infos[n.strip()] for n in m.group(2).split(",") if n.strip()],
                         [infos[n.strip()] for n in m.group(3).split(",") if n.strip()])
            for m in re.finditer(r'"(\w+)" to Signature\(listOf<TensorInfo>\(([^)]*)\), listOf<TensorInfo>\(([^)]*)\)\)',
                                 source)}
    classes = {m.group(1): re.findall(r"@JvmField val (\w+): (\w+)", m.group(2))
               for m in re.finditer(r"    class (\w+Outputs)\(\n(.*?)\n    \)", source, re.S)}
    funcs = {}
    for name, (params, ret, body) in _split_functions(source, r"\n    fun ").items():
        key = re.search(r'module\.execute\("(\w+)"|model\.run\(inputs, outputs, "(\w+)"\)', body)
        funcs[name] = {"params": re.findall(r"(\w+): (\w+)", params), "returns": classes[ret],
                       "key": key.group(1) or key.group(2),
                       "io_inputs": re.findall(r'model\.createInputBuffer\("([^"]+)"', body),
                       "io_outputs": re.findall(r'model\.createOutputBuffer\("([^"]+)"', body)}
    return {"signatures": sigs, "functions": funcs}


def parse_swift(source: str) -> dict:
    infos = {m.group(1): (m.group(2), _shape(m.group(3)), m.group(4)) for m in re.finditer(
        r'public static let (\w+) = TensorInfo\(name: "([^"]*)", shape: \[([^\]]*)\], dtype: "(\w+)"', source)}
    sigs = {m.group(1): ([infos[n.strip()] for n in m.group(2).split(",") if n.strip()],
                         [infos[n.strip()] for n in m.group(3).split(",") if n.strip()])
            for m in re.finditer(r'"(\w+)": Signature\(inputs: \[([^\]]*)\], outputs: \[([^\]]*)\]\)', source)}
    structs = {m.group(1): re.findall(r"public let (\w+): \[(\w+)\]", m.group(2))
               for m in re.finditer(r"public struct (\w+Outputs) \{(.*?)\n    \}", source, re.S)}
    configs = dict(re.findall(r'(\w+)Config\.functionName = "(\w+)"', source))
    funcs = {}
    for name, (params, ret, body) in _split_functions(source, r"\n    public func ").items():
        key = re.search(r'module\.execute\("(\w+)"|try (\w+)Model\.prediction', body)
        feats = re.search(r"MLDictionaryFeatureProvider\(dictionary: \[(.*)\]\)", body)
        funcs[name] = {"params": re.findall(r"(\w+): \[?(\w+)\]?", params), "returns": structs[ret],
                       "key": key.group(1) or configs.get(key.group(2), "main"),
                       "io_inputs": re.findall(r'"([^"]+)": MLFeatureValue', feats.group(1)) if feats else [],
                       "io_outputs": re.findall(r'featureValue\(for: "([^"]+)"\)', body)}
    return {"signatures": sigs, "functions": funcs}


# --- tests ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["classifier", "llm"])
@pytest.mark.parametrize("platform,target", CASES)
def test_wrapper_names_shapes_and_dtypes_equal_the_manifest(bundles, tiny_artifacts, llm_artifacts, kind,
                                                             platform, target):
    from edgekit.artifact import load_artifact

    artifact = (tiny_artifacts if kind == "classifier" else llm_artifacts)[target]
    manifest = load_artifact(artifact).manifest
    out = bundles[kind, platform, target]
    summary = json.loads((out / "bundle.json").read_text())
    parsed = (parse_kotlin if platform == "android" else parse_swift)((out / summary["wrapper"]).read_text())
    specs = method_specs(manifest)
    expected_methods = {"classifier": ["forward"],
                        "llm": ["prefill", "decode", "reset"] if target == "executorch" else ["prefill", "decode"]}
    assert list(specs) == expected_methods[kind]
    assert list(parsed["signatures"]) == list(specs)
    file_sig = file_signature(artifact, target)
    types = KOTLIN_TYPES if platform == "android" else SWIFT_TYPES
    for name, spec in specs.items():
        ins, outs = parsed["signatures"][name]
        assert ins == [(t.name, list(t.shape), t.dtype) for t in spec.inputs]
        assert outs == [(t.name, list(t.shape), t.dtype) for t in spec.outputs]
        # exactly one function runs this method, taking the manifest's inputs in order with the dtype's array type
        (fn,) = [f for f in parsed["functions"].values() if f["key"] == file_sig[name]["key"]]
        assert [ty for _, ty in fn["params"]] == [types[t.dtype] for t in spec.inputs]
        assert [ty for _, ty in fn["returns"]] == [types[t.dtype] for t in spec.outputs]
        assert len(fn["returns"]) == len(spec.outputs)
        if file_sig[name]["inputs"] is not None:  # .tflite / .mlpackage: the file's own tensor names, in order
            assert fn["io_inputs"] == file_sig[name]["inputs"]
            assert fn["io_outputs"] == file_sig[name]["outputs"]
    if target == "coreml" and kind == "classifier":  # Core ML renamed the tensors: the wrapper maps them
        assert parsed["functions"]["forward"]["io_inputs"] != ["image"]
    if target == "tflite" and kind == "llm":  # litert-torch narrowed int64 tokens to int32: cast at the boundary
        assert file_sig["prefill"]["in_dtypes"][:2] == ["int32", "int32"]
        assert "writeInt(toInt32(\"tokens\", tokens))" in (out / summary["wrapper"]).read_text()


@pytest.mark.parametrize("kind", ["classifier", "llm"])
@pytest.mark.parametrize("platform,target", CASES)
def test_bundle_files_dependency_and_readme(bundles, tiny_artifacts, llm_artifacts, kind, platform, target):
    from edgekit.artifact import load_artifact

    art = load_artifact((tiny_artifacts if kind == "classifier" else llm_artifacts)[target])
    out = bundles[kind, platform, target]
    summary = json.loads((out / "bundle.json").read_text())
    shipped = {f["path"]: f["sha256"] for f in art.manifest["files"] if f["path"] != "reference_io.npz"}
    assert sorted(Path(f).name for f in summary["files"]) == sorted(shipped)
    for rel in summary["files"]:
        assert sha256_of(out / rel) == shipped[Path(rel).name]
    if kind == "llm":
        assert "tokenizer.json" in shipped
    assert json.loads((out / "manifest.json").read_text()) == art.manifest
    readme = (out / "README.md").read_text()
    assert "Needs a phone" in readme and "## Add it to an app" in readme
    (dep,) = summary["dependencies"]
    et = art.manifest["producer"]["executorch"].split("+")[0]
    if target == "executorch" and platform == "android":
        assert (dep["name"], dep["version"]) == ("org.pytorch:executorch-android", et)
        assert f'implementation("org.pytorch:executorch-android:{et}")' in (out / "dependencies.gradle.kts").read_text()
    elif target == "executorch":
        assert dep["version"] == f"swiftpm-{et}" and "backend_xnnpack" in dep["products"]
        package = (out / "Package.swift").read_text()
        assert f'branch: "swiftpm-{et}"' in package and "-all_load" in package
    elif target == "tflite":
        assert (dep["name"], dep["version"]) == ("com.google.ai.edge.litert:litert", "2.3.0")
    else:
        assert dep["system"] == "system" and (".iOS(.v18)" if kind == "llm" else ".iOS(.v17)") in \
            (out / "Package.swift").read_text()
    assert dep["version"] is None or dep["version"] in readme
    if kind == "classifier":  # the reference I/O as raw little-endian arrays for the phone check
        import numpy as np

        index = json.loads((out / "reference" / "index.json").read_text())
        ins, outs = art.reference_io()
        for side, arrays in (("inputs", ins), ("outputs", outs)):
            for entry in index[side]:
                want = arrays[entry["name"]]
                got = np.fromfile(out / "reference" / entry["file"], dtype=np.dtype(entry["dtype"]).newbyteorder("<"))
                assert entry["shape"] == list(want.shape) and np.array_equal(got.reshape(want.shape), want)
        assert "## Check it on a phone" in readme and index["inputs"][0]["file"] in readme
    else:
        assert not (out / "reference").exists() and summary["reference"] is False
    if art.manifest.get("parity", {}).get("metrics"):
        assert f"cosine_min {art.manifest['parity']['metrics']['cosine_min']:.6g}" in readme


@pytest.mark.parametrize("platform,target,code", [
    ("ios", "onnx", "bundle_target_unsupported"), ("android", "onnx", "bundle_target_unsupported"),
    ("android", "coreml", "bundle_target_unsupported"), ("ios", "tflite", "bundle_target_unsupported"),
    ("windows", "executorch", "unknown_platform")])
def test_unrunnable_requests_name_the_value_the_choices_and_the_fix_and_write_nothing(
        tiny_artifacts, tmp_path, platform, target, code):
    out = tmp_path / "new" / "bundle"
    with pytest.raises(EdgekitError) as e:
        bundle(tiny_artifacts[target], platform, out)
    err = e.value
    assert err.code == code and err.fix
    if code == "unknown_platform":
        assert "'windows'" in err.message and "android, ios" in err.message
    else:
        suffix = {"onnx": ".onnx", "coreml": ".mlpackage", "tflite": ".tflite"}[target]
        assert suffix in err.message and target in err.message
        assert err.details["choices"] == (["executorch", "tflite"] if platform == "android" else ["coreml", "executorch"])
    assert not (tmp_path / "new").exists()


def test_a_changed_model_file_fails_the_sha256_check_and_leaves_nothing(tiny_artifacts, tmp_path):
    import shutil

    art = tmp_path / "art"
    shutil.copytree(tiny_artifacts["executorch"], art)
    data = bytearray((art / "model.pte").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (art / "model.pte").write_bytes(bytes(data))
    with pytest.raises(EdgekitError) as e:
        bundle(art, "android", tmp_path / "out" / "b")
    assert e.value.code == "bundle_sha256_mismatch" and e.value.details["file"] == "model.pte"
    assert not (tmp_path / "out").exists()


def test_an_existing_folder_that_is_not_a_bundle_is_never_replaced(tiny_artifacts, tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "MainActivity.kt").write_text("class MainActivity")
    with pytest.raises(EdgekitError) as e:
        bundle(tiny_artifacts["tflite"], "android", tmp_path / "app")
    assert e.value.code == "bundle_out_exists"
    assert (tmp_path / "app" / "MainActivity.kt").read_text() == "class MainActivity"
    first = bundle(tiny_artifacts["tflite"], "android", tmp_path / "b").path  # an earlier bundle is replaced
    assert bundle(tiny_artifacts["tflite"], "android", first, class_name="Digits").class_name == "Digits"
    assert (first / "src/main/java/edgekit/bundle/Digits.kt").is_file()
    assert not (first / "src/main/java/edgekit/bundle/ResnetTiny.kt").exists()


def test_cli_writes_a_bundle_and_prints_user_errors_without_traceback(tiny_artifacts, tmp_path, capsys):
    from edgekit.cli import main

    assert main(["bundle", str(tiny_artifacts["coreml"]), "--platform", "ios", "--out", str(tmp_path / "b")]) == 0
    printed = capsys.readouterr().out
    assert "Sources/ResnetTiny/ResnetTiny.swift" in printed and "CoreML" in printed
    assert main(["bundle", str(tiny_artifacts["onnx"]), "--platform", "ios", "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "[bundle_target_unsupported]" in err and "fix:" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()


def test_swift_compiler_check_is_skipped_with_its_reason():
    import shutil

    if shutil.which("swiftc") is None:
        pytest.skip("swiftc is not installed, and Debian 12 (bookworm) packages no Swift compiler (no swiftlang in apt); "
                    "the Swift wrappers are checked by parsing their source only")
    pytest.skip("swiftc found, but the wrappers import CoreML/ExecuTorch, which exist only on Apple platforms")


@pytest.fixture(scope="session")
def symbolic_artifact(tmp_path_factory) -> Path:
    """A hand-written .pte artifact whose signature has a symbolic dim (`seq`, shared by two inputs and the
    output) and an unknown one: the bundle reads only the manifest and the file's bytes, so no export is needed."""
    from edgekit.artifact import write_manifest

    d = tmp_path_factory.mktemp("symbolic") / "executorch"
    d.mkdir()
    (d / "model.pte").write_bytes(b"\x00" * 64 + b"XnnpackBackend" + b"\x00" * 64)
    sig = {"inputs": [{"name": "tokens", "shape": [1, "seq"], "dtype": "int64"},
                      {"name": "mask", "shape": ["seq"], "dtype": "float32"},
                      {"name": "features", "shape": [None, 3], "dtype": "float32"}],
           "outputs": [{"name": "scores", "shape": [1, "seq", 5], "dtype": "float32"}]}
    write_manifest(d, {"kind": "edgekit-artifact", "producer": {"executorch": "1.5.1"},
                       "model": {"name": "seq_tagger", "class": "Tagger", "parameters": 10},
                       "target": "executorch", "options": {"delegate": "xnnpack"}, "precision": "fp32",
                       "model_file": "model.pte", "signature": sig, "methods": {"forward": {"file": "model.pte", **sig}},
                       "compression": {"recipe": {"name": "palettize4", "hash": "0"}, "summary": {
                           "bytes_written": 96, "dense_bytes": 384}, "ledger": [
                           {"layer": "proj", "requested": {"kind": "palettize", "bits": 4}, "capability": "native",
                            "encoded": {"kind": "lut", "format": "packed"}, "expected_bytes": 96,
                            "bytes_written": 96, "dense_bytes": 384}]}})
    return d


@pytest.mark.parametrize("platform", ["android", "ios"])
def test_symbolic_dims_become_int_parameters_checked_at_run_time(symbolic_artifact, tmp_path, platform):
    out = bundle(symbolic_artifact, platform, tmp_path / platform)
    source = out.wrapper.read_text()
    parsed = (parse_kotlin if platform == "android" else parse_swift)(source)
    assert parsed["signatures"]["forward"] == (
        [("tokens", [1, None], "int64"), ("mask", [None], "float32"), ("features", [None, 3], "float32")],
        [("scores", [1, None, 5], "float32")])
    fn = parsed["functions"]["forward"]
    types = KOTLIN_TYPES if platform == "android" else SWIFT_TYPES
    # one parameter per symbol (seq is shared by tokens and mask) and one per unknown dim, after the tensors
    assert fn["params"] == [("tokens", types["int64"]), ("mask", types["float32"]), ("features", types["float32"]),
                            ("seq", "Int"), ("featuresDim0", "Int")]
    if platform == "android":
        assert "val tokensShape = longArrayOf(1L, seq.toLong())" in source
        assert "val featuresShape = longArrayOf(featuresDim0.toLong(), 3L)" in source
    else:
        assert "let tokensShape = [1, seq]" in source and "let featuresShape = [featuresDim0, 3]" in source
    readme = (out.path / "README.md").read_text()  # the compression ledger, summarised from the manifest
    assert "- compression: palettize4, 1 layers; 96 B written vs 384 B dense" in readme
    assert "| proj | palettize/4 | lut packed | 96 | 384 |" in readme


def test_bundling_pte_and_tflite_needs_no_torch(tiny_artifacts, tmp_path):
    """A developer's machine with only the device extra bundles .pte and .tflite (the .tflite names are read
    with ai-edge-litert; the .pte's delegate from its bytes)."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"
            "from edgekit.bundle import bundle\n"
            f"a = bundle({str(tiny_artifacts['executorch'])!r}, 'android', {str(tmp_path / 'a')!r})\n"
            f"b = bundle({str(tiny_artifacts['tflite'])!r}, 'android', {str(tmp_path / 'b')!r})\n"
            f"c = bundle({str(tiny_artifacts['executorch'])!r}, 'ios', {str(tmp_path / 'c')!r})\n"
            "assert b.summary['boundary_probed'] and 'torch' not in [m for m in sys.modules if sys.modules[m]]\n"
            "print(c.summary['dependencies'][0]['products'])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "['executorch', 'backend_xnnpack', 'kernels_optimized']"


@pytest.mark.parametrize("kind", ["classifier", "llm"])
def test_without_a_reader_the_tflite_names_are_assumed_said_so_and_match_the_file(
        tiny_artifacts, llm_artifacts, tmp_path, monkeypatch, kind):
    import edgekit.bundle.boundary as boundary

    art = (tiny_artifacts if kind == "classifier" else llm_artifacts)["tflite"]
    probed = json.loads((bundle(art, "android", tmp_path / "probed").path / "bundle.json").read_text())
    monkeypatch.setattr(boundary, "probe", lambda artifact: None)  # as where ai-edge-litert is not installed
    out = bundle(art, "android", tmp_path / "assumed").path
    assumed = json.loads((out / "bundle.json").read_text())
    assert probed["boundary_probed"] and not assumed["boundary_probed"]
    assert "ASSUMED" in (out / "README.md").read_text()
    # litert-torch's conventions (args_i/output_i, one serving_default signature, int64 taken as int32) hold
    assert assumed["methods"] == probed["methods"]
