"""The benchmark's child process: python -m edgekit.bench_child ARTIFACT RESULT_JSON CONFIG_JSON.

Optional config keys: ``status_file`` (the child writes the phase it is in
there, so a timeout can say where it hung), ``input_spec`` (a list of
{name, shape, dtype, value, range}, see edgekit.inputspec, checked against the
model), ``dims`` ({symbol: size}) and ``keep_samples`` (how many run times to
return).

An exception from the runtime (a wrong input, missing tensor data) is reported
as a ``runtime_error`` result with its message and the phase; only a child that
dies without writing a result is a crash.
"""

from __future__ import annotations

import time

_T_PROCESS = time.perf_counter()  # before any import: cold start counts the imports too

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402


def main(path: str, result_file: str, config_json: str) -> None:
    import numpy  # noqa: F401 -- part of the cold start, as in any user process

    from edgekit.bench import machine_info
    from edgekit.errors import EdgekitError
    from edgekit.runtime import available_runtimes_for, load, runtime_for
    from edgekit.artifact import sha256_of
    from edgekit.stats import summarize

    cfg = json.loads(config_json)
    phase = _phase_writer(cfg.get("status_file"))
    used: list[dict] = []
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
        inputs = _inputs(session, path, manifest, cfg, used)
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
                                       "details": _jsonable({"phase": phase.current, **e.details})}})
        return
    except MemoryError:
        _write(result_file, {"error": {"code": "out_of_memory", "message": "the runtime ran out of memory",
                                       "fix": "benchmark a smaller model or raise the memory limit"}})
        return
    except Exception as e:  # noqa: BLE001 -- the runtime's own exception: report it, do not die with it
        _write(result_file, {"error": {
            "code": "runtime_error", "message": f"{type(e).__name__}: {e}"[:4000],
            "fix": _runtime_error_fix(used),
            "details": {"phase": phase.current, "exception": type(e).__name__,
                        "inputs_used": used}}})
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
        "inputs_used": used,  # name, shape, dtype and fill of every input
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


def _inputs(session, path, manifest, cfg, used: list[dict]):
    """The reference inputs, or generated ones (random, or from the spec and dims)."""
    from edgekit.inputspec import make_arrays, resolve

    sig = [s.to_json() for s in session.inputs]
    if cfg.get("input_spec") is None and cfg["inputs"] == "reference" and manifest is not None:
        from edgekit.artifact import load_artifact
        ins, _ = load_artifact(path).reference_io()
        missing = [s.name for s in session.inputs if s.name not in ins]
        if missing:
            from edgekit.errors import EdgekitError
            raise EdgekitError("invalid_input", f"the artifact's reference inputs lack {missing} (it holds "
                               f"{sorted(ins)})", fix="re-export the artifact, or benchmark with random inputs",
                               details={"missing": missing, "held": sorted(ins)})
        arrays = [ins[s.name] for s in session.inputs]
        used.extend({"name": s.name, "shape": list(a.shape), "dtype": str(a.dtype), "fill": "reference"}
                    for s, a in zip(session.inputs, arrays))
        return arrays
    resolved = resolve(sig, cfg.get("input_spec"), cfg.get("dims"))
    used.extend(r.to_json() for r in resolved)
    return make_arrays(resolved, cfg.get("seed", 0))


def _runtime_error_fix(used: list[dict]) -> str:
    fix = "the runtime refused these inputs or this model; check the inputs (--input / --dim) against the " \
          "signature (edgekit inspect)"
    if used:
        fix += "; inputs used: " + "; ".join(f"{t['name']} {t['dtype']} {t['shape']} {t['fill']}" for t in used)
    defaults = [t["name"] for t in used if "(default)" in t.get("fill", "")]
    if defaults:
        fix += f". Integer inputs {defaults} got the default range: a rate or a length may need its real value " \
               f"(--input {defaults[0]}:=VALUE)"
    return fix


class _phase_writer:
    def __init__(self, status_file: str | None):
        self.status_file, self.current = status_file, "starting"

    def __call__(self, phase: str) -> None:
        self.current = phase
        if self.status_file:
            with open(self.status_file, "w") as f:
                f.write(phase)


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def _write(result_file: str, obj: dict) -> None:
    with open(result_file, "w") as f:
        json.dump(obj, f, indent=2)


if __name__ == "__main__":
    main(*sys.argv[1:4])
