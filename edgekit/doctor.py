"""`edgekit doctor`: this machine, the installed runtimes and converters, and self-tests of the
known upstream problems that change edgekit's results or speed here.

    >>> from edgekit.doctor import run_doctor
    >>> report = run_doctor()                       # doctest: +SKIP
    >>> [c["id"] for c in report["checks"]]         # doctest: +SKIP
    ['numpy_float16_sort', 'xnnpack_avx2_f32_gemm']

Runs in well under 10 s: versions come from package metadata (nothing is imported, torch
included), the float16 sort test takes milliseconds, and the XNNPACK check decides from the
CPU's features unless ``measure=True`` (exports and times a small conv stack, ~10-20 s).
"""

from __future__ import annotations

import time
from importlib import metadata

from edgekit.targets import TARGETS

# distribution name -> what it is, in the order printed
PACKAGES = {
    "edgekit-sdk": "edgekit", "numpy": "arrays", "torch": "PyTorch (export side)",
    **{dist: what for t in TARGETS for dist, what in t.packages.items()},  # each target's converter and runtime
    "torchao": "LLM int4/int8 weights", "tokenizers": "LLM tokenizer", "scikit-learn": "k-means (compression)",
    "fastapi": "benchmark server", "uvicorn": "benchmark server",
}
NOT_INSTALLED = "not installed"
AFFECTED, NOT_AFFECTED, LIKELY, UNKNOWN = "affected", "not affected", "likely affected", "unknown"
# docs/benchmarks.md: ExecuTorch 1.5.1 ran 4 convs at 33.6 GFLOP/s vs torch 81.4 on an AVX2-only EPYC
SLOW_GEMM_RATIO = 0.6


def versions() -> dict[str, str]:
    """Installed version of every runtime and converter edgekit uses (from metadata: imports nothing)."""
    out = {}
    for dist in PACKAGES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = NOT_INSTALLED
    return out


def float16_sort_check(result: dict | None = None) -> dict:
    """NumPy 2.x's AVX-512 float16 sort: run it (or take ``result`` of ``sortsafe.float16_sort_selftest``)."""
    from edgekit.sortsafe import float16_sort_selftest

    r = result if result is not None else float16_sort_selftest()
    status = AFFECTED if r["affected"] else NOT_AFFECTED
    found = (f"np.unique of 8 distinct float16 values returned {r['unique_counts']} values, np.sort "
             f"{'monotone' if r['monotone'] else 'NOT monotone'} (numpy {r['numpy']})")
    return {
        "id": "numpy_float16_sort", "status": status, "found": found,
        "affects": "anything that sorts float16 arrays: np.unique / np.sort / np.argsort return duplicates or "
                   "unsorted output; coremltools' 'unique' palettization then picks wider Core ML tables",
        "action": "nothing to do for edgekit: it never sorts float16 (Core ML tables come from the compression "
                  "records; edgekit.sortsafe sorts a float32 copy) and the ledger refuses widened tables "
                  "(compression_widened). In your own code sort float16 as float32"
                  + (", or set NPY_DISABLE_CPU_FEATURES=\"AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL "
                     "AVX512_SPR\" to use NumPy's AVX2 path" if status == AFFECTED else ""),
    }


def xnnpack_gemm_check(machine: str, simd: list[str] | set[str], measured: dict | None = None) -> dict:
    """ExecuTorch's XNNPACK f32 GEMM at half speed on AVX2-only x86 CPUs: from the CPU features
    (``simd``: /proc/cpuinfo flag names) and, when given, a measurement (``measure_xnnpack``)."""
    flags = set(simd)
    x86 = machine.lower() in ("x86_64", "amd64", "i686", "x86")
    if not x86:
        status, why = NOT_AFFECTED, f"{machine}: XNNPACK runs its ARM (NEON) kernels, not the AVX2 ones"
    elif not flags:
        status, why = UNKNOWN, "this CPU's SIMD features could not be read"
    elif "avx512f" in flags:
        status, why = NOT_AFFECTED, "AVX-512: XNNPACK picks its 32-register AVX-512 kernels"
    elif "avx2" in flags and "fma" in flags:
        status, why = LIKELY, ("AVX2 + FMA without AVX-512: XNNPACK picks the AVX2 f32 GEMM kernel that runs "
                               "at half speed")
    else:
        status, why = NOT_AFFECTED, "no AVX2 + FMA: XNNPACK uses older kernels (slow for other reasons)"
    check = {"id": "xnnpack_avx2_f32_gemm", "status": status, "found": why,
             "affects": "ExecuTorch (.pte, XNNPACK delegate) fp32 conv/linear latency: ~0.4x of torch eager on "
                        "the same convolutions (docs/benchmarks.md); LiteRT's and ONNX Runtime's kernels are fine",
             "action": "compare runtimes on this machine before choosing one (edgekit bench); benchmark ExecuTorch "
                       "on an AVX-512 or ARM machine (phones run the NEON kernels) for representative numbers"}
    if measured:
        check["measured"] = measured
        slow = measured["ratio_to_torch"] < SLOW_GEMM_RATIO
        check["status"] = AFFECTED if slow else NOT_AFFECTED
        check["found"] += (f"; measured: ExecuTorch {measured['executorch_gflops']:.1f} GFLOP/s vs torch "
                           f"{measured['torch_gflops']:.1f} ({measured['ratio_to_torch']:.2f}x) on 1 thread")
    elif status == LIKELY:
        check["found"] += "; run `edgekit doctor --measure` to measure it (needs torch + executorch, ~20 s)"
    return check


