"""The generated Kotlin wrappers compile with Debian's kotlinc and run on a JVM against STUBS of the Android
runtime APIs, which record what the wrapper passes: every input reaches the runtime with the manifest's shape
and dtype (or the .tflite file's own name and int32 type), and every output lands in the manifest's field.

The stubs below are stand-ins of the API surface only (same packages, class names and the signatures the
wrappers call: ExecuTorch Android's Module/EValue/Tensor, LiteRT's CompiledModel/TensorBuffer/Accelerator).
They run no model. That the real AARs load and run the model needs a phone (the bundle README says so).
kotlinc is installed by `make kotlin` when run as root (as `make cross` does for the NEON tests); without
it the test is skipped with that reason.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import needs_export
from edgekit.artifact import load_artifact, method_specs
from test_bundle import bundles, file_signature, llm_artifacts, symbolic_artifact  # noqa: F401  (fixtures)

pytestmark = needs_export

# ---- STUB of the ExecuTorch Android API surface (org.pytorch.executorch), recording calls ----
EXECUTORCH_STUBS = {
    "org/pytorch/executorch/Tensor.java": """
package org.pytorch.executorch;
/** STUB of org.pytorch.executorch.Tensor: the factories and getters the wrappers use; no native code. */
public class Tensor {
  final long[] shape; final String dtype; final Object data;
  Tensor(Object data, long[] shape, String dtype) { this.data = data; this.shape = shape.clone(); this.dtype = dtype; }
  public static Tensor fromBlob(float[] data, long[] shape) { return new Tensor(data, shape, "float32"); }
  public static Tensor fromBlob(double[] data, long[] shape) { return new Tensor(data, shape, "float64"); }
  public static Tensor fromBlob(long[] data, long[] shape) { return new Tensor(data, shape, "int64"); }
  public static Tensor fromBlob(int[] data, long[] shape) { return new Tensor(data, shape, "int32"); }
  public static Tensor fromBlob(byte[] data, long[] shape) { return new Tensor(data, shape, "int8"); }
  public static Tensor fromBlobUnsigned(byte[] data, long[] shape) { return new Tensor(data, shape, "uint8"); }
  public long[] shape() { return shape.clone(); }
  private Object as(String want) {
    if (!dtype.equals(want)) throw new IllegalStateException("Tensor of type " + dtype + " read as " + want);
    return data;
  }
  public float[] getDataAsFloatArray() { return (float[]) as("float32"); }
  public double[] getDataAsDoubleArray() { return (double[]) as("float64"); }
  public long[] getDataAsLongArray() { return (long[]) as("int64"); }
  public int[] getDataAsIntArray() { return (int[]) as("int32"); }
  public byte[] getDataAsByteArray() { return (byte[]) as("int8"); }
  public byte[] getDataAsUnsignedByteArray() { return (byte[]) as("uint8"); }
}
""",
    "org/pytorch/executorch/EValue.java": """
package org.pytorch.executorch;
/** STUB of org.pytorch.executorch.EValue (tensor values only). */
public class EValue {
  final Tensor tensor;
  private EValue(Tensor t) { tensor = t; }
  public static EValue from(Tensor tensor) { return new EValue(tensor); }
  public Tensor toTensor() { return tensor; }
}
""",
    "org/pytorch/executorch/Module.java": """
package org.pytorch.executorch;
import java.util.*;
/** STUB of org.pytorch.executorch.Module: execute() records its inputs and returns tensors set up by the test. */
public class Module {
  /** test-only: method -> outputs to return; the log of calls. */
  public static final Map<String, List<Tensor>> OUTPUTS = new HashMap<>();
  public static final List<String> LOG = new ArrayList<>();
  private Module() {}
  public static Module load(String modelPath) { return new Module(); }
  public EValue[] forward(EValue... inputs) { return execute("forward", inputs); }
  public EValue[] execute(String methodName, EValue... inputs) {
    for (EValue v : inputs) LOG.add("exec " + methodName + " " + v.tensor.dtype + " " + Arrays.toString(v.tensor.shape)
        + " " + java.lang.reflect.Array.get(v.tensor.data, 0));
    List<Tensor> outs = OUTPUTS.get(methodName);
    if (outs == null) throw new RuntimeException("no method " + methodName);
    EValue[] r = new EValue[outs.size()];
    for (int i = 0; i < r.length; i++) r[i] = EValue.from(outs.get(i));
    return r;
  }
  public void destroy() {}
}
""",
}

# ---- STUB of the LiteRT Android API surface (com.google.ai.edge.litert), recording calls ----
LITERT_STUBS = {
    "com/google/ai/edge/litert/Accelerator.java": """
package com.google.ai.edge.litert;
/** STUB of com.google.ai.edge.litert.Accelerator. */
public enum Accelerator { NONE, CPU, GPU, NPU }
""",
    "com/google/ai/edge/litert/TensorBuffer.java": """
