"""The bundle's README: the steps to drop it into an app, its API, and what only a phone can check."""

from __future__ import annotations

from edgekit.bundle.deps import Dependency, uses_edgekit_kernels
from edgekit.bundle.spec import Plan
from edgekit.targets import target_info


def _api_table(plan: Plan) -> list[str]:
    rows = ["| method | inputs (manifest name: dtype shape) | outputs |", "|---|---|---|"]
    for m in plan.methods:
        ins = "; ".join(f"`{t.name}`: {t.dtype} {t.shape}" for t in m.inputs) or "-"
        outs = "; ".join(f"`{t.name}`: {t.dtype} {t.shape}" for t in m.outputs) or "-"
        rows.append(f"| `{m.ident}` (`{m.name}`) | {ins} | {outs} |")
    return rows


def _boundary_lines(plan: Plan) -> list[str]:
    lines = []
    for m in plan.methods:
        for t in (*m.inputs, *m.outputs):
            if t.io_name != t.name or t.io_dtype != t.dtype:
                lines.append(f"- `{m.name}` `{t.name}` ({t.dtype}) is `{t.io_name}` ({t.io_dtype}) in the model file")
    if not lines:
        return []
    head = ("The model file's own names and types differ from the manifest's; the wrapper converts at the boundary "
            + ("(read from the file when this bundle was made):" if plan.probed else
               "(ASSUMED from the converter's conventions: the reader was not installed where this bundle was made; "
               "install the `device` extra for .tflite or the `export` extra for .mlpackage and bundle again):"))
    return ["", head, *lines]


def _parity_lines(manifest: dict) -> list[str]:
    p = manifest.get("parity") or {}
    if not p:
        return ["- parity: none recorded in the manifest (exported without a parity check)"]
    if p.get("mode") == "structural":
        return [f"- parity: structural only ({p.get('reason') or 'names, shapes, ops checked'}); ok = {p.get('ok')}"]
    m = p.get("metrics") or {}
    parts = [f"{k} {m[k]:.6g}" for k in ("cosine_min", "max_abs_err", "top1", "psnr_db") if isinstance(m.get(k), float)]
    return [f"- parity (artifact vs PyTorch on {m.get('samples', '?')} {p.get('input_source', '')} samples, on the "
            f"exporting machine): {', '.join(parts) or 'see manifest.json'}; ok = {p.get('ok')}"]


def _ledger_lines(manifest: dict) -> list[str]:
    """The compression ledger (per layer: what was asked, what the file stores, bytes), first rows only."""
    comp = manifest.get("compression") or {}
    recipe, ledger, summary = comp.get("recipe"), comp.get("ledger") or [], comp.get("summary") or {}
    if not recipe and not ledger:
        return ["- compression: none"]
    lines = [f"- compression: {recipe['name'] if recipe else manifest.get('weights', '?')}, {len(ledger)} layers"
             + (f"; {summary['bytes_written']:,} B written vs {summary['dense_bytes']:,} B dense"
                if "bytes_written" in summary and "dense_bytes" in summary else "")]
    if ledger and all(isinstance(r.get("encoded"), dict) and "layer" in r for r in ledger):
        lines += ["", "| layer | requested | stored as | bytes written | dense bytes |", "|---|---|---|---|---|"]
        for r in ledger[:12]:
            req = r.get("requested") or {}
            lines.append(f"| {r['layer']} | {req.get('kind', '?')}/{req.get('bits') or '-'} | "
                         f"{r['encoded'].get('kind', '?')} {r['encoded'].get('format', '')} | "
                         f"{r.get('bytes_written', '?')} | {r.get('dense_bytes', '?')} |")
        if len(ledger) > 12:
            lines.append(f"| ... {len(ledger) - 12} more rows in manifest.json | | | | |")
        lines.append("")
    return lines


def _android_steps(plan: Plan, deps: list[Dependency], package: str, files: list[str]) -> list[str]:
    model = plan.artifact.manifest["model_file"]
    src = f"src/main/java/{package.replace('.', '/')}/{plan.class_name}.kt"
    return [
        "## Add it to an app",
        "",
        f"1. Copy `{src}` into your app module's `src/main/java/...` (package `{package}`), and "
        f"{', '.join(f'`src/main/assets/{f}`' for f in files)} into `src/main/assets/`.",
        "2. Add the runtime to `app/build.gradle.kts` (from `dependencies.gradle.kts` here):",
        "", "```kotlin", *[f'implementation("{d.coordinate}")' for d in deps], "```", "",
        "3. The runtime opens a file path, not an asset: copy the asset to `filesDir` once, then load:",
        "", "```kotlin",
        f'val file = java.io.File(context.filesDir, "{model}")',
        f'if (!file.exists()) context.assets.open("{model}").use {{ i -> file.outputStream().use {{ i.copyTo(it) }} }}',
        f"val model = {plan.class_name}.load(file.absolutePath)",
        *_call_example(plan, kotlin=True),
        "model.close()", "```",
        "4. Run it off the main thread (a coroutine on `Dispatchers.Default`): a call blocks until the model returns.",
    ]


