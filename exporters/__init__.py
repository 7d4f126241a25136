"""Target exporters and compression passes.

    >>> from edgekit.exporters import get_exporter
    >>> get_exporter("onnx").suffix
    '.onnx'
"""

from __future__ import annotations

import importlib

from edgekit.targets import TARGET_NAMES as TARGETS  # noqa: F401 (edgekit.exporters.TARGETS)
from edgekit.targets import target_info


def get_exporter(target: str):
    return importlib.import_module(target_info(target).exporter).EXPORTER
