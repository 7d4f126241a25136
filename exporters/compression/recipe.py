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
from dataclasses import dataclass, field
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

    def __post_init__(self):
        for pattern in self.by_name:
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
        return {"default": enc(self.default), "by_type": {k: enc(v) for k, v in self.by_type.items()},
                "by_name": {k: enc(v) for k, v in self.by_name.items()}, "min_numel": self.min_numel}

    @classmethod
    def from_dict(cls, data: dict) -> "Step":
        dec = lambda d: None if d is None else config_from_dict(d)  # noqa: E731
        return cls(default=dec(data.get("default")),
                   by_type={k: dec(v) for k, v in (data.get("by_type") or {}).items()},
                   by_name={k: dec(v) for k, v in (data.get("by_name") or {}).items()},
                   min_numel=int(data.get("min_numel", 0)))


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


def compress(model, recipe: Recipe | str, data=None, *, seed: int = 0):
    """Apply ``recipe`` to a copy of ``model``; returns ``(new_model, CompressionReport)``.

    ``data`` (a ``finetune.TrainData``) is needed by training-time configs
    (DKM, shift QAT, gradual sparsity).
    """
    import torch

    from edgekit.exporters.compression.report import CompressionReport

    recipe = load_recipe(recipe)
    if recipe.training and data is None:
        raise EdgekitError("needs_training_data", f"recipe {recipe.name!r} has training-time steps",
                           fix="pass data=TrainData(...) (see edgekit.exporters.compression.finetune)")
    original = {n: m.weight.detach().clone() for n, m in model.named_modules()
                if type(m).__name__ in WEIGHT_TYPES}
    new = copy.deepcopy(model)
    ctx = Context(data=data, seed=seed)
    step_notes = []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for i, step in enumerate(recipe.steps):
            by_type: dict[type, dict] = {}
            for name, (module, cfg) in step.targets(new).items():
                by_type.setdefault(type(cfg), {})[name] = (module, cfg)
            for cfg_type, targets in by_type.items():
                if cfg_type not in _HANDLERS:
                    raise EdgekitError("no_handler", f"no handler registered for {cfg_type.__name__}",
                                       fix="import the technique module that registers it")
                note = _HANDLERS[cfg_type](new, targets, ctx) or {}
                step_notes.append({"step": i, "type": cfg_type.type_tag, "layers": len(targets)} | note)
    new.eval()
    return new, CompressionReport.build(recipe, original, new, step_notes)
