"""What each model output means, so parity and cost use metrics that fit it (numpy only).

Kinds: ``classes`` (scores over classes: top-1 is meaningful), ``embedding``,
``boxes`` and ``regression`` (cosine, max/mean error and PSNR only). A kind is
declared (``--output NAME:KIND``, ``ModelSpec.output_kinds``) or detected: an
output of shape [batch, C] is ``classes`` only when the model's task says
classification or its dataset carries labels; anything else is ``regression``.

    >>> parse_output_kinds(["output_0:classes", "1:embedding"])
    {'output_0': 'classes', '1': 'embedding'}
    >>> resolve_output_kinds([(1, 10), (1, 4, 8, 8)], task="classification")
    ['classes', 'regression']
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from edgekit.errors import EdgekitError

OUTPUT_KINDS = ("classes", "embedding", "boxes", "regression")


def _bad_kind(item: str, kind: str) -> EdgekitError:
    return EdgekitError(
        "bad_output_kind", f"output kind {kind!r} in {item!r} unknown; choose one of {', '.join(OUTPUT_KINDS)}",
        fix="write --output NAME:KIND, e.g. --output output_0:classes (NAME is output_<i> or its index)",
        details={"value": item, "choices": list(OUTPUT_KINDS)})


def parse_output_kinds(specs: Iterable[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["NAME:KIND", ...]`` (or a mapping) -> {name: kind}; NAME is ``output_<i>`` or ``<i>``."""
    if not specs:
        return {}
    if isinstance(specs, Mapping):
        items = [f"{k}:{v}" for k, v in specs.items()]
    else:
        items = [specs] if isinstance(specs, str) else list(specs)
    out: dict[str, str] = {}
    for item in items:
        name, sep, kind = str(item).rpartition(":")
        if not sep or not name:
            raise EdgekitError("bad_output_kind", f"--output {item!r} is not NAME:KIND",
                               fix=f"write e.g. --output output_0:classes; kinds: {', '.join(OUTPUT_KINDS)}")
        if kind not in OUTPUT_KINDS:
            raise _bad_kind(item, kind)
        out[name] = kind
    return out


def resolve_output_kinds(shapes: Sequence[Sequence[int]], *, task: str | None = None,
                         declared: Mapping[str, str] | None = None, labelled: bool = False,
                         names: Sequence[str] | None = None) -> list[str]:
    """One kind per output: declared (by name or index) first, else detected (see module docstring)."""
    names = list(names or (f"output_{i}" for i in range(len(shapes))))
    declared = dict(declared or {})
    known = set(names) | {str(i) for i in range(len(names))}
    unknown = [k for k in declared if k not in known]
    if unknown:
        raise EdgekitError("unknown_output", f"output {unknown[0]!r} does not exist; the model's outputs are "
                           f"{', '.join(names)}", fix="name an output as output_<i> or by its index <i>",
                           details={"value": unknown[0], "choices": names})
    classification = labelled or (task or "").lower() in ("classification", "image-classification")
    kinds = []
    for i, (name, shape) in enumerate(zip(names, shapes)):
        kind = declared.get(name) or declared.get(str(i))
        if kind is None:
            kind = "classes" if classification and len(shape) == 2 and shape[-1] > 1 else "regression"
        kinds.append(kind)
    return kinds


def has_labels(dataset) -> bool:
    """A dataset callable that can also return labels (``dataset.labels(n)``): its model classifies."""
    return callable(getattr(dataset, "labels", None))
