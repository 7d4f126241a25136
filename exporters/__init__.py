"""Target exporters and compression passes.

    >>> from edgekit.exporters import get_exporter
    >>> get_exporter("onnx").suffix
    '.onnx'
"""

from __future__ import annotations

import importlib

from edgekit.errors import UnknownChoice

TARGETS = ("coreml", "executorch", "tflite", "onnx")


def get_exporter(target: str):
    if target not in TARGETS:
        raise UnknownChoice("target", target, TARGETS)
    return importlib.import_module(f"edgekit.exporters.{target}").EXPORTER
