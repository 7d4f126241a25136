"""What a converter failure really was: its own innermost message, the layer it failed on, a log.

Converters wrap the cause (ExecuTorch: "An error occurred when running the
'ChannelsLastTaggedReshapePass' pass" around XNNPACK's "Attempting to convert
non-NHWC compatible node to NHWC"), and name ops, not layers. The failing graph
node is still a local variable of the converter frame that raised (``node``,
``target_node``: a torch.fx Node, or coremltools' node named like the exported
graph's node); its ``nn_module_stack`` gives the module path the user wrote.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

_NODE_LOCALS = ("node", "target_node", "input_node", "n")


def exception_chain(exc: BaseException) -> list[BaseException]:
    seen, out = set(), []
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def root_cause(exc: BaseException) -> str:
    """The innermost exception's first line (the converter's own reason), as 'Type: message'."""
    inner = exception_chain(exc)[-1]
    lines = [ln for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(inner)).splitlines() if ln.strip()]
    return f"{type(inner).__name__}: {lines[0][:400] if lines else ''}".rstrip(": ")


def failing_node(exc: BaseException):
    """The graph node the converter was working on when it raised (deepest frame that holds one), or None."""
    found = None
    for e in exception_chain(exc):
        tb = e.__traceback__
        while tb is not None:
            local = tb.tb_frame.f_locals
            for key in _NODE_LOCALS:
                v = local.get(key)
                if v is not None and "Node" in type(v).__name__ and getattr(v, "name", None):
                    found = v
                    break
            tb = tb.tb_next
        if found is not None and e is exception_chain(exc)[-1]:
            break
    return found


def failing_layer(exc: BaseException, exported_program) -> tuple[str | None, str | None]:
    """(module path, graph node name) of the node the converter failed on."""
    from edgekit.exporters.base import layer_of

    node = failing_node(exc)
    if node is None:
        return None, None
    name = str(node.name)
    if hasattr(node, "meta") and node.meta.get("nn_module_stack"):
        return layer_of(node), name
    if exported_program is not None:  # coremltools' own node objects carry the exported graph's node names
        for n in exported_program.graph.nodes:
            if n.name == name:
                return layer_of(n), name
    return None, name


def workarounds(target: str, text: str, options) -> list[str]:
    """Options that avoid the failing converter path (each is known to apply to this kind of failure)."""
    out = []
    if target == "executorch" and getattr(options, "delegate", None) == "xnnpack" and re.search(
            r"xnnpack|Xnnpack|ChannelsLast|NHWC", text):
        out.append("--executorch-delegate none (exporter option delegate='none': the graph runs on ExecuTorch's "
                   "portable kernels, no XNNPACK pass involved)")
    if target == "executorch" and getattr(options, "requantize", "none") != "none":
        out.append("--executorch-requantize none")
    if target == "coreml" and getattr(options, "compute_precision", None) == "fp16" and re.search(
            r"fp16|float16|overflow", text):
        out.append("--coreml-precision fp32")
    if target == "tflite" and getattr(options, "requantize", "none") != "none":
        out.append("--tflite-requantize none")
    return out


def log_path_for(out_dir: Path) -> Path:
    """Where a failed export's details.log goes: beside the artifact directory that was not written
    (``OUT/<model>/<target>.details.log``), so the staging cleanup does not remove it."""
    return out_dir.parent / f"{out_dir.name}.details.log"


def write_details_log(path: Path, exc: BaseException, log: list[str], header: str) -> Path | None:
    """The converter's full output and every exception of the chain with its traceback."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        parts = [header, "", "== converter output (last lines) =="] + log + ["", "== exceptions, outermost first =="]
        for e in exception_chain(exc):
            parts += ["".join(traceback.format_exception(type(e), e, e.__traceback__, chain=False))]
        path.write_text("\n".join(parts))
        return path
    except OSError:
        return None
