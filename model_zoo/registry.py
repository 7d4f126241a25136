"""The model registry: entrypoints register with a decorator and return a ModelSpec.

    >>> from edgekit.model_zoo import list_models
    >>> "resnet18" in list_models("resnet*")
    True
"""

from __future__ import annotations

import fnmatch
from typing import Callable

from edgekit.errors import UnknownChoice
from edgekit.spec import ModelSpec

_ENTRYPOINTS: dict[str, Callable[..., ModelSpec]] = {}


def register_model(fn: Callable[..., ModelSpec]) -> Callable[..., ModelSpec]:
    _ENTRYPOINTS[fn.__name__] = fn
    return fn


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
    """Multiply-accumulates of conv and linear layers for one forward pass."""
    import torch
    from torch import nn

    total = 0

    def hook(mod, args, out):
        nonlocal total
        if isinstance(mod, nn.Conv2d | nn.Conv1d):
            k = mod.weight[0].numel()  # in/groups * kernel
            total += out.numel() * k
        elif isinstance(mod, nn.Linear):
            total += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Conv1d | nn.Linear)]
    try:
        with torch.no_grad():
            model(*[torch.from_numpy(x) for x in inputs])
    finally:
        for h in handles:
            h.remove()
    return total
