"""fp16 numerics of a Core ML fp16 export, checked on Linux where Core ML cannot run.

A Core ML fp16 package computes in float16 (max 65504). Two things the structural
check cannot see break it on the device:

* constants outside fp16: BERT-style encoders build their attention mask as
  ``(1 - mask) * torch.finfo(torch.float32).min``; in fp16 the constant is -inf and
  ``0 * -inf`` is NaN for every real token. ``fix_sentinels`` rewrites such "minus
  infinity" sentinels (|c| >= 1e30 or inf, in op arguments and tensor constants) to
  -1e4 / +1e4: still far beyond any attention logit, so softmax gives the same
  weights, and finite in fp16. Other constants above 65504 are reported, not changed.
* activations that overflow: ``simulate`` runs the exported graph op by op in
  float32 and in float16 (torch CPU kernels) and names the first op whose fp16
  output is inf/NaN where the fp32 one is finite.

The export fails (``fp16_overflow``) when an output is still non-finite in fp16 after the
rewrite, naming the op and its layer; ``--coreml-precision fp32`` is the way around it.
"""

from __future__ import annotations

import math

import numpy as np

from edgekit.errors import EdgekitError

FP16_MAX = 65504.0
SENTINEL = 1e30           # at or above this magnitude a constant means "infinity", not a value
REPLACEMENT = 1e4         # the finite stand-in (the value fp16 BERT ports use)


def fix_sentinels(program) -> list[dict]:
    """Rewrite infinity sentinels in ``program`` (an ExportedProgram, changed in place) to ±1e4.

    Returns what was changed: op, layer, old value."""
    import torch

    from edgekit.exporters.base import layer_of, op_name

    changed = []
    gm = program.graph_module
    for node in gm.graph.nodes:
        if node.op != "call_function":
            continue
        new_args = []
        for a in node.args:
            if isinstance(a, float) and (math.isinf(a) or abs(a) >= SENTINEL):
                changed.append({"op": op_name(node.target), "node": node.name, "layer": layer_of(node), "value": a})
                a = math.copysign(REPLACEMENT, a)
            new_args.append(a)
        node.args = tuple(new_args)
    for store in (program.constants, program.state_dict):
        for name, t in list(store.items()):
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel():
                big = t.abs() >= SENTINEL
                if bool(big.any()):
                    changed.append({"op": "constant", "node": name, "layer": None,
                                    "value": float(t[big].flatten()[0])})
                    fixed = torch.where(big, torch.sign(t) * REPLACEMENT, t)
                    if isinstance(t, torch.nn.Parameter):
                        t.data.copy_(fixed)
                    else:
                        store[name] = fixed
    gm.recompile()
    return changed


def large_constants(program) -> list[dict]:
    """Finite constants above fp16's range that are not sentinels (they become inf in fp16)."""
    from edgekit.exporters.base import layer_of, op_name

    out = []
    for node in program.graph_module.graph.nodes:
        if node.op == "call_function":
            for a in node.args:
                if isinstance(a, float) and FP16_MAX < abs(a) < SENTINEL:
                    out.append({"op": op_name(node.target), "node": node.name, "layer": layer_of(node), "value": a})
    for store in (program.constants, program.state_dict):
        for name, t in store.items():
            if getattr(t, "is_floating_point", lambda: False)() and t.numel():
                peak = float(t.detach().abs().max())
                if FP16_MAX < peak < SENTINEL:
                    out.append({"op": "constant", "node": name, "layer": None, "value": peak})
    return out


def simulate(program, example_inputs) -> dict:
    """Run the graph in fp32 and fp16 side by side; the first op whose fp16 output turns non-finite."""
    import copy

    import torch
    from torch.fx import Interpreter

    from edgekit.exporters.base import layer_of, op_name

    gm32 = program.module()
    gm16 = copy.deepcopy(gm32).half()
    ref: dict[str, object] = {}

    class Recorder(Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            ref[n.name] = out
            return out

    first = {}

    class Half(Interpreter):
        def call_function(self, target, args, kwargs):
            # Core ML stores scalar constants in fp16 too (torch CPU would keep them fp32 inside its fp32
            # opmath, hiding 0 * -inf)
            # and casts to float32 compute in fp16 as well (Core ML's fp16 pass lowers every fp32 op)
            kwargs = {k: (torch.float16 if v is torch.float32 else v) for k, v in kwargs.items()}
            return super().call_function(target, tuple(_fp16(a) for a in args), kwargs)

        def run_node(self, n):
            out = super().run_node(n)
            if not first and n.op == "call_function" and isinstance(out, torch.Tensor) and out.is_floating_point():
                r = ref.get(n.name)
                if not bool(torch.isfinite(out).all()) and isinstance(r, torch.Tensor) and bool(torch.isfinite(r).all()):
                    first.update(op=op_name(n.target), node=n.name, layer=layer_of(n),
                                 fp32_peak=float(r.abs().max()) if r.numel() else 0.0,
                                 nan=bool(torch.isnan(out).any()))
            return out

    with torch.no_grad():
        out32 = Recorder(gm32).run(*example_inputs)
        half_in = [x.half() if x.is_floating_point() else x for x in example_inputs]
        out16 = Half(gm16).run(*half_in)
    flat32, _ = torch.utils._pytree.tree_flatten(out32)
    flat16, _ = torch.utils._pytree.tree_flatten(out16)
    outputs = []
    for a, b in zip(flat32, flat16):
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            b = b.float()
            finite = bool(torch.isfinite(b).all())
            cos = float(torch.nn.functional.cosine_similarity(a.flatten()[None], torch.nan_to_num(b).flatten()[None]))
            outputs.append({"finite": finite, "cosine_to_fp32": cos})
    return {"first_nonfinite": first or None, "outputs": outputs}


def _fp16(a):
    import torch

    if a is torch.float32:
        return torch.float16
    if isinstance(a, float):
        with np.errstate(over="ignore"):
            return float(np.float16(a))
    return a


def fp16_guard(program, example_inputs) -> dict:
    """Fix sentinels, report large constants, simulate fp16; raise when an output is non-finite."""
    changed = fix_sentinels(program)
    report = {"rewritten_constants": changed, "large_constants": large_constants(program)}
    try:
        report["simulation"] = simulate(program, example_inputs)
    except Exception as exc:  # noqa: BLE001 - an op without a CPU fp16 kernel: say so, do not guess
        report["simulation"] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        return report
    sim = report["simulation"]
    if not all(o["finite"] for o in sim["outputs"]):
        bad = sim["first_nonfinite"] or {}
        where = f"op '{bad.get('op')}' (graph node {bad.get('node')}" + (
            f", layer '{bad['layer']}')" if bad.get("layer") else ")")
        raise EdgekitError(
            "fp16_overflow",
            f"the Core ML fp16 package would output {'NaN' if bad.get('nan') else 'inf'}: {where} overflows "
            f"float16 (max {FP16_MAX:g}; its fp32 values reach {bad.get('fp32_peak', float('nan')):.4g})",
            fix="export with --coreml-precision fp32 (options={'compute_precision': 'fp32'}), or keep that "
                "layer's values within ±65504 (e.g. scale it down, or use -1e4 instead of finfo.min in masks)",
            details={"first_nonfinite": bad, "large_constants": report["large_constants"]},
        )
    return report


def as_numpy_summary(report: dict) -> dict:
    """JSON-safe copy (floats, not numpy scalars) for the manifest."""
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        if isinstance(v, (np.floating, float)):
            return float(v) if math.isfinite(float(v)) else str(float(v))
        return v
    return clean(report)
