"""iOS: a Swift wrapper over Core ML (.mlpackage) or ExecuTorch's Swift API (.pte).

Same shape as the Android wrapper: one throwing function per method, the manifest's tensors
as flat row-major Swift arrays of the manifest's dtype, checked against the manifest's shape;
symbolic dimensions become ``Int`` parameters. Core ML feature names and boundary types are the
package's own (read from it when the bundle is made), so the wrapper maps the manifest's names
onto them.
"""

from __future__ import annotations

from edgekit.bundle.spec import Method, Plan, Tensor

# manifest dtype -> (Swift element type, NSNumber accessor)
SWIFT_TYPES = {"float32": ("Float", "floatValue"), "float64": ("Double", "doubleValue"),
               "int64": ("Int64", "int64Value"), "int32": ("Int32", "int32Value"),
               "int8": ("Int8", "int8Value"), "uint8": ("UInt8", "uint8Value")}
# Core ML boundary dtype -> MLMultiArrayDataType
MLARRAY_TYPES = {"float32": ".float32", "float16": ".float16", "float64": ".double", "int32": ".int32"}


def _const(m: Method, t: Tensor) -> str:
    return m.ident + "".join(p[:1].upper() + p[1:] for p in t.ident.split("_"))


def _shape_expr(t: Tensor) -> str:
    return "[" + ", ".join(str(d.size) if d.size is not None else d.param for d in t.dims) + "]"


def _info(m: Method, t: Tensor) -> str:
    shape = ", ".join(str(d.size) if d.size is not None else "-1" for d in t.dims)
    syms = ", ".join(f'"{d.symbol or d.param}"' if d.size is None else '""' for d in t.dims)
    return (f'    public static let {_const(m, t)} = TensorInfo(name: "{t.name}", shape: [{shape}], '
            f'dtype: "{t.dtype}", symbols: [{syms}])')


def _params(m: Method) -> str:
    return ", ".join([f"{t.ident}: [{SWIFT_TYPES[t.dtype][0]}]" for t in m.inputs] + [f"{p}: Int" for p in m.params])


def _outputs_struct(m: Method, kinds: dict) -> list[str]:
    cls = m.outputs_class
    lines = [f"    /// Outputs of `{m.ident}`.", f"    public struct {cls} {{"]
    for t in m.outputs:
        kind = f" ({kinds[t.name]})" if t.name in kinds else ""
        lines.append(f"        /// `{t.name}`: {t.dtype} {t.shape}{kind}")
        lines.append(f"        public let {t.ident}: [{SWIFT_TYPES[t.dtype][0]}]")
    lines.append("    }")
    return lines


def _doc(m: Method) -> list[str]:
    lines = [f"    /// Runs `{m.name}`. Arrays are flat, row-major."]
    lines += [f"    /// - Parameter {t.ident}: `{t.name}`, {t.dtype} {t.shape}" for t in m.inputs]
    lines += [f"    /// - Parameter {p}: size of the symbolic dimension `{p}`" for p in m.params]
    return lines


def _check_inputs(m: Method) -> list[str]:
    lines = []
    for t in m.inputs:
        lines.append(f"        let {t.ident}Shape = {_shape_expr(t)}")
        lines.append(f"        try Self.checkSize(Self.{_const(m, t)}, {t.ident}.count, {t.ident}Shape)")
    return lines


def _coreml_method(plan: Plan, m: Method, kinds: dict) -> list[str]:
    inputs = {id(t) for t in m.inputs}  # Core ML must also take an input's file dtype as an MLMultiArray
    m.check_dtypes(plan, SWIFT_TYPES, "iOS", accepts=lambda t: t.dtype in SWIFT_TYPES and (
        id(t) not in inputs or t.io_dtype in MLARRAY_TYPES))
    cls = m.outputs_class
    lines = _outputs_struct(m, kinds) + [""] + _doc(m)
    lines.append(f"    public func {m.ident}({_params(m)}) throws -> {cls} {{")
    lines += _check_inputs(m)
    feats = []
    for t in m.inputs:
        narrow = t.dtype == "int64" and t.io_dtype == "int32"
        lines.append(f"        let {t.ident}Array = try MLMultiArray(shape: {t.ident}Shape.map {{ NSNumber(value: $0) }}, "
                     f"dataType: {MLARRAY_TYPES[t.io_dtype]})")
        lines.append(f"        for (i, v) in {t.ident}.enumerated() {{")
        if narrow:  # Core ML took the int64 input as int32: out-of-range values are an error, not wrapped
            lines.append(f'            guard let v32 = Int32(exactly: v) else {{ throw WrapperError.value("{t.name}[\\(i)] = '
                         f'\\(v) does not fit the model\'s int32 input") }}')
            lines.append(f"            {t.ident}Array[i] = NSNumber(value: v32)")
        else:
            lines.append(f"            {t.ident}Array[i] = NSNumber(value: v)")
        lines.append("        }")
        feats.append(f'"{t.io_name}": MLFeatureValue(multiArray: {t.ident}Array)')
    lines.append(f"        let provider = try MLDictionaryFeatureProvider(dictionary: [{', '.join(feats)}])")
    lines.append(f"        let result = try {m.ident}Model.prediction(from: provider)")
    for t in m.outputs:
        lines.append(f'        guard let {t.ident}Array = result.featureValue(for: "{t.io_name}")?.multiArrayValue else {{')
        lines.append(f'            throw WrapperError.output("{m.name}: the model returned no multi-array '
                     f'\'{t.io_name}\' (manifest: {t.name})")')
        lines.append("        }")
        lines.append(f"        try Self.checkShape(Self.{_const(m, t)}, {t.ident}Array.shape.map {{ $0.intValue }})")
        # NSNumber reads any MLMultiArray type (fp16 included) as the manifest's dtype
        lines.append(f"        let {t.ident} = (0..<{t.ident}Array.count).map {{ {t.ident}Array[$0].{SWIFT_TYPES[t.dtype][1]} }}")
    lines.append(f"        return {cls}({', '.join(f'{t.ident}: {t.ident}' for t in m.outputs)})")
    lines.append("    }")
    return lines


