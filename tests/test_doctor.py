"""`edgekit doctor`: machine facts, versions, and self-tests that report both conditions correctly."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgekit import doctor

AVX2_ONLY = ["sse4_2", "avx", "avx2", "fma", "f16c"]  # the AMD EPYC VM of docs/benchmarks.md
NO_AVX512 = "AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"


def _doctor_json(env_extra: dict | None = None) -> tuple[dict, float]:
    env = dict(os.environ, **(env_extra or {}))
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "edgekit.cli", "doctor", "--json"], capture_output=True,
                         text=True, env=env, timeout=60, check=True)
    return json.loads(out.stdout), time.perf_counter() - start


def test_doctor_json_has_the_fields_and_runs_in_under_10_s():
    report, wall = _doctor_json()
    assert wall < 10 and report["seconds"] < 10
    m = report["machine"]
    assert m["cpu"] and m["cpu_count"] >= 1 and isinstance(m["simd"], list) and isinstance(m["numpy_simd"], list)
    assert report["versions"]["numpy"] == np.__version__
    assert set(report["versions"]) == set(doctor.PACKAGES)
    assert all(v for v in report["versions"].values())  # a version or "not installed"
    ids = [c["id"] for c in report["checks"]]
    assert ids == ["numpy_float16_sort", "xnnpack_avx2_f32_gemm"]
    for c in report["checks"]:
        assert c["status"] in (doctor.AFFECTED, doctor.NOT_AFFECTED, doctor.LIKELY, doctor.UNKNOWN)
        assert c["found"] and c["affects"] and c["action"]
    assert m["known_issues"] == {c["id"]: c["status"] for c in report["checks"]}


def test_doctor_imports_no_torch():
    code = "import sys; from edgekit.doctor import run_doctor; run_doctor(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


def test_numpy_avx2_path_is_not_affected():
    """NumPy's AVX2 float16 sort is correct on every CPU: the doctor must say so."""
    report, _ = _doctor_json({"NPY_DISABLE_CPU_FEATURES": NO_AVX512})
    check = report["checks"][0]
    assert not any(f.startswith("AVX512") for f in report["machine"]["numpy_simd"])
    assert check["status"] == doctor.NOT_AFFECTED and "returned [8] values" in check["found"]


def test_numpy_avx512_icl_path_is_detected_where_present():
    """Without AVX512_SPR NumPy 2.x takes the emulated AVX512_ICL float16 sort: the buggy one (AMD Zen 4;
    an Intel CPU with AVX512-FP16 takes it when SPR is disabled). The doctor runs it and must see it."""
    report, _ = _doctor_json({"NPY_DISABLE_CPU_FEATURES": "AVX512_SPR"})
    check = report["checks"][0]
    major = int(np.__version__.split(".")[0])
    if "AVX512_ICL" not in report["machine"]["numpy_simd"] or major < 2:
        pytest.skip("no AVX512_ICL path in this CPU/NumPy: nothing buggy to detect")
    assert check["status"] == doctor.AFFECTED, check["found"]
    assert "NOT monotone" in check["found"] and "NPY_DISABLE_CPU_FEATURES" in check["action"]


def test_float16_check_under_an_emulated_broken_sort(monkeypatch):
    from buggy_sort import install

    install(monkeypatch)
    check = doctor.float16_sort_check()
    assert check["status"] == doctor.AFFECTED and "NOT monotone" in check["found"]
    assert "compression_widened" in check["action"]


def test_float16_check_with_a_correct_sort():
    good = {"affected": False, "unique_counts": [8], "monotone": True, "numpy": "x"}
    assert doctor.float16_sort_check(good)["status"] == doctor.NOT_AFFECTED


def test_xnnpack_check_from_cpu_features():
    assert doctor.xnnpack_gemm_check("x86_64", AVX2_ONLY)["status"] == doctor.LIKELY
    assert doctor.xnnpack_gemm_check("x86_64", AVX2_ONLY + ["avx512f", "avx512bw"])["status"] == doctor.NOT_AFFECTED
    assert doctor.xnnpack_gemm_check("aarch64", ["asimd", "neon"])["status"] == doctor.NOT_AFFECTED
    assert doctor.xnnpack_gemm_check("x86_64", ["sse4_2", "avx"])["status"] == doctor.NOT_AFFECTED
    assert doctor.xnnpack_gemm_check("x86_64", [])["status"] == doctor.UNKNOWN


def test_xnnpack_check_trusts_a_measurement():
    slow = {"torch_gflops": 81.4, "executorch_gflops": 33.6, "ratio_to_torch": 0.41, "rounds": 5}
    fast = {"torch_gflops": 173.0, "executorch_gflops": 164.0, "ratio_to_torch": 0.95, "rounds": 5}
    c = doctor.xnnpack_gemm_check("x86_64", AVX2_ONLY, slow)
    assert c["status"] == doctor.AFFECTED and "33.6 GFLOP/s" in c["found"] and c["measured"] == slow
    assert doctor.xnnpack_gemm_check("x86_64", AVX2_ONLY, fast)["status"] == doctor.NOT_AFFECTED


def test_cli_prints_the_report(capsys):
    from edgekit.cli import main

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    for part in ("machine", "versions", "numpy_float16_sort:", "xnnpack_avx2_f32_gemm:", "numpy "):
        assert part in out


def test_every_benchmark_records_the_machine_facts():
    from edgekit.bench import machine_info

    info = machine_info()
    assert set(info["known_issues"]) == {"numpy_float16_sort", "xnnpack_avx2_f32_gemm"}
    assert "numpy_simd" in info and "simd" in info


def test_report_line_names_the_machine_facts():
    from edgekit.report import machine_line

    line = machine_line({"simd": ["avx2", "fma"], "numpy_simd": ["X86_V3"],
                         "known_issues": {"numpy_float16_sort": "affected", "xnnpack_avx2_f32_gemm": "likely affected"}})
    assert line == ("CPU features: avx2 fma; NumPy SIMD: X86_V3; known upstream problems (`edgekit doctor`): "
                    "numpy_float16_sort: affected, xnnpack_avx2_f32_gemm: likely affected")


def test_doctor_reports_the_native_libraries_and_the_kernel_paths(tmp_path):
    """Built here by `make native`: the report names the paths this CPU takes; a missing build is named
    with the command that builds it (nothing raised)."""
    from edgekit.kernels import _native as nk

    report, _ = _doctor_json()
    k = report["native"]["kernels"]
    assert k["built"] and k["isa"] == nk.best_isa() and k["q8_isa"] == nk.best_q8_isa()
    assert "scalar" in k["isas"] and k["isa"] in k["isas"]
    assert report["native"]["executorch_ops"]["built"] == Path(k["path"]).with_name(
        "libedgekit_executorch_ops.so").is_file()
    missing = tmp_path / "libedgekit_kernels.so"
    report, _ = _doctor_json({"EDGEKIT_KERNELS_LIB": str(missing)})
    assert report["native"]["kernels"] == {"path": str(missing), "built": False}
    text = subprocess.run([sys.executable, "-m", "edgekit.cli", "doctor"], capture_output=True, text=True,
                          env=dict(os.environ, EDGEKIT_KERNELS_LIB=str(missing)), timeout=60, check=True).stdout
    assert f"kernels         NOT BUILT ({missing}): run `make native`" in text
