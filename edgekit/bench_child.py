"""The benchmark's child process: python -m edgekit.bench_child ARTIFACT RESULT_JSON CONFIG_JSON.

Optional config keys, used by the benchmark server: ``status_file`` (the child
writes the phase it is in there, so a timeout can say where it hung),
``input_spec`` (a list of {name, shape, dtype} to generate random inputs from,
checked against the model) and ``keep_samples`` (how many run times to return).
"""

from __future__ import annotations

import time

_T_PROCESS = time.perf_counter()  # before any import: cold start counts the imports too

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402


def main(path: str, result_file: str, config_json: str) -> None:
    import numpy as np

    from edgekit.bench import machine_info
    from edgekit.errors import EdgekitError
    from edgekit.runtime import available_runtimes_for, load, runtime_for
    from edgekit.artifact import sha256_of
    from edgekit.stats import summarize

    cfg = json.loads(config_json)
    phase = _phase_writer(cfg.get("status_file"))
    try:
        phase("load")
        target, model_file, manifest = runtime_for(path)
        if manifest is not None and manifest.get("kind") == "edgekit-llm":
            _write(result_file, _llm_result(path, target, model_file, cfg, phase))
            return
        t0 = time.perf_counter()
        session = load(path, threads=cfg["threads"])
        load_s = time.perf_counter() - t0
        cold_start_s = time.perf_counter() - _T_PROCESS
        phase("inputs")
        inputs = _inputs(session, path, manifest, cfg, np)
        phase("first_run")
        t0 = time.perf_counter()
        session.run(inputs)
        first_s = time.perf_counter() - t0

        phase("warmup")
        warm_start, warm_runs = time.perf_counter(), 0
        while warm_runs < cfg["warmup"] or time.perf_counter() - warm_start < cfg["warmup_seconds"]:
            session.run(inputs)
            warm_runs += 1

        phase("timed_runs")
        times: list[float] = []
        timed_start = time.perf_counter()
        while (len(times) < cfg["runs"] or time.perf_counter() - timed_start < cfg["min_seconds"]) \
                and len(times) < cfg["max_runs"]:
            t0 = time.perf_counter()
            session.run(inputs)
            times.append(time.perf_counter() - t0)
    except EdgekitError as e:
        _write(result_file, {"error": {"code": e.code, "message": e.message, "fix": e.fix,
                                       "details": _jsonable(e.details)}})
        return
    except MemoryError:
        _write(result_file, {"error": {"code": "out_of_memory", "message": "the runtime ran out of memory",
                                       "fix": "benchmark a smaller model or raise the memory limit"}})
        return
    phase("report")

    result = {
        "artifact": str(path),
        "target": target,
        "runtime": session.runtime,
        "runtime_version": available_runtimes_for(target)["version"],
        "sha256": sha256_of(model_file),
        "model_bytes": model_file.stat().st_size if model_file.is_file() else None,
        "threads": cfg["threads"],
        "inputs": cfg["inputs"],
        "cold_start_ms": cold_start_s * 1e3,  # fresh process: imports + load
        "load_ms": load_s * 1e3,
        "first_run_ms": first_s * 1e3,
        "warmup_runs": warm_runs,
        "latency": summarize(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "machine": machine_info(),
        "config": cfg,
    }
    if cfg.get("keep_samples"):
        step = max(1, len(times) // int(cfg["keep_samples"]))
        result["samples_ms"] = [t * 1e3 for t in times[::step]]
    _write(result_file, result)


def _llm_result(path, target, model_file, cfg, phase) -> dict:
    """An LLM artifact: generation rounds (edgekit.llm_bench); the same provenance as any benchmark."""
    from edgekit.artifact import sha256_of
    from edgekit.bench import machine_info
    from edgekit.generate import open_llm
    from edgekit.llm_bench import bench_llm
    from edgekit.runtime import available_runtimes_for

    t0 = time.perf_counter()
    llm = open_llm(path, threads=cfg["threads"])
    load_s = time.perf_counter() - t0
    cold_start_s = time.perf_counter() - _T_PROCESS
    timing = bench_llm(llm, cfg, phase)
    phase("report")
    times = timing.pop("samples_s")
    result = {
        "artifact": str(path), "kind": "llm", "target": target, "runtime": llm.session.runtime,
        "runtime_version": available_runtimes_for(target)["version"],
        "sha256": sha256_of(model_file), "model_bytes": model_file.stat().st_size if model_file.is_file() else None,
        "threads": cfg["threads"], "inputs": "random token ids",
        "cold_start_ms": cold_start_s * 1e3, "load_ms": load_s * 1e3,
        **timing,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "machine": machine_info(), "config": cfg,
    }
    if cfg.get("keep_samples"):
        step = max(1, len(times) // int(cfg["keep_samples"]))
        result["samples_ms"] = [t * 1e3 for t in times[::step]]  # per decode step
    return result


def _inputs(session, path, manifest, cfg, np):
    if cfg.get("input_spec") is not None:
        return _inputs_from_spec(session, cfg["input_spec"], cfg.get("seed", 0), np)
    if cfg["inputs"] == "reference" and manifest is not None:
        from edgekit.artifact import load_artifact
        ins, _ = load_artifact(path).reference_io()
        return [ins[s.name] for s in session.inputs]
    rng = np.random.default_rng(cfg["seed"])
    return [rng.standard_normal(s.shape).astype(s.dtype) if "float" in s.dtype
            else np.zeros(s.shape, dtype=s.dtype) for s in session.inputs]


def _inputs_from_spec(session, spec: list[dict], seed: int, np):
    from edgekit.errors import EdgekitError

    expected = [s.to_json() for s in session.inputs]
    given = [{"name": t.get("name"), "shape": list(t.get("shape", [])), "dtype": t.get("dtype")} for t in spec]
    if [(e["shape"], e["dtype"]) for e in expected] != [(g["shape"], g["dtype"]) for g in given]:
        raise EdgekitError("invalid_input", "the input spec does not match the model's inputs",
                           fix="send one {name, shape, dtype} per model input, in order, as listed in expected",
                           details={"expected": expected, "given": given})
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s.shape).astype(s.dtype) if "float" in s.dtype
            else np.zeros(s.shape, dtype=s.dtype) for s in session.inputs]


def _phase_writer(status_file: str | None):
    def write(phase: str) -> None:
        if status_file:
            with open(status_file, "w") as f:
                f.write(phase)
    return write


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def _write(result_file: str, obj: dict) -> None:
    with open(result_file, "w") as f:
        json.dump(obj, f, indent=2)


if __name__ == "__main__":
    main(*sys.argv[1:4])
