"""What an ONNX artifact ships without: the exporter's per-node debug metadata.

torch.onnx writes each node's Python stack trace, module path and FX node as ``metadata_props``
(``pkg.torch.onnx.stack_trace`` and friends). No runtime reads them, they hold the exporting
machine's absolute source paths (a privacy leak in a file that goes to phones, and the reason two
checkouts wrote different bytes for the same model), and they are tens of KB per model.
"""

from __future__ import annotations

from pathlib import Path


def strip_debug_metadata(proto) -> None:
    """Drop every node's ``metadata_props`` and ``doc_string`` (graph, subgraphs and functions), in place."""
    def graphs(g):
        yield g
        for node in g.node:
            for attr in node.attribute:
                if attr.g is not None and attr.HasField("g"):
                    yield from graphs(attr.g)
                for sub in attr.graphs:
                    yield from graphs(sub)

    nodes = [n for g in graphs(proto.graph) for n in g.node] + [n for f in proto.functions for n in f.node]
    for node in nodes:
        del node.metadata_props[:]
        node.doc_string = ""


def strip_file(path: str | Path) -> None:
    """``strip_debug_metadata`` on a saved .onnx file (rewritten in place; weights stay inline)."""
    import onnx

    proto = onnx.load(str(path))
    strip_debug_metadata(proto)
    onnx.save(proto, str(path))