def _ios_steps(plan: Plan, deps: list[Dependency]) -> list[str]:
    name = plan.class_name
    coreml = plan.target == "coreml"
    dep = [] if coreml else [
        f"2. The package depends on ExecuTorch's Swift package (`{deps[0].name}`, branch `{deps[0].version}`), "
        f"products {', '.join(f'`{p}`' for p in deps[0].products)}, and links with `-all_load` so that backends "
        "and kernels register. In an Xcode project instead: File > Add Package Dependencies, the same URL and "
        "branch, link those products, and add `-all_load` to Other Linker Flags."]
    load = (f"let url = Bundle.module.url(forResource: \"model\", withExtension: \"mlmodelc\")!\n"
            f"let model = try {name}(contentsOf: url)" if coreml else
            f"let path = Bundle.module.path(forResource: \"model\", ofType: \"pte\")!\n"
            f"let model = try {name}(filePath: path)")
    return [
        "## Add it to an app",
        "",
        f"1. Add this folder as a local Swift package (Xcode: File > Add Package Dependencies > Add Local...), and "
        f"add the library `{name}` to your app target. `Package.swift` declares the model file as a resource"
        + (" (SwiftPM compiles the .mlpackage to .mlmodelc)." if coreml else "."),
        *dep,
        f"{3 if dep else 2}. Load and call it (off the main thread: a call blocks until the model returns):",
        "", "```swift", f"import {name}", load, *_call_example(plan, kotlin=False), "```",
    ]


def _call_example(plan: Plan, kotlin: bool) -> list[str]:
    m = plan.methods[0]
    args = []
    for t in m.inputs:
        n = t.numel()
        size = str(n) if n is not None else "/* product of the shape */ 0"
        if kotlin:
            ctor = {"float32": "FloatArray", "float64": "DoubleArray", "int64": "LongArray",
                    "int32": "IntArray"}.get(t.dtype, "ByteArray")
            args.append(f"{ctor}({size})")
        else:
            ty = {"float32": "Float", "float64": "Double", "int64": "Int64", "int32": "Int32"}.get(t.dtype, "UInt8")
            args.append(f"{t.ident}: [{ty}](repeating: 0, count: {size})")
    args += [f"{p}: 1" if not kotlin else "1" for p in m.params]
    first = m.outputs[0].ident if m.outputs else None
    call = f"model.{m.ident}({', '.join(args)})"
    if kotlin:
        return [f"val out = {call}", *( [f"println(out.{first}.size)"] if first else [])]
    return [f"let out = try {call}", *([f"print(out.{first}.count)"] if first else [])]


def _phone_check(plan: Plan, platform: str, ref: dict) -> list[str]:
    """The on-device check: run the reference inputs, compare with the source model's outputs."""
    m = next(x for x in plan.methods if x.name == ref["method"])
    tol = (ref.get("tolerance") or {}).get("cosine_min")
    lines = ["## Check it on a phone", "",
             f"`reference/` holds the inputs the parity check used and the PyTorch model's outputs for `{m.name}`, "
             "as raw little-endian arrays (`reference/index.json` lists file, shape, dtype). Run them through the "
             "wrapper on the device and compare" + (f" (the export's gate: cosine >= {tol})." if tol else ".")]
    if plan.target == "coreml":
        lines.append("Core ML was checked structurally only when the artifact was exported (prediction needs Apple "
                     f"hardware), and computes in {plan.artifact.manifest.get('precision')}: this is its first "
                     "numeric check.")
    if any(t.dtype != "float32" for t in (*m.inputs, *m.outputs)):
        return lines + ["Read each file as its dtype (see index.json) and pass it as the matching array."]
    args = ", ".join(f'floats("{i["file"]}")' for i in ref["inputs"])
    out0, ref0 = m.outputs[0].ident, ref["outputs"][0]["file"]
    if platform == "android":
        return lines + ["", "Copy `reference/` to `src/androidTest/assets/reference/`, then in an instrumented test:",
                        "", "```kotlin",
                        "val assets = InstrumentationRegistry.getInstrumentation().context.assets",
                        'fun floats(f: String): FloatArray { val b = assets.open("reference/$f").readBytes()',
                        "    return FloatArray(b.size / 4).also { java.nio.ByteBuffer.wrap(b)"
                        ".order(java.nio.ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(it) } }",
                        f"val got = model.{m.ident}({args}).{out0}",
                        f'val want = floats("{ref0}")',
                        "val dot = got.indices.sumOf { got[it].toDouble() * want[it] }",
                        "val cos = dot / Math.sqrt(got.sumOf { it.toDouble() * it } * want.sumOf { it.toDouble() * it })",
                        "```"]
    swift_args = ", ".join(f'{t.ident}: try floats("{i["file"]}")' for t, i in zip(m.inputs, ref["inputs"]))
    return lines + ["", "Add `reference/` to your test target's resources, then in an XCTest:", "", "```swift",
                    "func floats(_ f: String) throws -> [Float] {",
                    "    let url = Bundle(for: Self.self).url(forResource: f, withExtension: nil, subdirectory: \"reference\")!",
                    "    return try Data(contentsOf: url).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }",
                    "}",
                    f"let got = try model.{m.ident}({swift_args}).{out0}",
                    f'let want = try floats("{ref0}")',
                    "let dot = zip(got, want).map { Double($0) * Double($1) }.reduce(0, +)",
                    "let cos = dot / (got.map { Double($0 * $0) }.reduce(0, +) * want.map { Double($0 * $0) }.reduce(0, +)).squareRoot()",
                    "```"]


