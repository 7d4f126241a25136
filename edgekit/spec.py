"""ModelSpec: what the zoo (or a user's file) hands to the exporters."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass
class ModelSpec:
    """A model plus everything needed to export and verify it.

    ``build`` returns an ``nn.Module`` in eval mode; ``example_inputs(seed)``
    returns a tuple of numpy arrays (batch included). ``dataset(n)``, when set,
    returns ``n`` real input samples (a tuple of arrays with a leading sample
    axis) that parity and calibration use instead of random data; a dataset with a
    ``labels(n)`` method is labelled. ``output_kinds`` maps an output (``output_<i>``
    or ``<i>``) to its kind (``edgekit.outputs.OUTPUT_KINDS``: classes, embedding,
    boxes, regression), which picks the parity and compression-cost metrics;
    undeclared outputs are detected (``edgekit.outputs.resolve_output_kinds``).
    """

    name: str
    build: Callable[[], Any]
    example_inputs: Callable[[int], tuple[np.ndarray, ...]]
    family: str = "custom"
    task: str = "classification"
    paper: str = ""
    dataset: Callable[[int], tuple[np.ndarray, ...]] | None = None
    input_names: tuple[str, ...] | None = None
    hints: dict = field(default_factory=dict)
    output_kinds: dict[str, str] = field(default_factory=dict)


def forward_arg_names(module: Any, count: int) -> tuple[str, ...]:
    """Names for the model's inputs: forward()'s parameter names where they exist."""
    try:
        params = [
            p.name
            for p in inspect.signature(module.forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    names = params[:count] if len(params) >= count else []
    return tuple(names) if names else tuple(f"input_{i}" for i in range(count))


def random_like(examples: tuple[np.ndarray, ...], seed: int) -> tuple[np.ndarray, ...]:
    """Seeded random inputs with the examples' shapes and dtypes."""
    rng = np.random.default_rng(seed)
    out = []
    for x in examples:
        if np.issubdtype(x.dtype, np.floating):
            out.append(rng.standard_normal(x.shape).astype(x.dtype))
        elif np.issubdtype(x.dtype, np.integer):
            high = max(int(x.max()) + 1, 2)
            out.append(rng.integers(0, high, size=x.shape).astype(x.dtype))
        elif x.dtype == np.bool_:
            out.append(rng.integers(0, 2, size=x.shape).astype(np.bool_))
        else:
            out.append(x.copy())
    return tuple(out)
