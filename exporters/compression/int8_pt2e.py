"""PT2E int8 (prepare -> calibrate -> convert) shared by ExecuTorch (XNNPACKQuantizer) and TFLite (litert-torch).

The target's quantizer annotates the graph; annotations on Conv/Linear nodes of layers the
recipe did not ask for, or that the fallback keeps in fp32, are removed (so those run fp32
between a dequantize and a quantize). The recipe's observer replaces the quantizer's
activation observer: ``minmax`` (MinMaxObserver), ``percentile`` (``PercentileObserver``
below), ``mse`` (HistogramObserver: its range search minimises the L2 quantization error).
``entropy`` is not offered by these quantizers and is refused here, naming the target.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgekit.errors import EdgekitError

ANNOTATION_KEY = "quantization_annotation"
WEIGHT_OPS = ("conv1d", "conv2d", "linear", "convolution", "addmm", "mm")


HIST_BINS = 2048


def percentile_observer(percentile: float):
    """A MinMaxObserver whose range is the (100 - p, p) percentiles of every value seen in calibration.

    The values go into a histogram (``HIST_BINS`` bins over the running range, re-binned when a batch
    widens it), so the percentile is taken over the whole calibration set, as the sensitivity pass and
    ONNX Runtime's Percentile calibrator do. (A mean of per-batch percentiles, with the batch-1 samples
    calibration feeds, is about the mean per-image peak: it clipped half the images' peaks, and
    trained vovnet_tiny lost 17 points of accuracy.)"""
    import torch
    from torchao.quantization.pt2e.observer import MinMaxObserver

    class PercentileObserver(MinMaxObserver):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._hist = torch.zeros(HIST_BINS, dtype=torch.float64)
            self._range: tuple[float, float] | None = None

        def forward(self, x_orig):
            if x_orig.numel() == 0:
                return x_orig
            x = x_orig.detach().float().reshape(-1)
            lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
            if self._range is None:
                self._range = (lo, hi if hi > lo else lo + 1e-8)
            elif lo < self._range[0] or hi > self._range[1]:
                self._rebin(min(lo, self._range[0]), max(hi, self._range[1]))
            self._hist += torch.histc(x, HIST_BINS, *self._range).double()
            lo_q, hi_q = self._quantile(100.0 - percentile), self._quantile(percentile)
            self.min_val.copy_(torch.tensor(min(lo_q, 0.0)))
            self.max_val.copy_(torch.tensor(max(hi_q, 0.0)))
            return x_orig

        def _rebin(self, lo: float, hi: float) -> None:
            """Move the counts into bins over the wider range (each old bin's count to its centre's new bin)."""
            old_lo, old_hi = self._range
            centres = old_lo + (torch.arange(HIST_BINS, dtype=torch.float64) + 0.5) * (old_hi - old_lo) / HIST_BINS
            idx = ((centres - lo) / (hi - lo) * HIST_BINS).long().clamp(0, HIST_BINS - 1)
            self._hist = torch.zeros(HIST_BINS, dtype=torch.float64).index_add_(0, idx, self._hist)
            self._range = (lo, hi)

        def _quantile(self, q: float) -> float:
            cum = torch.cumsum(self._hist, 0)
            target = q / 100.0 * float(cum[-1])
            i = int(torch.searchsorted(cum, torch.tensor([target], dtype=torch.float64)).clamp(max=HIST_BINS - 1))
            below = float(cum[i - 1]) if i else 0.0
            frac = (target - below) / max(float(self._hist[i]), 1e-12)
            width = (self._range[1] - self._range[0]) / HIST_BINS
            return self._range[0] + (i + min(max(frac, 0.0), 1.0)) * width

    return PercentileObserver


def exact_weight_observer():
    """Per-channel symmetric int8 (scale = channel peak / 127), except that a weight that is exactly int8 x a
    per-channel scale (2-3 bit shift weights, DenseShift, also after BatchNorm folding) keeps that scale: exact."""
    import torch
    from torchao.quantization.pt2e.observer import PerChannelMinMaxObserver

    from edgekit.exporters.exact_int8 import exact_int8

    class ExactInt8WeightObserver(PerChannelMinMaxObserver):
        def forward(self, x_orig):
            self._seen = x_orig.detach().clone()
            return super().forward(x_orig)

        def calculate_qparams(self):
            scale, zero = super().calculate_qparams()
            w = getattr(self, "_seen", None)
            found = exact_int8(w.numpy()) if w is not None and self.ch_axis == 0 else None
            if found is not None:
                return torch.from_numpy(found[1]).to(scale.dtype), torch.zeros_like(zero)
            return scale, zero

    return ExactInt8WeightObserver


def with_exact_weights(qconfig):
    """The config with ``exact_weight_observer`` for the weights."""
    ctr = exact_weight_observer().with_args(eps=2**-12)
    return dataclasses.replace(qconfig, weight=dataclasses.replace(qconfig.weight, observer_or_fake_quant_ctr=ctr))


def with_observer(qconfig, observer: str, percentile: float, target: str):
    """The quantizer's static config with the recipe's activation observer."""
    from torchao.quantization.pt2e.observer import HistogramObserver, MinMaxObserver

    if observer == "entropy":
        raise EdgekitError("int8_observer_unsupported", f"observer 'entropy' is not available for {target} "
                           "(its PT2E quantizer has no KL-divergence observer)",
                           fix="use observer minmax, percentile or mse for this target (entropy works on onnx)",
                           details={"target": target, "observer": observer})
    ctr = {"minmax": MinMaxObserver, "mse": HistogramObserver,
           "percentile": percentile_observer(percentile)}[observer].with_args(eps=2**-12)
    swap = lambda spec: None if spec is None else dataclasses.replace(spec, observer_or_fake_quant_ctr=ctr)  # noqa: E731
    return dataclasses.replace(qconfig, input_activation=swap(qconfig.input_activation),
                               output_activation=swap(qconfig.output_activation))


def plan_quantizer(model, plan, quantizer_cls, symmetric_config, target: str):
    """(layers to quantize, dynamic?, quantizer) for an int8 plan: the same recipe for every PT2E target
    (per-channel symmetric weights with exact scales, the plan's observer, layers kept fp32 left out)."""
    from edgekit.exporters.compression.int8 import int8_layers

    layers = set(int8_layers(model)) - set(plan.keep_fp32)
    dynamic = plan.config.activations == "dynamic"
    qconfig = with_exact_weights(symmetric_config(is_per_channel=True, is_dynamic=dynamic))
    if not dynamic:
        qconfig = with_observer(qconfig, plan.config.observer, plan.config.percentile, target)
    return layers, dynamic, restrict(quantizer_cls, layers)().set_global(qconfig)


def restrict(quantizer_cls, int8: set[str]):
    """A subclass of the quantizer that leaves Conv/Linear nodes of layers outside ``int8`` unannotated."""
    from edgekit.exporters.base import layer_of

    class Restricted(quantizer_cls):
        def annotate(self, gm):
            gm = super().annotate(gm)
            for node in gm.graph.nodes:
                if (node.op == "call_function" and ANNOTATION_KEY in node.meta
                        and any(op in str(node.target) for op in WEIGHT_OPS) and layer_of(node) not in int8):
                    del node.meta[ANNOTATION_KEY]
            return gm

    return Restricted


def quantize(exported_program, example_inputs: tuple, quantizer, samples: list[tuple[np.ndarray, ...]], *,
             fold: bool = True):
    """prepare_pt2e, run the calibration samples, convert_pt2e; returns the converted GraphModule."""
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    module = exported_program.module()
    _weights_as_parameters(module)
    prepared = prepare_pt2e(module, quantizer)
    with torch.no_grad():
        for sample in samples or [tuple(x.numpy() for x in example_inputs)]:
            prepared(*[torch.from_numpy(np.ascontiguousarray(a)) for a in sample])
    return convert_pt2e(prepared, fold_quantize=fold)


def _weights_as_parameters(gm) -> None:
    """DenseShift layers hold their deployed weight in a buffer; PT2E's conv+BatchNorm fold writes the folded
    weight back with register_parameter, which fails on a buffer of that name: make such buffers parameters."""
    import torch

    for name, buf in list(gm.named_buffers()):
        if name.rpartition(".")[2] != "weight":
            continue
        path, _, attr = name.rpartition(".")
        owner = gm.get_submodule(path) if path else gm
        delattr(owner, attr)
        owner.register_parameter(attr, torch.nn.Parameter(buf.detach().clone(), requires_grad=False))


def weight_facts(converted, int8: set[str]) -> dict[str, dict]:
    """Per int8 layer in the converted graph: int8 weight elements and per-channel scales (for the ledger)."""
    from edgekit.exporters.base import layer_of

    facts = {}
    for node in converted.graph.nodes:
        if node.op != "call_function" or "quantize_per_channel" not in str(node.target):
            continue
        src = node.args[0]
        if "dequantize" in str(node.target):  # folded: int8 constant -> dequantize -> op
            user = next(iter(node.users), None)
        elif node.users:  # unfolded: fp32 constant -> quantize -> dequantize -> op
            user = next(iter(next(iter(node.users)).users), None)
        else:
            continue
        name = layer_of(user) if user is not None else None
        if name in int8 and src.op == "get_attr" and name not in facts:
            w = _attr(converted, src.target)
            scale = _attr(converted, node.args[1].target) if hasattr(node.args[1], "target") else None
            facts[name] = {"numel": int(w.numel()), "channels": int(scale.numel()) if scale is not None else 1}
    return facts


def _attr(module, dotted: str):
    for part in dotted.split("."):
        module = getattr(module, part)
    return module