def measure_xnnpack(rounds: int = 5) -> dict | None:
    """1 thread, interleaved: ExecuTorch-XNNPACK vs torch eager on two 64->64 3x3 convs at 28x28.
    None when torch or executorch is missing."""
    import importlib.util
    import statistics

    if not all(importlib.util.find_spec(m) for m in ("torch", "executorch")):
        return None
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.Conv2d(64, 64, 3, padding=1)).eval()
    x = torch.randn(1, 64, 28, 28)
    flop = 2 * 2 * 64 * 64 * 9 * 28 * 28
    program = to_edge_transform_and_lower(torch.export.export(model, (x,)),
                                          partitioner=[XnnpackPartitioner()]).to_executorch()
    method = Runtime.get().load_program(program.buffer).load_method("forward")

    def seconds(fn) -> float:
        fn()
        start = time.perf_counter()
        for _ in range(5):
            fn()
        return (time.perf_counter() - start) / 5

    eager, et = [], []
    with torch.no_grad():
        for _ in range(rounds):
            eager.append(seconds(lambda: model(x)))
            et.append(seconds(lambda: method.execute([x])))
    t_eager, t_et = statistics.median(eager), statistics.median(et)
    return {"torch_gflops": flop / t_eager / 1e9, "executorch_gflops": flop / t_et / 1e9,
            "ratio_to_torch": t_eager / t_et, "rounds": rounds}


def known_issues(info: dict) -> dict[str, str]:
    """Status of each upstream problem on this machine (cheap): recorded in machine_info()."""
    return {"numpy_float16_sort": float16_sort_check()["status"],
            "xnnpack_avx2_f32_gemm": xnnpack_gemm_check(info.get("machine", ""), info.get("simd", []))["status"]}


def native_libraries() -> dict:
    """edgekit's own native libraries: built or not (with the command that builds them), and the kernel
    paths this CPU takes (fp32 and int8-activation products)."""
    from edgekit.kernels import _native as nk
    from edgekit.kernels.executorch_ops import OPS_LIB_NAME
    from edgekit.runtime.native import library_path as runtime_path

    kernels = {"path": str(nk.library_path()), "built": nk.library_path().is_file()}
    if kernels["built"]:
        try:
            kernels |= {"isa": nk.best_isa(), "q8_isa": nk.best_q8_isa(), "q8_pass": nk.q8_pass(),
                        "isas": [name for name in nk.ISAS if name != "auto" and nk.isa_supported(name)]}
        except (OSError, AttributeError) as e:  # a stale or foreign build: missing symbols
            kernels |= {"built": False, "error": f"cannot load: {e}"}
    ops = nk.library_path().parent / OPS_LIB_NAME
    return {"kernels": kernels, "executorch_ops": {"path": str(ops), "built": ops.is_file()},
            "runtime": {"path": str(runtime_path()), "built": runtime_path().is_file()},
            "build_command": nk.BUILD_COMMAND}


def run_doctor(*, measure: bool = False) -> dict:
    """The whole report: machine (bench.machine_info), versions, checks, seconds taken."""
    from edgekit.bench import machine_info

    start = time.perf_counter()
    machine = machine_info(issues=False)
    measured = measure_xnnpack() if measure else None
    checks = [float16_sort_check(), xnnpack_gemm_check(machine.get("machine", ""), machine.get("simd", []), measured)]
    if measure and measured is None:
        checks[1]["found"] += "; not measured: torch or executorch is not installed"
    machine["known_issues"] = {c["id"]: c["status"] for c in checks}
    return {"machine": machine, "versions": versions(), "native": native_libraries(), "checks": checks,
            "seconds": round(time.perf_counter() - start, 3)}


def format_report(report: dict) -> str:
    """The report as text (for the CLI)."""
    m = report["machine"]
    lines = ["machine",
             f"  cpu        {m.get('cpu', '?')} ({m.get('machine', '?')}, {m.get('cpu_count', '?')} cores"
             f"{', ' + str(len(m['cpu_affinity'])) + ' usable' if 'cpu_affinity' in m else ''})",
             f"  simd       {' '.join(m.get('simd', [])) or '?'}",
             f"  numpy simd {' '.join(m.get('numpy_simd', [])) or '?'}",
             f"  os         {m.get('platform', '?')}, python {m.get('python', '?')}",
             "", "versions"]
    width = max(len(k) for k in report["versions"])
    lines += [f"  {k.ljust(width)}  {v.ljust(16)}{PACKAGES.get(k, '')}" for k, v in report["versions"].items()]
    lines += ["", "native libraries"] + _native_lines(report["native"])
    for c in report["checks"]:
        lines += ["", f"{c['id']}: {c['status'].upper()}", f"  found:   {c['found']}",
                  f"  affects: {c['affects']}", f"  action:  {c['action']}"]
    lines += ["", f"({report['seconds']:.1f} s)"]
    return "\n".join(lines)


def _native_lines(native: dict) -> list[str]:
    def built(lib: dict, what: str) -> str:
        return f"{lib['path']}: {what}" if lib["built"] else \
            f"NOT BUILT ({lib.get('error') or lib['path']}): run `{native['build_command']}`"

    k = native["kernels"]
    paths = (f"built; fp32 products on {k['isa']}, int8-activation products on {k['q8_isa']} "
             f"(activation pass {k['q8_pass']}; paths here: {', '.join(k['isas'])})") if k["built"] else ""
    return [f"  kernels         {built(k, paths)}",
            f"  executorch ops  {built(native['executorch_ops'], 'built; .pte files with edgekit:: ops run')}",
            f"  runtime (C)     {built(native['runtime'], 'built; apps link edgekit_runtime')}"]
