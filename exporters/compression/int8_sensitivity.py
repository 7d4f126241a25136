"""Per-layer int8 sensitivity and the mixed-precision fallback (``--max-loss``), simulated in PyTorch.

The simulation quantizes a layer the way every target's int8 kernels see it: the weight
to int8 per output channel (symmetric, scale = channel peak / 127) and the layer's input
to int8 per tensor (asymmetric, range from the calibration samples by the recipe's
observer). ``sensitivity`` quantizes one layer at a time and measures the cost of the
model's outputs against the original model on the calibration samples; ``fallback``
quantizes every layer, then keeps the most sensitive ones in fp32, one by one, until the
cost is under every ``max_loss`` limit. Targets then leave those layers in fp32.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.exporters.compression.int8 import Int8Plan, cost, int8_layers, over_limits, parse_max_loss

MAX_SAMPLES = 256  # enough for a stable ranking; the pass runs one forward per layer


def _batched(samples: list[tuple[np.ndarray, ...]]):
    import torch

    n = min(len(samples), MAX_SAMPLES)
    return tuple(torch.from_numpy(np.concatenate([s[i] for s in samples[:n]])) for i in range(len(samples[0])))


def _run(model, inputs) -> list[np.ndarray]:
    import torch
    from torch.utils._pytree import tree_flatten

    with torch.no_grad():
        leaves, _ = tree_flatten(model(*inputs))
    return [x.detach().numpy() for x in leaves if isinstance(x, torch.Tensor)]


def input_ranges(model, layers: dict, inputs, observer: str, percentile: float) -> dict[str, tuple[float, float]]:
    """Per layer: the (lo, hi) range of its input over the calibration batch."""
    seen: dict[str, np.ndarray] = {}
    hooks = [m.register_forward_pre_hook(lambda _m, args, n=name: seen.__setitem__(n, args[0].detach().numpy()))
             for name, m in layers.items()]
    try:
        _run(model, inputs)
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for name, x in seen.items():
        if observer == "minmax":
            lo, hi = float(x.min()), float(x.max())
        else:  # percentile, and for mse/entropy a robust stand-in for the ranking
            q = percentile if observer == "percentile" else 99.99
            lo, hi = float(np.percentile(x, 100 - q)), float(np.percentile(x, q))
        out[name] = (min(lo, 0.0), max(hi, 0.0))
    return out


def _fake_quant_input(x, lo: float, hi: float):
    import torch

    scale = max(hi - lo, 1e-12) / 255.0
    zero = round(-lo / scale) - 128
    q = torch.clamp(torch.round(x / scale) + zero, -128, 127)
    return (q - zero) * scale


def _fake_quant_weight(w):
    import torch

    flat = w.reshape(w.shape[0], -1)
    scale = flat.abs().amax(1).clamp_min(1e-12) / 127.0
    return (torch.clamp(torch.round(flat / scale[:, None]), -127, 127) * scale[:, None]).reshape(w.shape)


@contextlib.contextmanager
def simulated(layers: dict, ranges: dict, dynamic: bool = False):
    """Quantize these layers (weights and inputs) while the context is open."""
    import torch

    saved, hooks = {}, []
    with torch.no_grad():
        for name, m in layers.items():
            saved[name] = m.weight.data.clone()
            m.weight.data = _fake_quant_weight(m.weight.data)
            if dynamic:
                hook = lambda _m, args: (_fake_quant_input(args[0], min(float(args[0].min()), 0.0),  # noqa: E731
                                                           max(float(args[0].max()), 0.0)), *args[1:])
            else:
                hook = lambda _m, args, r=ranges[name]: (_fake_quant_input(args[0], *r), *args[1:])  # noqa: E731
            hooks.append(m.register_forward_pre_hook(hook))
    try:
        yield
    finally:
        for h in hooks:
            h.remove()
        for name, m in layers.items():
            m.weight.data = saved[name]


def _costs(reference: list[np.ndarray], got: list[np.ndarray]) -> dict[str, dict[str, float]]:
    return {f"output_{i}": cost(list(r), list(g)) for i, (r, g) in enumerate(zip(reference, got))}


def _setup(model, plan: Int8Plan):
    layers = int8_layers(model)
    inputs = _batched(plan.samples)
    reference = _run(model, inputs)
    ranges = input_ranges(model, layers, inputs, plan.config.observer, plan.config.percentile)
    return layers, inputs, reference, ranges


def sensitivity(model, plan: Int8Plan) -> list[dict]:
    """[{layer, costs: {output: {top1_flip, cos_loss, rel_l2}}, input_range}] in model order."""
    layers, inputs, reference, ranges = _setup(model, plan)
    dynamic = plan.config.activations == "dynamic"
    rows = []
    for name, module in layers.items():
        with simulated({name: module}, ranges, dynamic):
            got = _run(model, inputs)
        rows.append({"layer": name, "costs": _costs(reference, got), "input_range": list(ranges[name])})
    return rows


def _score(row: dict, limits) -> float:
    """Ranking key: the first limited metric (cos_loss when none), worst output."""
    metric = limits[0][1] if limits else "cos_loss"
    return max(c[metric] for c in row["costs"].values())


def fallback(model, plan: Int8Plan) -> dict:
    """Keep the most sensitive layers in fp32 until the simulated cost meets every limit; sets plan.keep_fp32."""
    limits = parse_max_loss(plan.config.max_loss)
    layers, inputs, reference, ranges = _setup(model, plan)
    dynamic = plan.config.activations == "dynamic"
    ranked = sorted(plan.sensitivity or sensitivity(model, plan), key=lambda r: -_score(r, limits))
    keep: list[str] = []
    steps = []
    for i in range(len(ranked) + 1):
        quantized = {n: m for n, m in layers.items() if n not in keep}
        with simulated(quantized, ranges, dynamic):
            costs = _costs(reference, _run(model, inputs))
        missed = over_limits(costs, limits)
        steps.append({"keep_fp32": list(keep), "costs": costs, "missed": missed})
        if not missed:
            break
        if i < len(ranked):
            keep.append(ranked[i]["layer"])
    if steps[-1]["missed"]:
        raise EdgekitError("max_loss_unreachable", f"--max-loss {', '.join(plan.config.max_loss)} is not met even "
                           f"with every layer in fp32 ({'; '.join(steps[-1]['missed'])})",
                           fix="raise the limit; the remaining cost comes from outside the quantized layers",
                           details={"steps": steps})
    final = steps[-1]["costs"]
    for name in keep:
        row = next(r for r in ranked if r["layer"] == name)
        plan.keep_fp32[name] = (f"sensitivity: int8 alone costs {_score(row, limits):.4g} "
                                f"({limits[0][1]}); kept fp32 to meet --max-loss {', '.join(plan.config.max_loss)}")
    return {"limits": list(plan.config.max_loss), "keep_fp32": keep, "steps": steps, "costs": final,
            "all_int8_costs": steps[0]["costs"]}


def plot(rows: list[dict], path: str | Path, keep: dict | None = None, metric: str = "cos_loss") -> Path | None:
    """A bar chart of each layer's cost (log scale); layers kept fp32 in another colour. None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    keep = keep or {}
    names = [r["layer"] for r in rows]
    values = [max(max(c[metric] for c in r["costs"].values()), 1e-9) for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(rows)), 3.6))
    ax.bar(range(len(rows)), values, color=["tab:red" if n in keep else "tab:blue" for n in names])
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), names, rotation=75, fontsize=7)
    ax.set_ylabel(f"{metric} (one layer int8)")
    ax.set_title("int8 sensitivity per layer" + (" (red: kept fp32)" if keep else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
