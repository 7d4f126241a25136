import numpy as np
import pytest

from edgekit.stats import summarize


def test_summary_values_in_ms():
    s = summarize([0.001 * i for i in range(1, 101)])  # 1..100 ms
    assert s["runs"] == 100
    assert s["min_ms"] == pytest.approx(1.0)
    assert s["max_ms"] == pytest.approx(100.0)
    assert s["p50_ms"] == pytest.approx(50.5)
    assert s["p90_ms"] == pytest.approx(90.1)
    assert s["mean_ms"] == pytest.approx(50.5)
    assert s["trimmed_mean_ms"] == pytest.approx(50.5)
    assert s["cv"] == pytest.approx(np.std(np.arange(1, 101), ddof=1) / 50.5)
    assert s["estimates"] == ["p99"]  # 100 runs: p90 is measured, p99 is an estimate
    assert s["outliers"] == 0


def test_outliers_counted_not_dropped():
    s = summarize([0.010] * 50 + [0.100])
    assert s["outliers"] == 1
    assert s["max_ms"] == pytest.approx(100.0)
    assert s["estimates"] == ["p90", "p99"]


def test_empty_is_an_error():
    with pytest.raises(ValueError):
        summarize([])


def test_machine_info_names_the_simd_extensions_kernels_depend_on():
    import platform

    import pytest

    from edgekit.bench import machine_info

    if platform.system() != "Linux" or platform.machine() != "x86_64":
        pytest.skip("reads x86 flags from /proc/cpuinfo")
    info = machine_info()
    flags = open("/proc/cpuinfo").read()
    assert ("avx2" in info["simd"]) == (" avx2" in flags)
    assert ("avx512f" in info["simd"]) == (" avx512f" in flags)
    assert info["cpu_count"] >= 1 and info["cpu"]
