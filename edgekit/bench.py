"""Local benchmark of an artifact, run in a fresh child process.

    >>> from edgekit.bench import benchmark
    >>> result = benchmark("out/resnet18/onnx", runs=100, threads=1)   # doctest: +SKIP
    >>> result["latency"]["p50_ms"]                                     # doctest: +SKIP

The child measures cold start (import of the runtime plus model load) as a
fresh process would see it, then the first run, warmup and timed runs. Only
numpy and the artifact's runtime are imported: torch never is, except through
ExecuTorch's own Python bindings.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError


def _field(default: Any, description: str | None = None, *, api: bool = True, cli: bool = False, **bounds) -> Any:
    """A BenchConfig field. Its default, bounds and description are also the benchmark server's job schema
    (edgekit.server.schemas.JobCreate); ``api=False``: not a field of a job request; ``cli``: a flag of
    `edgekit bench` (edgekit/cli/bench.py)."""
    return field(default=default, metadata={"description": description, "api": api, "cli": cli, **bounds})


@dataclass(frozen=True)
class BenchConfig:
    runs: int = _field(50, "at least this many timed runs ...", ge=1, le=100_000, cli=True)
    warmup: int = _field(10, "... after at least this many warmup runs ...", ge=0, le=100_000, cli=True)
    min_seconds: float = _field(1.0, "... and keep timing until this much time has passed", ge=0, le=3600,
                                cli=True)
    warmup_seconds: float = _field(0.5, "warm up for at least this long", ge=0, le=600)
    max_runs: int = _field(100_000, "stop timing after this many runs", ge=1, le=1_000_000)
    threads: int = _field(1, "runtime threads", ge=1, le=256, cli=True)
    inputs: str = _field("reference", "the artifact's reference inputs (random without them), random inputs of "
                         "the model's signature, or an explicit spec (random data of the given shapes and dtypes)")
    seed: int = _field(0, "seed of random inputs", ge=0, le=2**31 - 1)
    # [{name, shape, dtype, value, range}] (edgekit.inputspec.parse_input); on the server, `inputs` carries it
    input_spec: list | None = _field(None, api=False)
    dims: dict | None = _field(None, "sizes for symbolic dimensions, e.g. {\"N\": 1, \"H\": 640}")
    # LLM artifacts only (edgekit.llm_bench): each round prefills prompt_tokens then times new_tokens decode
    # steps; runs then counts decode steps and the result gains an `llm` section (TTFT, prefill/decode tokens/s)
    prompt_tokens: int | None = _field(None, "LLM artifacts: prompt length (16)", ge=1, le=65_536, cli=True)
    new_tokens: int | None = _field(None, "LLM artifacts: decode steps a round (128); runs counts decode steps",
                                    ge=1, le=65_536, cli=True)

    def __post_init__(self):
        if self.runs < 1:
            raise EdgekitError("bad_option", f"runs must be >= 1, got {self.runs}", fix="pass --runs 50 or more")
        if self.warmup < 0:
            raise EdgekitError("bad_option", f"warmup must be >= 0, got {self.warmup}", fix="pass --warmup 10")
        if self.threads < 1:
            raise EdgekitError("bad_option", f"threads must be >= 1, got {self.threads}", fix="pass --threads 1")
        if self.inputs not in ("reference", "random", "spec"):
            raise EdgekitError("bad_option", f"inputs {self.inputs!r} unknown; choose reference or random",
                               fix="pass inputs='reference' or 'random'")


def benchmark(path: str | os.PathLike, *, timeout_s: float = 900, **config) -> dict:
    """Benchmark ``path`` in a child process and return the result dict."""
    cfg = BenchConfig(**config)
    path = Path(path).resolve()
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "edgekit.bench_child", str(path), str(result_file), json.dumps(_child_config(cfg))]
        env = dict(os.environ, OMP_NUM_THREADS=str(cfg.threads))
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired as e:
            raise EdgekitError("bench_timed_out", f"benchmark of {path} ran past {timeout_s:.0f} s",
                               fix="lower --runs / min_seconds, or check that the model runs at all") from e
        if result_file.exists():
            result = json.loads(result_file.read_text())
            if "error" in result:
                err = result["error"]
                raise EdgekitError(err["code"], err["message"],
                                   fix=err.get("fix"), details={**(err.get("details") or {}),
                                                                "stderr": proc.stderr[-4000:]})
            return result
        reason = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
        raise EdgekitError(
            "runtime_crashed", f"the benchmark process for {path} died ({reason}) before reporting"
            + (stderr_head(proc.stderr, indent="  ") or "; it wrote nothing to stderr"),
            fix="the runtime could not run this artifact: its stderr above says why",
            details={"stderr": proc.stderr[-4000:]},
        )


def stderr_head(stderr: str | None, lines: int = 12, indent: str = "") -> str:
    """The first lines of a child's stderr (and its last line, where a traceback says what failed), for a
    message: '' when there is none."""
    text = [ln.rstrip() for ln in (stderr or "").strip().splitlines() if ln.strip()]
    if not text:
        return ""
    shown = text[:lines]
    if len(text) > lines:
        shown += [f"... ({len(text) - lines - 1} more lines)", text[-1]] if len(text) > lines + 1 else [text[-1]]
    return "\n" + indent + "stderr:\n" + "\n".join(indent + "  " + ln[:300] for ln in shown)
def _child_config(cfg: BenchConfig) -> dict:
    """The child's config; the LLM-only fields only when set, so a classifier result's config is unchanged."""
    return {k: v for k, v in asdict(cfg).items() if v is not None or k not in ("prompt_tokens", "new_tokens")}


SIMD_FLAGS = {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx512_bf16", "avx512_fp16", "avx512fp16", "avx_vnni", "amx_tile", "asimd", "neon", "sve", "sve2",
              "asimdhp", "asimddp", "i8mm", "bf16"}


def machine_info(*, issues: bool = True) -> dict:
    """What the numbers depend on: CPU, SIMD features, cores, affinity, load, NumPy's SIMD paths and
    (``issues``) the status of the upstream problems `edgekit doctor` checks (a few ms)."""
    info = {"platform": platform.platform(), "machine": platform.machine(), "python": platform.python_version(),
            "cpu_count": os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        info["cpu_affinity"] = sorted(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["load_average"] = list(os.getloadavg())
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key = line.split(":", 1)[0].strip()
            if key in ("model name", "Hardware") and "cpu" not in info:
                info["cpu"] = line.split(":", 1)[1].strip()
            elif key in ("flags", "Features") and "simd" not in info:
                # kernels are chosen by ISA: AVX-512 vs AVX2 changes which runtime wins (Features: ARM)
                flags = set(line.split(":", 1)[1].split())
                info["simd"] = sorted(f for f in flags if f in SIMD_FLAGS)
    except OSError:
        if platform.system() == "Darwin":
            info |= _darwin_cpu()
    if platform.machine().lower() in ("arm64", "aarch64") and "neon" not in info.get("simd", []):
        info["simd"] = sorted(set(info.get("simd", [])) | {"neon"})  # NEON is mandatory on ARMv8
    info.setdefault("cpu", platform.processor() or platform.machine())
    info["numpy_simd"] = _numpy_simd()
    if issues:
        from edgekit.doctor import known_issues

        info["known_issues"] = known_issues(info)
    return info


def _darwin_cpu() -> dict:
    """CPU brand and x86 SIMD flags on macOS (sysctl), named as Linux names them."""
    out = {}
    try:
        brand = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                               timeout=5).stdout.strip()
        feats = subprocess.run(["sysctl", "-n", "machdep.cpu.features", "machdep.cpu.leaf7_features"],
                               capture_output=True, text=True, timeout=5).stdout.lower().split()
    except (OSError, subprocess.SubprocessError):
        return out
    if brand:
        out["cpu"] = brand
    names = {"sse4.2": "sse4_2", "fma": "fma", "avx1.0": "avx", "avx2": "avx2", "f16c": "f16c",
             "avx512f": "avx512f", "avx512bw": "avx512bw", "avx512vl": "avx512vl", "avx512vnni": "avx512_vnni"}
    if feats:
        out["simd"] = sorted({names[f] for f in feats if f in names})
    return out


def _numpy_simd() -> list[str]:
    """NumPy's dispatch targets enabled on this CPU (NPY_DISABLE_CPU_FEATURES removes some)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy 1.x
        try:
            from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
        except ImportError:
            return []
    return [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