package com.google.ai.edge.litert;
import java.util.*;
/** STUB of com.google.ai.edge.litert.TensorBuffer: writes are logged, reads return what the test set up. */
public class TensorBuffer implements AutoCloseable {
  /** test-only: "signature/name" -> array to read back; the log. */
  public static final Map<String, Object> READS = new HashMap<>();
  public static final List<String> LOG = new ArrayList<>();
  final String key;
  TensorBuffer(String key) { this.key = key; }
  private void log(String type, Object data) {
    LOG.add("write " + key + " " + type + " " + java.lang.reflect.Array.getLength(data) + " "
        + java.lang.reflect.Array.get(data, 0));
  }
  public void writeInt(int[] data) { log("int32", data); }
  public void writeFloat(float[] data) { log("float32", data); }
  public void writeInt8(byte[] data) { log("int8", data); }
  public void writeBoolean(boolean[] data) { log("bool", data); }
  private Object read(Class<?> c) {
    Object o = READS.get(key);
    if (o == null || o.getClass() != c) throw new IllegalStateException("read " + key + " as " + c);
    return o;
  }
  public int[] readInt() { return (int[]) read(int[].class); }
  public float[] readFloat() { return (float[]) read(float[].class); }
  public byte[] readInt8() { return (byte[]) read(byte[].class); }
  public boolean[] readBoolean() { return (boolean[]) read(boolean[].class); }
  public void close() {}
}
""",
    "com/google/ai/edge/litert/CompiledModel.java": """
package com.google.ai.edge.litert;
import java.util.*;
/** STUB of com.google.ai.edge.litert.CompiledModel (the overloads the wrappers call). */
public class CompiledModel implements AutoCloseable {
  public static class Options { public Options(Accelerator... accelerators) {} }
  private CompiledModel() {}
  public static CompiledModel create(String filePath, Options options) { return new CompiledModel(); }
  public TensorBuffer createInputBuffer(String inputName, String signature) { return new TensorBuffer(signature + "/" + inputName); }
  public TensorBuffer createOutputBuffer(String outputName, String signature) { return new TensorBuffer(signature + "/" + outputName); }
  public void run(Map<String, TensorBuffer> inputs, Map<String, TensorBuffer> outputs, String signature) {
    TensorBuffer.LOG.add("run " + signature + " " + new TreeSet<>(inputs.keySet()) + " " + new TreeSet<>(outputs.keySet()));
  }
  public void close() {}
}
""",
}

# The driver: sets up the stubs' outputs from a spec the test writes from the manifest (not from the wrapper),
# calls each wrapper function with input k filled with k+1, prints what came back, and checks that a wrongly
# sized input is refused before it reaches the runtime.
DRIVER = """
import java.lang.reflect.*;
import java.nio.file.*;
import java.util.*;

public class Driver {
  static Object array(String type, int n, double fill) {
    switch (type) {
      case "float32": { float[] a = new float[n]; Arrays.fill(a, (float) fill); return a; }
      case "float64": { double[] a = new double[n]; Arrays.fill(a, fill); return a; }
      case "int64": { long[] a = new long[n]; Arrays.fill(a, (long) fill); return a; }
      case "int32": { int[] a = new int[n]; Arrays.fill(a, (int) fill); return a; }
      default: { byte[] a = new byte[n]; Arrays.fill(a, (byte) fill); return a; }
    }
  }
  static long[] shape(String csv) {
    return csv.isEmpty() ? new long[0] : Arrays.stream(csv.split(",")).mapToLong(Long::parseLong).toArray();
  }
  static int numel(long[] s) { long n = 1; for (long d : s) n *= d; return (int) n; }

  public static void main(String[] args) throws Exception {
    Class<?> cls = null; Object wrapper = null; String fn = null; List<String[]> ins = new ArrayList<>();
    List<String[]> lines = new ArrayList<>();
    for (String l : Files.readAllLines(Paths.get(args[0]))) lines.add(l.split("\\t", -1));
    lines.add(new String[]{"end"});
    for (String[] f : lines) {
      if ((f[0].equals("call") || f[0].equals("wrapper") || f[0].equals("end")) && fn != null) {
        call(cls, wrapper, fn, ins); fn = null; ins.clear();
      }
      switch (f[0]) {
        case "wrapper":
          cls = Class.forName(f[1]);
          wrapper = cls.getMethod("load", String.class).invoke(null, "/data/local/tmp/model");
          break;
        case "et-out": {  // method, index, dtype, shape
          org.pytorch.executorch.Module.OUTPUTS.computeIfAbsent(f[1], k -> new ArrayList<>());
          long[] s = shape(f[4]);
          Object data = array(f[3], numel(s), Integer.parseInt(f[2]) + 1);
          Method m = org.pytorch.executorch.Tensor.class.getMethod(f[3].equals("uint8") ? "fromBlobUnsigned" : "fromBlob",
              data.getClass(), long[].class);
          org.pytorch.executorch.Module.OUTPUTS.get(f[1]).add((org.pytorch.executorch.Tensor) m.invoke(null, data, s));
          break;
        }
        case "lt-out":  // signature/name, fill, file dtype, numel
          com.google.ai.edge.litert.TensorBuffer.READS.put(f[1], array(f[3], Integer.parseInt(f[4]), Integer.parseInt(f[2]) + 1));
          break;
        case "call": fn = f[1]; break;
        case "in": ins.add(f); break;
        case "dim": ins.add(f); break;
      }
    }
    for (String l : org.pytorch.executorch.Module.LOG) System.out.println("LOG " + l);
    for (String l : com.google.ai.edge.litert.TensorBuffer.LOG) System.out.println("LOG " + l);
  }

