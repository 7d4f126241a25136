"""Android: a Kotlin wrapper over the ExecuTorch Android API (.pte) or LiteRT's CompiledModel API (.tflite).

The generated class has one function per method of the artifact; its parameters and results
are the manifest's tensors as flat row-major Kotlin arrays of the manifest's dtype, each checked
against the manifest's shape before it reaches the runtime. Symbolic dimensions become ``Int``
parameters. Kept to Kotlin 1.3 syntax so that Debian's kotlinc can compile it in the tests.
"""

from __future__ import annotations

from edgekit.bundle.spec import Method, Plan, Tensor

# manifest dtype -> (Kotlin array type, ExecuTorch Tensor factory, ExecuTorch Tensor getter)
ET_TYPES = {
    "float32": ("FloatArray", "fromBlob", "dataAsFloatArray"),
    "float64": ("DoubleArray", "fromBlob", "dataAsDoubleArray"),
    "int64": ("LongArray", "fromBlob", "dataAsLongArray"),
    "int32": ("IntArray", "fromBlob", "dataAsIntArray"),
    "int8": ("ByteArray", "fromBlob", "dataAsByteArray"),
    "uint8": ("ByteArray", "fromBlobUnsigned", "dataAsUnsignedByteArray"),
}
# LiteRT TensorBuffer element types: boundary dtype -> (Kotlin array, write, read)
LITERT_TYPES = {
    "float32": ("FloatArray", "writeFloat", "readFloat"),
    "int32": ("IntArray", "writeInt", "readInt"),
    "int8": ("ByteArray", "writeInt8", "readInt8"),
    "bool": ("BooleanArray", "writeBoolean", "readBoolean"),
}
API_TYPES = {k: v[0] for k, v in ET_TYPES.items()} | {"bool": "BooleanArray"}
# boundary conversions the LiteRT wrapper does: (manifest dtype, file dtype) -> Kotlin helper
LITERT_CASTS = {("int64", "int32"): ("toInt32", "toInt64")}


def _shape_expr(t: Tensor) -> str:
    return "longArrayOf(" + ", ".join(f"{d.size}L" if d.size is not None else f"{d.param}.toLong()"
                                      for d in t.dims) + ")"


def _info(prefix: str, t: Tensor) -> str:
    """A TensorInfo literal: the manifest's name, shape (-1 for a run-time dim) and dtype."""
    dims = ", ".join(f"{d.size}L" if d.size is not None else "-1L" for d in t.dims)
    syms = ", ".join(f'"{d.symbol or d.param}"' if d.size is None else '""' for d in t.dims)
    return (f'        @JvmField val {prefix}_{_const(t.name)} = TensorInfo("{t.name}", longArrayOf({dims}), '
            f'"{t.dtype}", arrayOf<String>({syms}))')