def _executorch_method(plan: Plan, m: Method, kinds: dict) -> list[str]:
    m.check_dtypes(plan, SWIFT_TYPES, "iOS")
    cls = m.outputs_class
    lines = _outputs_struct(m, kinds) + [""] + _doc(m)
    lines.append(f"    public func {m.ident}({_params(m)}) throws -> {cls} {{")
    lines += _check_inputs(m)
    args = ", ".join(f"Tensor<{SWIFT_TYPES[t.dtype][0]}>({t.ident}, shape: {t.ident}Shape)" for t in m.inputs)
    lines.append(f'        let outputs = try module.execute("{m.io_key}", [{args}] as [ValueConvertible])')
    lines.append(f"        guard outputs.count == {len(m.outputs)} else {{")
    lines.append(f'            throw WrapperError.output("{m.name}: the runtime returned \\(outputs.count) outputs, '
                 f'the manifest lists {len(m.outputs)}")')
    lines.append("        }")
    for i, t in enumerate(m.outputs):
        ty = SWIFT_TYPES[t.dtype][0]
        lines.append(f"        guard let {t.ident}Tensor: Tensor<{ty}> = outputs[{i}].tensor() else {{")
        lines.append(f'            throw WrapperError.output("{m.name}: output {i} is not a {t.dtype} tensor '
                     f'(manifest: {t.name})")')
        lines.append("        }")
        lines.append(f"        try Self.checkShape(Self.{_const(m, t)}, {t.ident}Tensor.shape)")
    lines.append(f"        return {cls}({', '.join(f'{t.ident}: {t.ident}Tensor.scalars()' for t in m.outputs)})")
    lines.append("    }")
    return lines


HELPERS = '''
    /// A tensor of the manifest's signature: name, shape (-1 where a dimension is given at run time), dtype.
    public struct TensorInfo {
        public let name: String
        public let shape: [Int]
        public let dtype: String
        public let symbols: [String]
    }

    /// Inputs and outputs of one method, as the manifest lists them.
    public struct Signature {
        public let inputs: [TensorInfo]
        public let outputs: [TensorInfo]
    }

    public enum WrapperError: Error {
        case shape(String)
        case value(String)
        case output(String)
    }

    static func checkSize(_ info: TensorInfo, _ count: Int, _ shape: [Int]) throws {
        let n = shape.reduce(1, *)
        guard count == n else {
            throw WrapperError.shape("\\(info.name): expected \\(info.dtype) of shape \\(shape) (\\(n) values), got \\(count)")
        }
    }

    static func checkShape(_ info: TensorInfo, _ shape: [Int]) throws {
        guard shape.count == info.shape.count,
              zip(info.shape, shape).allSatisfy({ $0.0 < 0 || $0.0 == $0.1 }) else {
            throw WrapperError.shape("\\(info.name): the runtime returned shape \\(shape), the manifest says \\(info.shape)")
        }
    }
'''


