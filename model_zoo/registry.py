"""The model registry: entrypoints register with a decorator and return a ModelSpec.

    >>> from edgekit.model_zoo import list_models
    >>> "resnet18" in list_models("resnet*")
    True
"""

from __future__ import annotations

import fnmatch
import functools
from typing import Callable

from edgekit.errors import UnknownChoice
from edgekit.spec import ModelSpec

_ENTRYPOINTS: dict[str, Callable[..., ModelSpec]] = {}


def register_model(fn: Callable[..., ModelSpec]) -> Callable[..., ModelSpec]:
    _ENTRYPOINTS[fn.__name__] = fn
    return fn


def register_family(names, create: Callable[..., ModelSpec]) -> None:
    """One entry per named configuration of a family: ``get_spec(name, **overrides)`` calls
    ``create(name, **overrides)``. ``names``: the family's config table (its keys are the model names)."""
    for name in names:
        entry = functools.partial(create, name)
        entry.__name__ = name  # what register_model keys on
        register_model(entry)


def list_models(pattern: str = "*") -> list[str]:
    return sorted(n for n in _ENTRYPOINTS if fnmatch.fnmatch(n, pattern))


def get_spec(name: str, **overrides) -> ModelSpec:
    if name not in _ENTRYPOINTS:
        close = fnmatch.filter(_ENTRYPOINTS, f"*{name}*") or sorted(_ENTRYPOINTS)
        raise UnknownChoice("model", name, close)
    return _ENTRYPOINTS[name](**overrides)


def create_model(name: str, **overrides):
    """Build the nn.Module of a registered model (eval mode)."""
    return get_spec(name, **overrides).build().eval()


def count_macs(model, inputs) -> int:
    """Multiply-accumulates of one forward pass, counted on the aten ops (conv, mm, bmm, ...),
    so functional and custom layers (PHC, shift convs) count too."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*[torch.from_numpy(x) for x in inputs])
    return counter.get_total_flops() // 2
