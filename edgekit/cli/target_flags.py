"""CLI flags generated from the exporters' options dataclasses: ``--<target>-<option>`` for every field.

A field's flag is its name with dashes (or ``option(..., flag=...)``), its default and help come
from the dataclass, booleans get ``--no-<target>-<option>``; ``target_options(args)`` turns the
parsed flags back into the ``{target: {field: value}}`` that ``export_spec`` takes.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, Field, fields

from edgekit.targets import TARGET_NAMES


def _option_fields(target: str, llm: bool = False) -> list[tuple[str, Field]]:
    """(argparse dest, field) for each field of ``target``'s options dataclass (``llm``: those LLM exports take)."""
    from edgekit.exporters import get_exporter

    out = []
    for f in fields(get_exporter(target).Options):
        if llm and f.metadata.get("llm") is None:
            continue
        flag = f.metadata.get("flag") or f.name
        out.append((f"{target}_{flag}".replace("-", "_"), f))
    return out


def add_target_flags(parser: argparse.ArgumentParser, targets: tuple[str, ...] = TARGET_NAMES, *,
                     llm: bool = False) -> None:
    """``llm``: only the options LLM exports take, with their LLM defaults (exporters/llm_options.py)."""
    for target in targets:
        for dest, f in _option_fields(target, llm):
            default = f.metadata["llm"] if llm and f.metadata["llm"] is not True else f.default
            kwargs = {"dest": dest, "default": default, "help": f.metadata.get("help")}
            if f.default is MISSING:
                raise TypeError(f"{target} option {f.name} needs a default to become a CLI flag")
            if isinstance(f.default, bool):
                kwargs["action"] = argparse.BooleanOptionalAction
            elif isinstance(f.default, int):
                kwargs["type"] = int
            parser.add_argument("--" + dest.replace("_", "-"), **kwargs)


def target_options(args: argparse.Namespace, targets: tuple[str, ...] = TARGET_NAMES, *,
                   llm: bool = False) -> dict[str, dict]:
    """{target: {option field: value}} from the flags ``add_target_flags`` added."""
    return {t: {f.name: getattr(args, dest) for dest, f in _option_fields(t, llm) if hasattr(args, dest)}
            for t in targets}