  static void call(Class<?> cls, Object wrapper, String fn, List<String[]> ins) throws Exception {
    Method m = null;
    for (Method c : cls.getMethods()) if (c.getName().equals(fn) && c.getParameterCount() == ins.size()) m = c;
    Object[] a = new Object[ins.size()];
    for (int i = 0; i < a.length; i++) {  // tensors, then the sizes of symbolic dims
      a[i] = ins.get(i)[0].equals("dim") ? (Object) Integer.valueOf(ins.get(i)[1])
          : array(ins.get(i)[1], Integer.parseInt(ins.get(i)[2]), i + 1);
    }
    Object result = m.invoke(wrapper, a);
    for (Field f : result.getClass().getFields()) {
      Object v = f.get(result);
      System.out.println("OUT " + fn + " " + f.getName() + " " + Array.getLength(v) + " " + Array.get(v, 0));
    }
    a[0] = array(ins.get(0)[1], Integer.parseInt(ins.get(0)[2]) + 1, 1);  // one value too many
    try { m.invoke(wrapper, a); System.out.println("ACCEPTED " + fn); }
    catch (InvocationTargetException e) {
      System.out.println("REFUSED " + fn + " " + e.getCause().getClass().getSimpleName() + " " + e.getCause().getMessage());
    }
  }
}
"""


def _kotlinc() -> str:
    path = shutil.which("kotlinc")
    if path is None:
        pytest.skip("kotlinc not installed (Debian package `kotlin`; `make kotlin` installs it when run as root)")
    if shutil.which("javac") is None:
        pytest.skip("javac not installed (Debian package `default-jdk-headless`)")
    return path


def _concrete(summary: dict, name: str, spec) -> tuple[dict, list, list]:
    """Sizes for a method's symbolic/unknown dims (param k gets k + 2) and the tensors' concrete shapes."""
    params = summary["methods"][name]["params"]
    values = {p: k + 2 for k, p in enumerate(params)}

    def shape(t, ident):
        return [d if isinstance(d, int) else values[d if isinstance(d, str) else f"{ident}Dim{j}"]
                for j, d in enumerate(t.shape)]
    s = summary["methods"][name]
    return (values, [shape(t, x["ident"]) for t, x in zip(spec.inputs, s["inputs"])],
            [shape(t, x["ident"]) for t, x in zip(spec.outputs, s["outputs"])])


def _spec(bundle_dir: Path, artifact: Path, target: str) -> tuple[list[str], dict]:
    """Driver lines for one wrapper, written from the manifest and the model file (not from the wrapper)."""
    summary = json.loads((bundle_dir / "bundle.json").read_text())
    manifest = load_artifact(artifact).manifest
    pkg = summary["wrapper"].removeprefix("src/main/java/").rsplit("/", 1)[0].replace("/", ".")
    lines = [f"wrapper\t{pkg}.{summary['class_name']}"]
    file_sig = file_signature(artifact, target) if target == "tflite" else {}
    for name, spec in method_specs(manifest).items():
        fn = summary["methods"][name]["function"]
        values, in_shapes, out_shapes = _concrete(summary, name, spec)
        for i, t in enumerate(spec.outputs):
            shape = ",".join(str(d) for d in out_shapes[i])
            if target == "executorch":
                lines.append(f"et-out\t{name}\t{i}\t{t.dtype}\t{shape}")
            else:
                key = file_sig[name]["key"]
                io = file_sig[name]["outputs"][i]
                n = 1
                for d in t.shape:
                    n *= d
                lines.append(f"lt-out\t{key}/{io}\t{i}\t{'int32' if t.dtype == 'int64' else t.dtype}\t{n}")
        lines.append(f"call\t{fn}")
        for t, sh in zip(spec.inputs, in_shapes):
            n = 1
            for d in sh:
                n *= d
            lines.append(f"in\t{t.dtype}\t{n}")
        lines += [f"dim\t{v}" for v in values.values()]
    return lines, summary


@pytest.mark.timeout(900)
def test_kotlin_wrappers_compile_and_pass_the_manifests_tensors_to_the_runtime(bundles, tiny_artifacts,
                                                                               llm_artifacts, symbolic_artifact,
                                                                               tmp_path):
    from edgekit.bundle import bundle
    kotlinc = _kotlinc()
    stubs = tmp_path / "stubs"
    for rel, text in {**EXECUTORCH_STUBS, **LITERT_STUBS}.items():
        (stubs / rel).parent.mkdir(parents=True, exist_ok=True)
        (stubs / rel).write_text(text)
    classes = tmp_path / "stub-classes"
    subprocess.run(["javac", "-d", str(classes), *map(str, stubs.rglob("*.java"))], check=True)
    cases = [(kind, target) for kind in ("classifier", "llm") for target in ("executorch", "tflite")]
    dirs = {case: bundles[case[0], "android", case[1]] for case in cases}
    dirs["symbolic", "executorch"] = bundle(symbolic_artifact, "android", tmp_path / "symbolic",
                                            package="bundletest.symbolic").path
    arts = {(k, t): (tiny_artifacts if k == "classifier" else llm_artifacts)[t] for k, t in cases}
    arts["symbolic", "executorch"] = symbolic_artifact
    sources = [d / json.loads((d / "bundle.json").read_text())["wrapper"] for d in dirs.values()]
    jar = tmp_path / "wrappers.jar"
    # one kotlinc run for all five wrappers (their packages differ): kotlinc's start-up dominates
    r = subprocess.run([kotlinc, "-cp", str(classes), "-include-runtime", "-d", str(jar), *map(str, sources)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not re.search(r"\.kt:\d+:\d+: warning:", r.stderr), r.stderr  # (the JVM's own notes are not Kotlin's)
    (tmp_path / "Driver.java").write_text(DRIVER)
    cp = f"{jar}:{classes}:{tmp_path}"
    subprocess.run(["javac", "-cp", cp, "-d", str(tmp_path), str(tmp_path / "Driver.java")], check=True)
    for (kind, target), artifact in arts.items():
        lines, summary = _spec(dirs[kind, target], artifact, target)
        spec_file = tmp_path / f"{kind}-{target}.tsv"
        spec_file.write_text("\n".join(lines) + "\n")
        run = subprocess.run(["java", "-cp", cp, "Driver", str(spec_file)], capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        _check_run(run.stdout.splitlines(), load_artifact(artifact).manifest, summary, artifact, target)


def _check_run(out: list[str], manifest: dict, summary: dict, artifact: Path, target: str) -> None:
    log = [line[4:].split(" ", 2) for line in out if line.startswith("LOG ")]
    results = [line.split(" ") for line in out if line.startswith("OUT ")]
    file_sig = file_signature(artifact, target) if target == "tflite" else {}
    for name, spec in method_specs(manifest).items():
        fn = summary["methods"][name]["function"]
        _, in_shapes, out_shapes = _concrete(summary, name, spec)
        if target == "executorch":  # each input: the manifest's dtype and shape, in order (input k holds k+1)
            calls = [rest for verb, method, rest in log if verb == "exec" and method == name]
            expected = [f"{t.dtype} [{', '.join(str(d) for d in sh)}] " for t, sh in zip(spec.inputs, in_shapes)]
            assert [c[:len(e)] for c, e in zip(calls, expected)] == expected
            assert [float(c.rsplit(" ", 1)[1]) for c in calls] == [k + 1 for k in range(len(spec.inputs))]
        else:  # each input written to the file's tensor of that position, as the file's type (int64 -> int32)
            key = file_sig[name]["key"]
            writes = {k: rest.split(" ") for verb, k, rest in log if verb == "write" and k.startswith(key + "/")}
            for k, t in enumerate(spec.inputs):
                io = file_sig[name]["inputs"][k]
                n = 1
                for d in t.shape:
                    n *= d
                w = writes[f"{key}/{io}"]
                assert (w[0], int(w[1]), float(w[2])) == (file_sig[name]["in_dtypes"][k], n, float(k + 1))
        # each output field (in the manifest's order) got the runtime's output of that position (filled i+1)
        got = [(r[2], int(r[3]), float(r[4])) for r in results if r[1] == fn]
        idents = [o["ident"] for o in summary["methods"][name]["outputs"]]
        by_field = {g[0]: g for g in got}
        for i, t in enumerate(spec.outputs):
            n = 1
            for d in out_shapes[i]:
                n *= d
            assert by_field[idents[i]][1:] == (n, float(i + 1)), (name, t.name)
        assert any(line.startswith(f"REFUSED {fn} IllegalArgumentException {spec.inputs[0].name}: expected")
                   for line in out), out
