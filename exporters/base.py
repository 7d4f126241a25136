"""What every target exporter provides, and helpers they share."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

from edgekit.errors import EdgekitError, MissingDependency, UnknownChoice
from edgekit.targets import DECOMPRESSED, NATIVE, REJECTED, target_info  # noqa: F401 (capabilities, re-exported)


@dataclass
class ConvertResult:
    model_file: str            # name inside the artifact directory
    precision: str             # key into edgekit.parity.TOLERANCES
    info: dict = field(default_factory=dict)  # target-specific facts for the manifest


class Exporter:
    """One per target: ``class ONNXExporter(Exporter, target="onnx")`` takes the name, suffix and capability
    table from edgekit.targets; a subclass sets Options and requires and implements convert()."""

    name: str = ""
    suffix: str = ""
    runtime: str = ""                       # edgekit.runtime key used for parity
    requires: tuple[tuple[str, str], ...] = ()  # (import name, pip extra)
    Options: type = object
    capabilities: dict[str, str] = {}       # compressed weight kind -> NATIVE | DECOMPRESSED | REJECTED

    def __init_subclass__(cls, target: str | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if target is not None:
            t = target_info(target)
            cls.name, cls.suffix, cls.runtime, cls.capabilities = t.name, t.suffix, t.name, dict(t.compressed)

    def available(self) -> str | None:
        """None when usable, else the reason with the extra to install."""
        for module, extra in self.requires:
            if importlib.util.find_spec(module) is None:
                return f"'{module}' is not installed; install the '{extra}' extra: pip install '.[{extra}]'"
        return None

    def ensure_available(self) -> None:
        for module, extra in self.requires:
            if importlib.util.find_spec(module) is None:
                raise MissingDependency(module, extra, f"exporting to {self.name}")

    def make_options(self, values: dict | None) -> Any:
        values = dict(values or {})
        known = {f.name for f in fields(self.Options)}
        for key in values:
            if key not in known:
                raise UnknownChoice(f"{self.name} option", key, sorted(known))
        return self.Options(**values)

    def convert(self, model, exported_program, example_inputs: tuple, options, out_dir: Path) -> ConvertResult:
        raise NotImplementedError


def option(default: Any, help: str, *, flag: str | None = None, llm: Any = None) -> Any:
    """An options-dataclass field that the CLI offers as ``--<target>-<flag>`` (flag defaults to the field
    name), with ``help``; see edgekit.cli.target_flags. ``llm``: an LLM export honours it too (True: same
    default; another value: the LLM default; None: not for LLMs), see exporters/llm_options.py."""
    return field(default=default, metadata={"help": help, "flag": flag, "llm": llm})


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UnknownChoice(what, value, choices)


@contextlib.contextmanager
def captured_native_output() -> Iterator[list[str]]:
    """Silence converters' own prints (C++ and Python) and keep them for error messages."""
    log: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        levels = {n: logging.getLogger(n).level for n in ("coremltools", "torch", "root", "absl")}
        for n in levels:
            logging.getLogger(n).setLevel(logging.ERROR)
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield log
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            for n, lvl in levels.items():
                logging.getLogger(n).setLevel(lvl)
            tmp.seek(0)
            log.extend(tmp.read().decode(errors="replace").splitlines()[-200:])


_OP_RE = re.compile(r"aten[.:]{1,2}([A-Za-z0-9_]+)")


def op_name(target: Any) -> str:
    m = _OP_RE.search(str(target))
    return f"aten.{m.group(1)}" if m else getattr(target, "__name__", str(target))


def layer_of(node) -> str | None:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return None
    path = list(stack.values())[-1][0]
    return re.sub(r"^L\['self'\]\.?|^L__self___?", "", str(path)) or "<top>"