def readme(plan: Plan, platform: str, deps: list[Dependency], files: list[str], package: str | None,
           reference: dict | None = None) -> str:
    m0 = plan.artifact.manifest
    runtime = target_info(plan.target).app_runtime
    lines = [
        f"# {plan.class_name}: {m0['model']['name']} on {'Android' if platform == 'android' else 'iOS'} ({runtime})",
        "",
        f"Generated by `edgekit bundle` from `{plan.artifact.path.name}/manifest.json` ({m0.get('kind')}, target "
        f"{plan.target}, created {m0.get('created', '?')}). The wrapper's method and tensor names, shapes and dtypes are "
        "the manifest's; flat row-major arrays go in and come out, each checked against the manifest's shape.",
        "",
        "## Runtime dependency",
        "",
    ]
    for d in deps:
        if d.system == "system":
            lines.append(f"- {d.name}: {d.source}")
        else:
            shown = d.coordinate if d.system == "gradle" else f"{d.name} @ branch {d.version or 'UNKNOWN'}"
            lines.append(f"- `{shown}`: {d.source}.")
        if d.caveat:
            lines.append(f"  Not certain: {d.caveat}.")
    if uses_edgekit_kernels(plan.artifact):
        lines.append("- This .pte calls edgekit's compressed-weight kernels (`--executorch-kernels edgekit`), which "
                     "the published ExecuTorch packages do not contain: build the runtime with them, or re-export "
                     "without `--executorch-kernels edgekit` for a stock runtime.")
    if m0.get("tokenizer"):
        lines.append(f"- The tokenizer (`{m0['tokenizer']}`, Hugging Face tokenizers JSON) is bundled; tokenizing "
                     "and sampling are the app's: the wrapper runs the model's methods only.")
    lines += [""] + (_android_steps(plan, deps, package or "", files) if platform == "android"
                     else _ios_steps(plan, deps))
    lines += ["", "## API", "", *_api_table(plan), *_boundary_lines(plan)]
    if plan.target == "tflite" and any(m.params for m in plan.methods):
        lines += ["", "Not handled: this .tflite has dimensions given at run time, and LiteRT's CompiledModel "
                  "allocates its buffers at the model's own sizes; sizes other than those need the model's tensors "
                  "resized first (not done by this wrapper)."]
    if m0.get("kv_cache") == "in_place":
        lines += ["", "The KV cache lives inside the program (`kv_cache: in_place`): call `reset` before a new "
                  "conversation; `prefill`/`decode` take the token positions in `start_pos`."]
    elif m0.get("kind") == "edgekit-llm":
        lines += ["", "The KV cache is explicit: pass the `*_cache` arrays in and keep the `*_cache_out` arrays for "
                  "the next call (zeros to start a conversation)."]
    if reference:
        lines += ["", *_phone_check(plan, platform, reference)]
    lines += ["", "## The artifact", "", *_parity_lines(m0), *_ledger_lines(m0),
              f"- precision {m0.get('precision')}, options {m0.get('options')}",
              f"- producer: {', '.join(f'{k} {v}' for k, v in (m0.get('producer') or {}).items())}",
              "", "## Checked here, and what needs a phone", "",
              "Checked when this bundle was made: the sha256 of every copied file equals the manifest's; the "
              "wrapper's names, shapes and dtypes are generated from the manifest"
              + (" and the model file's own tensor names were read from the file." if plan.probed else
                 "; the model file's own tensor names were NOT read (see above)."),
              "edgekit's tests compile generated wrappers against stand-ins of the runtime API "
              "(Kotlin with Debian's kotlinc; Swift only where a Swift compiler is installed).",
              "", "Needs a phone (or an emulator/simulator) and is not checked here:",
              "- that the dependency above resolves at that version and builds into the app;",
              "- that the runtime loads this model file and every method runs "
              + ("(Core ML prediction does not run on Linux: only the package's structure was checked);"
                 if plan.target == "coreml" else "(the operators are registered in that build of the runtime);"),
              "- that outputs on the device match the source model's "
              + ("(`reference/`, see above; " if reference else "(`reference_io.npz` of the artifact; ")
              + "the parity above was measured on the exporting machine, not on a phone);",
              "- latency, memory, and which accelerator the runtime picks.", ""]
    return "\n".join(lines)