def _const(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def _params(m: Method, types: dict[str, str]) -> str:
    ps = [f"{t.ident}: {types[t.dtype]}" for t in m.inputs] + [f"{p}: Int" for p in m.params]
    return ", ".join(ps)


def _doc(m: Method) -> list[str]:
    lines = ["    /**", f"     * Runs `{m.name}`. Arrays are flat, row-major."]
    for t in m.inputs:
        lines.append(f"     * @param {t.ident} `{t.name}`: {t.dtype} {t.shape}")
    for p in m.params:
        lines.append(f"     * @param {p} size of the symbolic dimension `{p}`")
    lines.append("     */")
    return lines


def _outputs_class(m: Method, kinds: dict) -> list[str]:
    cls = m.outputs_class
    lines = [f"    /** Outputs of [{m.ident}]. */", f"    class {cls}("]
    fields = []
    for t in m.outputs:
        kind = f" ({kinds[t.name]})" if t.name in kinds else ""
        fields.append(f"        /** `{t.name}`: {t.dtype} {t.shape}{kind} */\n"
                      f"        @JvmField val {t.ident}: {API_TYPES[t.dtype]}")
    lines.append(",\n".join(fields))
    lines.append("    )")
    return lines


def _check_inputs(m: Method) -> list[str]:
    lines = []
    for t in m.inputs:
        lines.append(f"        val {t.ident}Shape = {_shape_expr(t)}")
        lines.append(f"        checkSize({_prefix(m)}_{_const(t.name)}, {t.ident}.size, {t.ident}Shape)")
    return lines


def _prefix(m: Method) -> str:
    return _const(m.name)


def _executorch_method(plan: Plan, m: Method, kinds: dict) -> list[str]:
    m.check_dtypes(plan, ET_TYPES, "Android")
    cls = m.outputs_class
    lines = _outputs_class(m, kinds) + [""] + _doc(m)
    lines.append(f"    fun {m.ident}({_params(m, API_TYPES)}): {cls} {{")
    lines += _check_inputs(m)
    args = ", ".join(f"EValue.from(Tensor.{ET_TYPES[t.dtype][1]}({t.ident}, {t.ident}Shape))" for t in m.inputs)
    lines.append(f'        val out = module.execute("{m.io_key}"{", " + args if args else ""})')
    lines.append(f'        checkCount("{m.name}", out.size, {len(m.outputs)})')
    for i, t in enumerate(m.outputs):
        lines.append(f"        val {t.ident} = out[{i}].toTensor()")
        lines.append(f"        checkShape({_prefix(m)}_{_const(t.name)}, {t.ident}.shape())")
    fields = ", ".join(f"{t.ident}.{ET_TYPES[t.dtype][2]}" for t in m.outputs)
    lines += [f"        return {cls}({fields})", "    }"]
    return lines


def _litert_method(plan: Plan, m: Method, kinds: dict) -> list[str]:
    m.check_dtypes(plan, LITERT_TYPES, "Android", accepts=lambda t: t.io_dtype in LITERT_TYPES and (
        t.dtype == t.io_dtype or (t.dtype, t.io_dtype) in LITERT_CASTS))
    cls = m.outputs_class
    lines = _outputs_class(m, kinds) + [""] + _doc(m)
    lines.append(f"    fun {m.ident}({_params(m, API_TYPES)}): {cls} {{")
    lines += _check_inputs(m)
    key = f'"{m.io_key}"'
    lines.append("        val inputs = LinkedHashMap<String, TensorBuffer>()")
    lines.append("        val outputs = LinkedHashMap<String, TensorBuffer>()")
    lines.append("        try {")
    for t in m.inputs:
        data = t.ident
        if t.dtype != t.io_dtype:  # the converter narrowed the input: cast at the boundary, checked
            data = f'{LITERT_CASTS[(t.dtype, t.io_dtype)][0]}("{t.name}", {t.ident})'
        lines.append(f'            inputs["{t.io_name}"] = model.createInputBuffer("{t.io_name}", {key})')
        lines.append(f'            inputs.getValue("{t.io_name}").{LITERT_TYPES[t.io_dtype][1]}({data})')
    for t in m.outputs:
        lines.append(f'            outputs["{t.io_name}"] = model.createOutputBuffer("{t.io_name}", {key})')
    lines.append(f"            model.run(inputs, outputs, {key})")
    for t in m.outputs:
        read = f'outputs.getValue("{t.io_name}").{LITERT_TYPES[t.io_dtype][2]}()'
        if t.dtype != t.io_dtype:
            read = f"{LITERT_CASTS[(t.dtype, t.io_dtype)][1]}({read})"
        lines.append(f"            val {t.ident} = {read}")
        if t.static:
            lines.append(f"            checkSize({_prefix(m)}_{_const(t.name)}, {t.ident}.size, "
                         f"{_prefix(m)}_{_const(t.name)}.shape)")
    fields = ", ".join(t.ident for t in m.outputs)
    lines += [f"            return {cls}({fields})", "        } finally {",
              "            for (b in inputs.values) b.close()", "            for (b in outputs.values) b.close()",
              "        }", "    }"]
    return lines


HELPERS = '''
    /** A tensor of the manifest's signature: name, shape (-1 where a dimension is given at run time), dtype. */
    class TensorInfo(@JvmField val name: String, @JvmField val shape: LongArray, @JvmField val dtype: String,
                     @JvmField val symbols: Array<String>)

    /** Inputs and outputs of one method, as the manifest lists them. */
    class Signature(@JvmField val inputs: List<TensorInfo>, @JvmField val outputs: List<TensorInfo>)
'''

STATIC_HELPERS = '''
        private fun checkSize(info: TensorInfo, size: Int, shape: LongArray) {
            var n = 1L
            for (d in shape) n *= d
            require(size.toLong() == n) {
                "${info.name}: expected ${info.dtype} of shape ${shape.contentToString()} ($n values), got $size"
            }
        }

        private fun checkShape(info: TensorInfo, shape: LongArray) {
            var ok = shape.size == info.shape.size
            for (i in info.shape.indices) if (ok && info.shape[i] >= 0 && info.shape[i] != shape[i]) ok = false
            check(ok) { "${info.name}: the runtime returned shape ${shape.contentToString()}, the manifest says " +
                        "${info.shape.contentToString()}" }
        }

        private fun checkCount(method: String, got: Int, expected: Int) {
            check(got == expected) { "$method: the runtime returned $got outputs, the manifest lists $expected" }
        }
'''

CAST_HELPERS = '''
        /** The converter narrowed this int64 input to int32: values outside int32 are an error, not wrapped. */
        private fun toInt32(name: String, values: LongArray): IntArray = IntArray(values.size) { i ->
            val v = values[i]
            require(v >= Int.MIN_VALUE && v <= Int.MAX_VALUE) { "$name[$i] = $v does not fit the model's int32 input" }
            v.toInt()
        }

        private fun toInt64(values: IntArray): LongArray = LongArray(values.size) { i -> values[i].toLong() }
'''


def kotlin_source(plan: Plan, package: str) -> str:
    """The wrapper's Kotlin source."""
    m0 = plan.artifact.manifest
    kinds = (m0.get("signature") or {}).get("output_kinds") or {}
    et = plan.target == "executorch"
    body: list[str] = []
    for m in plan.methods:
        body += [""] + (_executorch_method(plan, m, kinds) if et else _litert_method(plan, m, kinds))
    imports = (["org.pytorch.executorch.EValue", "org.pytorch.executorch.Module", "org.pytorch.executorch.Tensor"]
               if et else ["com.google.ai.edge.litert.Accelerator", "com.google.ai.edge.litert.CompiledModel",
                           "com.google.ai.edge.litert.TensorBuffer"])
    handle = "module: Module" if et else "model: CompiledModel"
    runtime = "ExecuTorch (org.pytorch.executorch)" if et else "LiteRT CompiledModel (com.google.ai.edge.litert)"
    load = ("ExecuTorch's Module.load(path)" if et else "CompiledModel.create(path, CPU)")
    sha = next(f["sha256"] for f in m0["files"] if f["path"] == m0["model_file"])
    infos, sigs = [], []
    for m in plan.methods:
        infos += [_info(_prefix(m), t) for t in (*m.inputs, *m.outputs)]
        ins = ", ".join(f"{_prefix(m)}_{_const(t.name)}" for t in m.inputs)
        outs = ", ".join(f"{_prefix(m)}_{_const(t.name)}" for t in m.outputs)
        sigs.append(f'            "{m.name}" to Signature(listOf<TensorInfo>({ins}), listOf<TensorInfo>({outs}))')
    needs_cast = any(t.dtype != t.io_dtype for m in plan.methods for t in (*m.inputs, *m.outputs)) and not et
    lines = [
        f"// Generated by `edgekit bundle` from manifest.json of {m0['model']['name']} "
        f"({plan.target}, {m0['model_file']} sha256 {sha[:16]}...).",
        "// Names, shapes and dtypes are the manifest's: regenerate the bundle rather than editing this file.",
        f"package {package}", "", "import java.io.Closeable", *[f"import {i}" for i in imports], "",
        f"/** {m0['model']['name']} ({m0['model'].get('class', '?')}, {m0['model'].get('parameters', 0):,} "
        f"parameters) on {runtime}. Methods: {', '.join(m.name for m in plan.methods)}. */",
        f"class {plan.class_name} private constructor(private val {handle}) : Closeable {{",
        HELPERS.rstrip("\n"), *body, "",
        "    override fun close() {", "        " + ("module.destroy()" if et else "model.close()"), "    }", "",
        "    companion object {",
        f'        const val MODEL_FILE = "{m0["model_file"]}"',
        f'        const val MODEL_SHA256 = "{sha}"',
        *infos,
        "        /** Every method's signature, by the manifest's method name. */",
        "        @JvmField val SIGNATURES: Map<String, Signature> = linkedMapOf(",
        ",\n".join(sigs), "        )", "",
        f"        /** Opens the model file at [path] (an absolute path on the device) with {load}. */",
        "        @JvmStatic",
        f"        fun load(path: String): {plan.class_name} = {plan.class_name}(" +
        ("Module.load(path))" if et else "CompiledModel.create(path, CompiledModel.Options(Accelerator.CPU)))"),
        STATIC_HELPERS.rstrip("\n"), *([CAST_HELPERS.rstrip("\n")] if needs_cast else []),
        "    }", "}", ""]
    return "\n".join(lines)


def gradle_snippet(deps) -> str:
    lines = ["// app/build.gradle.kts: the runtime this artifact was exported for", "dependencies {"]
    for d in deps:
        lines.append(f'    implementation("{d.coordinate}")')
    lines.append("}")
    return "\n".join(lines) + "\n"