def diagnose(exc: BaseException, exported_program, target: str, log: list[str], options=None,
             log_file: Path | None = None) -> EdgekitError:
    """Turn a converter failure into an error naming the op, the layer and the target.

    The converter's own innermost message is kept (``failure.root_cause``), the layer is the
    one the converter was converting when it raised (``failure.failing_layer``), options that
    avoid the failing path are suggested, and the full output goes to ``log_file``.
    Converters name the failing op in different spellings (``aten.linalg_inv_ex.default``,
    ``linalg_inv``, ``fft_rfft``); match them against the ops of the exported graph.
    """
    from edgekit.errors import UnsupportedOp
    from edgekit.exporters import failure

    text = "\n".join(_exception_chain(exc)) + "\n" + "\n".join(log[-60:])
    clash = re.search(r"target (\S+) references nonexistent attribute (\S+) of (\S+)", text)
    if clash:  # a submodule named like a GraphModule attribute (e.g. `meta`) breaks torch.export's unlifting
        return EdgekitError(
            "reserved_module_name",
            f"{target} conversion failed: submodule '{clash.group(3)}' (parameter {clash.group(1)}) is shadowed "
            "by an attribute of torch's GraphModule with the same name",
            fix=f"rename the submodule '{clash.group(3)}' in your model (e.g. '{clash.group(3)}_layer')",
            details={"target": target, "module": clash.group(3)},
        )
    cause = failure.root_cause(exc)
    reason = _first_line(exc)
    if cause and cause.split(": ", 1)[-1] not in reason:
        reason = f"{reason} (cause: {cause})"
    layer, node_name = failure.failing_layer(exc, exported_program)
    saved = failure.write_details_log(log_file, exc, log, f"{target} conversion failed: {reason}") if log_file else None
    see = f"; the converter's full output is in {saved}" if saved else ""
    options_fix = failure.workarounds(target, text, options)
    nodes = [n for n in exported_program.graph.nodes if n.op == "call_function"] if exported_program else []
    suggestion = (("try " + " or ".join(options_fix) + "; else " if options_fix else "")
                  + f"rewrite the layer that calls it with ops {target} supports, export only the other targets "
                  f"(drop --target {target}), or move it out of the model into pre/post-processing{see}")
    extra = {"cause": cause, "node": node_name, "workarounds": options_fix, "log_file": str(saved) if saved else None}
    failed = next((n for n in nodes if n.name == node_name), None) if node_name else None
    best = None
    for node in nodes:
        for variant in _spellings(op_name(node.target)):
            if re.search(rf"(?<![A-Za-z0-9]){re.escape(variant)}(?![A-Za-z0-9])", text):
                if best is None or len(variant) > best[1]:
                    best = (node, len(variant))
    # Complex tensors are a common root cause that converters report on the op downstream.
    complex_node = next((n for n in nodes if "complex" in str(getattr(n.meta.get("val"), "dtype", ""))), None)
    if complex_node is not None and (best is None or best[0] is not complex_node):
        err = UnsupportedOp(target, op_name(complex_node.target), layer_of(complex_node),
                            f"it produces complex tensors, which {target} cannot hold ({reason})", suggestion)
        err.details |= extra
        return err
    if best is not None and (failed is None or op_name(failed.target) == op_name(best[0].target)):
        node = failed or best[0]  # the node the converter was on, not the first one with that op
        err = UnsupportedOp(target, op_name(node.target), layer or layer_of(node), reason, suggestion)
        err.details |= extra
        return err
    ops = sorted({op_name(n.target) for n in nodes})
    named = f"; the graph's ops are {', '.join(ops)}" if 0 < len(ops) <= 12 else ""
    where = f" in layer '{layer}' (graph node {node_name})" if layer else (f" at graph node {node_name}" if node_name
                                                                          else "")
    return EdgekitError(
        "conversion_failed",
        f"{target} conversion failed{where}: {reason}{named}",
        fix=(("try " + " or ".join(options_fix) + "; else " if options_fix else "")
             + f"simplify that layer or drop --target {target}"
             + (f"; the converter's full output is in {saved}" if saved else "")),
        details={"target": target, "log": log[-40:], "ops": ops, "layer": layer} | extra,
    )


def _exception_chain(exc: BaseException) -> list[str]:
    seen, out = set(), []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        out.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return out


def _spellings(op: str) -> set[str]:
    """aten.linalg_inv_ex -> {aten.linalg_inv_ex, linalg_inv_ex, linalg_inv}."""
    base = op.split(".", 1)[1] if op.startswith("aten.") else op
    variants = {op, base, base.lstrip("_")}
    if base.endswith("_ex"):
        variants.add(base[:-3])
    return {v for v in variants if len(v) > 2}


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:400]
