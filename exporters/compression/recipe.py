"""Recipes: ordered steps, each a config chosen per module by name regex, then type, then default.

    >>> from edgekit.exporters.compression import Recipe, Step, PalettizeConfig
    >>> r = Recipe("mine", (Step(default=PalettizeConfig(bits=4), by_name={"fc": None}),))
    >>> Recipe.from_json(r.to_json()) == r
    True

``compress(model, recipe)`` deep-copies the model, runs the steps in order and
returns the new model with a per-layer report. ``None`` in a selector means
"leave this module alone".
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from edgekit.errors import EdgekitError
from edgekit.exporters.compression.config import CompressionConfig, ConfigError, config_from_dict

RECIPE_KIND = "edgekit-recipe"
RECIPE_VERSION = 1
# Module types whose ``weight`` the passes compress.
WEIGHT_TYPES = ("Conv1d", "Conv2d", "Linear")
BY_DESIGN_TYPES = ("ShiftConv2d", "ShiftLinear")  # model_zoo/denseshift.py: low-bit weights by design

_HANDLERS: dict[type, Callable] = {}


def register_handler(config_type: type[CompressionConfig]):
    """Register ``handler(model, targets: dict[name, (module, config)], ctx) -> dict`` for a config type."""

    def wrap(fn):
        _HANDLERS[config_type] = fn
        return fn

    return wrap


@dataclass(frozen=True)
class Step:
    """One pass over the model. Resolution per module: first full-match of ``by_name``, then
    ``by_type`` (class name), then ``default``; a ``None`` value skips the module."""

    default: CompressionConfig | None = None
    by_type: dict[str, CompressionConfig | None] = field(default_factory=dict)
    by_name: dict[str, CompressionConfig | None] = field(default_factory=dict)
    min_numel: int = 0  # smaller weights stay dense (tables would cost more than they save)
    only: str | None = None     # re.search on the module name: compress only matching modules
    exclude: str | None = None  # re.search on the module name: leave matching modules alone

    def __post_init__(self):
        for pattern in [*self.by_name, *(p for p in (self.only, self.exclude) if p is not None)]:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ConfigError("Step", "by_name", pattern, "a Python regular expression", f"fix the regex: {e}")
        for t in self.by_type:
            if t not in WEIGHT_TYPES:
                raise ConfigError("Step", "by_type", t, ", ".join(WEIGHT_TYPES))
        if self.min_numel < 0:
            raise ConfigError("Step", "min_numel", self.min_numel, "an integer >= 0")

    def __hash__(self):
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def resolve(self, name: str, module) -> CompressionConfig | None:
        if type(module).__name__ in BY_DESIGN_TYPES:  # DenseShift layers: only configs that declare they cover them
            cfg = self.by_name.get(name, self.default)
            return cfg if getattr(cfg, "covers_shift_layers", False) else None
        if type(module).__name__ not in WEIGHT_TYPES or module.weight.numel() < self.min_numel:
            return None
        if (self.exclude is not None and re.search(self.exclude, name)) or (
                self.only is not None and not re.search(self.only, name)):
            return None
        for pattern, cfg in self.by_name.items():
            if re.fullmatch(pattern, name):
                return cfg
        tname = type(module).__name__
        if tname in self.by_type:
            return self.by_type[tname]
        return self.default

    def targets(self, model) -> dict[str, tuple[Any, CompressionConfig]]:
        out = {}
        for name, module in model.named_modules():
            cfg = self.resolve(name, module)
            if cfg is not None:
                out[name] = (module, cfg)
        return out

    def to_dict(self) -> dict:
        enc = lambda c: None if c is None else c.to_dict()  # noqa: E731
        out = {"default": enc(self.default), "by_type": {k: enc(v) for k, v in self.by_type.items()},
               "by_name": {k: enc(v) for k, v in self.by_name.items()}, "min_numel": self.min_numel}
        # only when set, so the documents (and hashes) of recipes without them do not change
        return out | {k: v for k, v in (("only", self.only), ("exclude", self.exclude)) if v is not None}

    @classmethod
    def from_dict(cls, data: dict) -> "Step":
        dec = lambda d: None if d is None else config_from_dict(d)  # noqa: E731
        return cls(default=dec(data.get("default")),
                   by_type={k: dec(v) for k, v in (data.get("by_type") or {}).items()},
                   by_name={k: dec(v) for k, v in (data.get("by_name") or {}).items()},
                   min_numel=int(data.get("min_numel", 0)), only=data.get("only"), exclude=data.get("exclude"))


@dataclass(frozen=True)
class Recipe:
    name: str
    steps: tuple[Step, ...]

    def __post_init__(self):
        if not self.steps:
            raise ConfigError("Recipe", "steps", self.steps, "at least one Step")
        object.__setattr__(self, "steps", tuple(self.steps))

    @property
    def training(self) -> bool:
        return any(c is not None and c.training for s in self.steps
                   for c in [s.default, *s.by_type.values(), *s.by_name.values()])

    def to_dict(self) -> dict:
        return {"kind": RECIPE_KIND, "version": RECIPE_VERSION, "name": self.name,
                "steps": [s.to_dict() for s in self.steps]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=True)

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict) -> "Recipe":
        if data.get("kind") != RECIPE_KIND:
            raise EdgekitError("bad_recipe", f"not an edgekit recipe: kind={data.get('kind')!r}",
                               fix=f"a recipe document starts with kind: {RECIPE_KIND}, version: {RECIPE_VERSION}")
        if int(data.get("version", 0)) > RECIPE_VERSION:
            raise EdgekitError("bad_recipe", f"recipe version {data['version']} is newer than {RECIPE_VERSION}",
                               fix="upgrade edgekit")
        return cls(name=data.get("name", "custom"), steps=tuple(Step.from_dict(s) for s in data["steps"]))

    @classmethod
    def from_json(cls, text: str) -> "Recipe":
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_yaml(cls, text: str) -> "Recipe":
        import yaml

        return cls.from_dict(yaml.safe_load(text))


def restrict(recipe: Recipe, *, only: str | None = None, exclude: str | None = None) -> Recipe:
    """The recipe with every step limited to modules matching ``only`` and not matching ``exclude``
    (``re.search`` on the module name; a list of patterns means any of them)."""
    only, exclude = _join(only), _join(exclude)
    if only is None and exclude is None:
        return recipe
    steps = []
    for step in recipe.steps:
        ex = exclude if step.exclude is None or exclude is None else f"(?:{step.exclude})|(?:{exclude})"
        on = only if step.only is None or only is None else f"(?=.*(?:{step.only}))(?=.*(?:{only}))"
        steps.append(replace(step, only=on or step.only, exclude=ex or step.exclude))
    return Recipe(recipe.name, tuple(steps))


def _join(patterns) -> str | None:
    if patterns is None or isinstance(patterns, str):
        return patterns
    patterns = list(patterns)
    return None if not patterns else patterns[0] if len(patterns) == 1 else "|".join(f"(?:{p})" for p in patterns)


def load_recipe(ref: str | Path | Recipe) -> Recipe:
    """A preset name, a .json/.yaml/.yml file, or a Recipe."""
    from edgekit.exporters.compression.presets import PRESETS, get_preset

    if isinstance(ref, Recipe):
        return ref
    path = Path(ref)
    if path.suffix in (".json", ".yaml", ".yml"):
        if not path.exists():
            raise EdgekitError("recipe_not_found", f"recipe file {str(path)!r} does not exist",
                               fix=f"pass an existing file or a preset: {', '.join(sorted(PRESETS))}")
        text = path.read_text()
        return Recipe.from_json(text) if path.suffix == ".json" else Recipe.from_yaml(text)
    return get_preset(str(ref))


@dataclass
class Context:
    """What handlers may use besides the model: training data and a seed."""

    data: Any = None   # finetune.TrainData for training-time passes
    seed: int = 0


def compress(model, recipe: Recipe | str, data=None, *, seed: int = 0, only: str | None = None,
             exclude: str | None = None, strict: bool = False):
    """Apply ``recipe`` to a copy of ``model``; returns ``(new_model, CompressionReport)``.

    ``data`` (a ``finetune.TrainData`` with labels, or a ``finetune.DistillData``) is needed by
    training-time configs (DKM, shift QAT, gradual sparsity). ``only``/``exclude`` limit every step
    to matching module names (``re.search``). A layer a config cannot apply to (e.g. N:M sparsity
    on rows not divisible by M) is skipped and listed in the report, or is an error under ``strict``.
    The returned model carries a ``Provenance`` (original model, recipe, skipped layers).
    """
    import torch

    from edgekit.exporters.compression.provenance import Provenance, get_provenance, set_provenance
    from edgekit.exporters.compression.report import CompressionReport

    recipe = restrict(load_recipe(recipe), only=only, exclude=exclude)
    if recipe.training and data is None:
        raise EdgekitError("needs_training_data", f"recipe {recipe.name!r} has training-time steps",
                           fix="pass data=TrainData(...) (labelled) or data=distill_data(model, example_inputs) "
                               "(label-free, see edgekit.exporters.compression.finetune)")
    prev = get_provenance(model)
    root = prev.original if prev is not None else model
    if hasattr(data, "teacher") and data.teacher is None:
        data = replace(data, teacher=root)  # distillation learns from the original model's outputs
    original = {n: m.weight.detach().clone() for n, m in model.named_modules()
                if type(m).__name__ in WEIGHT_TYPES}
    new = copy.deepcopy(model, memo={} if root is model else {id(root): root})
    ctx = Context(data=data, seed=seed)
    step_notes, skipped = [], list(prev.skipped) if prev is not None else []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for i, step in enumerate(recipe.steps):
            by_type: dict[type, dict] = {}
            for name, (module, cfg) in step.targets(new).items():
                reason = cfg.skip_reason(module)
                if reason is not None:
                    skipped.append(_skip(recipe, i, name, module, cfg, reason, strict))
                    continue
                by_type.setdefault(type(cfg), {})[name] = (module, cfg)
            for cfg_type, targets in by_type.items():
                if cfg_type not in _HANDLERS:
                    raise EdgekitError("no_handler", f"no handler registered for {cfg_type.__name__}",
                                       fix="import the technique module that registers it")
                note = _HANDLERS[cfg_type](new, targets, ctx) or {}
                step_notes.append({"step": i, "type": cfg_type.type_tag, "layers": len(targets)} | note)
    new.eval()
    set_provenance(new, Provenance(root, recipe if prev is None else _chain(prev.recipe, recipe), tuple(skipped)))
    return new, CompressionReport.build(recipe, original, new, step_notes, skipped)


def _skip(recipe: Recipe, i: int, name: str, module, cfg, reason: str, strict: bool) -> dict:
    shape = "x".join(str(d) for d in module.weight.shape)
    if strict:
        raise EdgekitError(
            "layer_not_applicable", f"recipe {recipe.name!r} step {i} ({cfg.type_tag}) cannot apply to layer "
            f"'{name}' ({type(module).__name__} {shape}): {reason}",
            fix=f"leave it dense: --exclude '^{re.escape(name)}$' (compress(..., exclude=...)), pick another "
                "config for it, or drop --strict to skip such layers (they are listed in the ledger)",
            details={"layer": name, "step": i, "type": cfg.type_tag, "reason": reason})
    return {"layer": name, "step": i, "type": cfg.type_tag, "shape": list(module.weight.shape), "reason": reason}


def _chain(first: Recipe, second: Recipe) -> Recipe:
    """Compressing a compressed model: the provenance records both recipes in order."""
    return Recipe(f"{first.name}+{second.name}", first.steps + second.steps)
