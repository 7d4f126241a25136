"""Per-target options of an LLM export, from each exporter's options dataclass.

An LLM export takes the fields of the target's options dataclass that are marked for
it (``option(..., llm=...)``): ``llm=True`` with the classifier default, or the value
the LLM path defaults to (Core ML: iOS18, which multifunction packages need). Any
other field is refused by name rather than silently ignored.

    >>> from edgekit.exporters.llm_options import llm_options
    >>> llm_options("onnx").opset, llm_options("coreml").minimum_deployment_target
    (18, 'iOS18')
"""

from __future__ import annotations

from dataclasses import Field, fields

from edgekit.errors import EdgekitError


def llm_fields(target: str) -> dict[str, Field]:
    """The options-dataclass fields an LLM export of ``target`` honours."""
    from edgekit.exporters import get_exporter

    return {f.name: f for f in fields(get_exporter(target).Options) if f.metadata.get("llm") is not None}


def llm_default(f: Field):
    return f.default if f.metadata["llm"] is True else f.metadata["llm"]


def llm_options(target: str, values: dict | None = None):
    """``target``'s options dataclass for an LLM export: the LLM defaults, then ``values``."""
    from edgekit.exporters import get_exporter

    honoured = llm_fields(target)
    unknown = sorted(set(values or {}) - set(honoured))
    if unknown:
        raise EdgekitError("option_not_for_llm", f"{target} option(s) {', '.join(unknown)} do not apply to LLM "
                           f"exports; they take {', '.join(honoured) or 'no options'}",
                           fix=f"drop {', '.join(unknown)}", details={"target": target, "options": unknown,
                                                                      "choices": list(honoured)})
    return get_exporter(target).make_options({n: llm_default(f) for n, f in honoured.items()} | dict(values or {}))
