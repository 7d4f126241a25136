"""Recipe kind ``int8``: post-training int8 (weights per channel, activations per tensor) on every target.

    >>> from edgekit.exporters.compression.int8 import Int8Config, parse_max_loss
    >>> Int8Config(observer="percentile").activations
    'static'
    >>> parse_max_loss(["top1_flip=0.01", "output_0:cos_loss=0.002"])
    [(None, 'top1_flip', 0.01), ('output_0', 'cos_loss', 0.002)]

``compress(model, "int8", data=CALIBRATION)`` leaves the weights as they are (the
quantization happens in each target's own toolchain at export, from calibration
samples) and records: a ``WeightRecord(kind="int8")`` on each targeted Conv/Linear,
and an ``Int8Plan`` on the model (config, calibration source, layers kept in fp32 and
the per-layer sensitivity, filled in at export by ``prepare_export``). Calibration:
``data`` (a folder of images, an .npz, arrays or an iterable of samples; see
``calibration.py``), else the model's dataset (the zoo CNNs: digits not used for parity).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.exporters.compression.config import CompressionConfig, register_config
from edgekit.exporters.compression.recipe import register_handler
from edgekit.exporters.compression.record import WeightRecord, get_record, set_record

log = logging.getLogger(__name__)

PLAN_ATTR = "edgekit_int8"
ACTIVATIONS = ("static", "dynamic")
OBSERVERS = ("minmax", "percentile", "mse", "entropy")
IO_TYPES = ("float32", "int8", "uint8")
METRICS = ("top1_flip", "cos_loss", "rel_l2")


@register_config
@dataclass(frozen=True)
class Int8Config(CompressionConfig):
    """int8 weights (symmetric, per output channel) and int8 activations (per tensor).

    ``activations``: ``static`` (ranges calibrated ahead of time) or ``dynamic`` (ranges computed
    per run: no calibration data, for Linear-heavy models). ``observer`` picks how a static range is
    chosen from the calibration samples. ``io``: the artifact's input/output type where the target
    can change it (TFLite). ``max_loss``: cost limits ``[OUTPUT:]METRIC=VALUE`` (see
    ``parse_max_loss``); layers are kept in fp32, most sensitive first, until the cost is under them.
    """

    type_tag: ClassVar[str] = "int8"
    covers_shift_layers: ClassVar[bool] = True  # DenseShift layers become int8 too (their weights are int8 x scale)
    activations: str = "static"
    observer: str = "minmax"
    percentile: float = 99.99          # observer="percentile": the |activation| percentile kept in range
    calibration_samples: int = 128
    io: str = "float32"
    sensitivity: bool = True           # per-layer sensitivity pass, written to the manifest
    max_loss: tuple[str, ...] = ()

    def __post_init__(self):
        self.check("activations", self.activations in ACTIVATIONS, self.activations, " or ".join(ACTIVATIONS))
        self.check("observer", self.observer in OBSERVERS, self.observer, ", ".join(OBSERVERS))
        self.check("percentile", 90.0 <= float(self.percentile) <= 100.0, self.percentile, "90.0 .. 100.0")
        self.check("calibration_samples", isinstance(self.calibration_samples, int) and
                   1 <= self.calibration_samples <= 100_000, self.calibration_samples, "an integer 1 .. 100000")
        self.check("io", self.io in IO_TYPES, self.io, ", ".join(IO_TYPES))
        object.__setattr__(self, "max_loss", tuple(self.max_loss))
        parse_max_loss(self.max_loss)  # validates
        if self.io != "float32" and self.activations != "static":
            self.check("io", False, self.io, "float32 with dynamic activations",
                       "int8/uint8 I/O needs activations='static' (the input's scale comes from calibration)")


@dataclass
class Int8Plan:
    """What the exporters need beyond the per-layer records (a plain attribute on the model)."""

    config: Int8Config
    calibration: Any = None                  # the user's source; None = the model's dataset
    samples: list[tuple[np.ndarray, ...]] | None = None  # resolved at export
    keep_fp32: dict[str, str] = field(default_factory=dict)  # layer -> why it stays fp32
    sensitivity: list[dict] | None = None
    fallback: dict | None = None
    calibration_source: str = ""

    def to_json(self) -> dict:
        return {"config": self.config.to_dict(), "calibration": {"source": self.calibration_source,
                                                                 "samples": len(self.samples or [])},
                "keep_fp32": self.keep_fp32, "sensitivity": self.sensitivity, "fallback": self.fallback}


def get_plan(model) -> Int8Plan | None:
    return getattr(model, PLAN_ATTR, None)


def int8_layers(model) -> dict[str, Any]:
    """name -> module for the layers the recipe asked to quantize."""
    return {n: m for n, m in model.named_modules() if (r := get_record(m)) is not None and r.kind == "int8"}


@register_handler(Int8Config)
def _apply(model, targets: dict, ctx) -> dict:
    configs = {cfg for _, cfg in targets.values()}
    if len(configs) > 1:
        raise EdgekitError("bad_recipe", "an int8 recipe must use one Int8Config for every layer it quantizes",
                           fix="use one Int8Config; leave layers in fp32 with by_name={'regex': None}")
    config = configs.pop()
    for name, (module, _) in targets.items():
        prior = get_record(module)
        steps: tuple[str, ...] = ("denseshift",) if type(module).__name__.startswith("Shift") else ()
        if prior is not None and prior.kind != "int8":
            _check_combination(name, prior)  # 2-3 bit shift weights: int8 x per-channel scale
            steps = prior.steps
        set_record(module, WeightRecord(kind="int8", bits=8, steps=steps + ("int8",)))
    object.__setattr__(model, PLAN_ATTR, Int8Plan(config=config, calibration=ctx.data))
    return {"activations": config.activations, "observer": config.observer}


def _check_combination(name: str, prior: WeightRecord) -> None:
    if prior.kind != "shift" or (prior.bits or 8) > 3:
        raise EdgekitError(
            "int8_combination_unsupported",
            f"layer '{name}' already holds '{prior.kind}' weights ({prior.bits} bits); int8 activations combine "
            "only with 2-3 bit shift weights (exactly int8 on every target)",
            fix="run the int8 step on dense layers only (by_name={'regex': None}) or use shift3 before int8",
            details={"layer": name, "kind": prior.kind, "bits": prior.bits})


def parse_max_loss(values) -> list[tuple[str | None, str, float]]:
    """``[OUTPUT:]METRIC=VALUE`` strings -> [(output or None, metric, value)]: the one parser of
    ``--max-loss`` (edgekit.loss), in the form the sensitivity pass uses."""
    from edgekit.loss import parse_max_loss as parse

    limits = parse(list(values or ())) or ()  # 'off' leaves the fallback nothing to meet
    return [(lim.output, lim.metric, lim.value) for lim in limits]


def cost(reference: list[np.ndarray], candidate: list[np.ndarray]) -> dict[str, float]:
    """The three cost metrics of one output: reference = original model, one array per sample."""
    ref = np.stack([np.asarray(r, np.float64).reshape(-1) for r in reference])
    got = np.stack([np.asarray(c, np.float64).reshape(-1) for c in candidate])
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1)
    cos = np.where(norms > 0, np.sum(ref * got, axis=1) / np.where(norms > 0, norms, 1.0), 1.0)
    out = {"cos_loss": float(1.0 - cos.mean()),
           "rel_l2": float(np.linalg.norm(got - ref) / (np.linalg.norm(ref) or 1.0))}
    out["top1_flip"] = float(np.mean(ref.argmax(1) != got.argmax(1))) if ref.shape[1] > 1 else 0.0
    return out


def over_limits(costs: dict[str, dict[str, float]], limits) -> list[str]:
    """The limits a {output name: cost} misses, as readable strings (empty: all met)."""
    missed = []
    for output, metric, value in limits:
        names = [output] if output else list(costs)
        for name in names:
            if name not in costs:
                raise EdgekitError("bad_max_loss", f"--max-loss names output {output!r}; the model's outputs are "
                                   f"{', '.join(costs)}", fix=f"use one of {', '.join(costs)} or drop 'OUTPUT:'")
            if costs[name][metric] > value:
                missed.append(f"{name}:{metric}={costs[name][metric]:.4g} > {value:g}")
    return missed


def with_max_loss(recipe, values) -> Any:
    """The recipe with ``max_loss`` set on its int8 steps (for the CLI's --max-loss)."""
    from edgekit.exporters.compression.recipe import Recipe, Step

    parse_max_loss(values)
    swap = lambda c: dataclasses.replace(c, max_loss=tuple(values)) if isinstance(c, Int8Config) else c  # noqa: E731
    steps = tuple(Step(default=swap(s.default), by_type={k: swap(v) for k, v in s.by_type.items()},
                       by_name={k: swap(v) for k, v in s.by_name.items()}, min_numel=s.min_numel)
                  for s in recipe.steps)
    return Recipe(recipe.name, steps)


def cli_recipe(recipe, calibration: str | None, max_loss: list[str] | None):
    """(recipe with --max-loss applied, calibration source) for `edgekit export --calibration/--max-loss`."""
    if recipe is None or not is_int8_recipe(recipe):
        if calibration is None:  # --max-loss alone: the cost gate of any recipe (edgekit.loss)
            return recipe, None
        flag = "--calibration"
        raise EdgekitError("needs_int8_recipe", f"{flag} applies to int8 recipes; the export has "
                           f"{'recipe ' + repr(recipe.name) if recipe else 'no recipe'}",
                           fix="add --recipe int8 (or int8_dynamic, int8_percentile, int8_mse, a .json/.yaml)")
    if calibration is not None:
        from pathlib import Path

        if not Path(calibration).exists():
            raise EdgekitError("calibration_not_found", f"--calibration {calibration!r} does not exist",
                               fix="pass a folder of images or an .npz file with one array per model input")
    return (with_max_loss(recipe, max_loss) if max_loss else recipe), calibration


def is_int8_recipe(recipe) -> bool:
    return any(isinstance(c, Int8Config) for s in recipe.steps
               for c in (s.default, *s.by_type.values(), *s.by_name.values()))


PLOT_NAME = "int8_sensitivity.png"


def write_plot(model, out_dir) -> str | None:
    """The sensitivity bar chart into the artifact directory (None without an int8 plan or matplotlib)."""
    plan = get_plan(model)
    if plan is None or not plan.sensitivity:
        return None
    from pathlib import Path

    from edgekit.exporters.compression.int8_sensitivity import plot

    limits = parse_max_loss(plan.config.max_loss)
    path = plot(plan.sensitivity, Path(out_dir) / PLOT_NAME, plan.keep_fp32, limits[0][1] if limits else "cos_loss")
    if path is None:
        log.info("matplotlib is not installed (extra: bench): no %s", PLOT_NAME)
    return str(path) if path else None


def prepare_export(model, example_inputs: tuple, dataset=None, parity_samples: int = 32) -> Int8Plan | None:
    """Resolve the calibration samples, then run the sensitivity pass and the fallback (once per model)."""
    plan = get_plan(model)
    if plan is None or plan.samples is not None:
        return plan
    from edgekit.exporters.compression.calibration import resolve

    n = plan.config.calibration_samples
    if plan.config.activations == "dynamic" and plan.calibration is None and dataset is None:
        plan.samples, plan.calibration_source = [], "none (dynamic activations)"
    else:
        plan.samples, plan.calibration_source = resolve(plan.calibration, example_inputs, n, dataset,
                                                        skip=parity_samples)
    if plan.samples and (plan.config.sensitivity or plan.config.max_loss):
        from edgekit.exporters.compression.int8_sensitivity import fallback, sensitivity

        plan.sensitivity = sensitivity(model, plan)
        if plan.config.max_loss:
            plan.fallback = fallback(model, plan)
    return plan