def swift_source(plan: Plan) -> str:
    m0 = plan.artifact.manifest
    kinds = (m0.get("signature") or {}).get("output_kinds") or {}
    coreml = plan.target == "coreml"
    body: list[str] = []
    for m in plan.methods:
        body += [""] + (_coreml_method(plan, m, kinds) if coreml else _executorch_method(plan, m, kinds))
    sha = next(f["sha256"] for f in m0["files"] if f["path"] == m0["model_file"])
    infos, sigs = [], []
    for m in plan.methods:
        infos += [_info(m, t) for t in (*m.inputs, *m.outputs)]
        sigs.append(f'        "{m.name}": Signature(inputs: [{", ".join(_const(m, t) for t in m.inputs)}], '
                    f'outputs: [{", ".join(_const(m, t) for t in m.outputs)}])')
    if coreml:
        multi = len(plan.methods) > 1
        stored = [f"    private let {m.ident}Model: MLModel" for m in plan.methods]
        init = ["    /// `url`: the compiled model (.mlmodelc). Xcode compiles the .mlpackage when it is in the app target",
                "    /// (`Bundle.main.url(forResource:withExtension: \"mlmodelc\")`); elsewhere use `MLModel.compileModel(at:)`.",
                "    public init(contentsOf url: URL, configuration: MLModelConfiguration = MLModelConfiguration()) throws {"]
        for m in plan.methods:
            if multi:  # one MLModel per function of a multifunction package (iOS 18)
                init += [f"        let {m.ident}Config = configuration.copy() as! MLModelConfiguration",
                         f'        {m.ident}Config.functionName = "{m.io_key}"',
                         f"        {m.ident}Model = try MLModel(contentsOf: url, configuration: {m.ident}Config)"]
            else:
                init.append(f"        {m.ident}Model = try MLModel(contentsOf: url, configuration: configuration)")
        init.append("    }")
        imports = ["import CoreML", "import Foundation"]
        runtime = "Core ML"
    else:
        stored = ["    private let module: Module"]
        init = ["    /// `filePath`: the .pte on the device, e.g. `Bundle.main.path(forResource: \"model\", ofType: \"pte\")!`.",
                "    /// Every method is loaded here, so a bad file or a missing kernel fails now, not at the first call.",
                "    public init(filePath: String) throws {", "        module = Module(filePath: filePath)"]
        init += [f'        try module.load("{m.io_key}")' for m in plan.methods] + ["    }"]
        imports = ["import ExecuTorch", "import Foundation"]
        runtime = "ExecuTorch"
    lines = [
        f"// Generated by `edgekit bundle` from manifest.json of {m0['model']['name']} "
        f"({plan.target}, {m0['model_file']} sha256 {sha[:16]}...).",
        "// Names, shapes and dtypes are the manifest's: regenerate the bundle rather than editing this file.",
        *imports, "",
        f"/// {m0['model']['name']} ({m0['model'].get('class', '?')}, {m0['model'].get('parameters', 0):,} parameters) "
        f"on {runtime}. Methods: {', '.join(m.name for m in plan.methods)}.",
        f"public final class {plan.class_name} {{",
        f'    public static let modelFile = "{m0["model_file"]}"',
        f'    public static let modelSHA256 = "{sha}"',
        *infos,
        "    /// Every method's signature, by the manifest's method name.",
        "    public static let signatures: [String: Signature] = [", ",\n".join(sigs), "    ]", "",
        *stored, "", *init, *body, HELPERS.rstrip("\n"), "}", ""]
    return "\n".join(lines)


def package_swift(plan: Plan, deps, deployment: str) -> str:
    """A Package.swift that puts the wrapper in a library target with the runtime it needs."""
    name = plan.class_name
    if plan.target == "coreml":
        target = deployment.removeprefix("iOS")
        return (f"// swift-tools-version:5.9\nimport PackageDescription\n\n"
                f"let package = Package(\n  name: \"{name}\",\n  platforms: [.iOS(.v{target}), .macOS(.v{_macos(target)})],\n"
                f"  products: [.library(name: \"{name}\", targets: [\"{name}\"])],\n"
                f"  targets: [.target(name: \"{name}\", path: \"Sources/{name}\",\n"
                f"                    resources: [.process(\"{plan.artifact.manifest['model_file']}\")])]\n)\n")
    d = deps[0]
    products = ",\n".join(f'        .product(name: "{p}", package: "executorch")' for p in d.products)
    return (f"// swift-tools-version:5.9\nimport PackageDescription\n\n"
            f"let package = Package(\n  name: \"{name}\",\n  platforms: [.iOS(.v17), .macOS(.v14)],\n"
            f"  products: [.library(name: \"{name}\", targets: [\"{name}\"])],\n"
            f"  dependencies: [\n    .package(url: \"{d.name}\", branch: \"{d.version or 'swiftpm-VERSION'}\")\n  ],\n"
            f"  targets: [\n    .target(\n      name: \"{name}\",\n      dependencies: [\n{products}\n      ],\n"
            f"      path: \"Sources/{name}\",\n"
            f"      resources: [.copy(\"{plan.artifact.manifest['model_file']}\")],\n"
            f"      linkerSettings: [.unsafeFlags([\"-Wl,-all_load\"])])\n  ]\n)\n")


def _macos(ios: str) -> str:
    return {"15": "12", "16": "13", "17": "14", "18": "15"}.get(ios, "14")
