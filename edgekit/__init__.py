"""edgekit: export compact models to Core ML, ExecuTorch, TFLite and ONNX, verify and benchmark them.

Importing edgekit never imports torch; the export side loads it on first use.

    >>> import edgekit
    >>> edgekit.TARGETS
    ('coreml', 'executorch', 'tflite', 'onnx')
"""

from __future__ import annotations

from edgekit.errors import EdgekitError
from edgekit.targets import TARGET_NAMES as TARGETS

__version__ = "0.1.0"

__all__ = ["EdgekitError", "TARGETS", "export", "load", "benchmark", "__version__"]


def export(model, example_inputs, target: str, out_dir, **kwargs):
    """Export an nn.Module to one target; see edgekit.exporters.pipeline.export_model."""
    from edgekit.exporters.pipeline import export_model

    return export_model(model, example_inputs, target, out_dir, **kwargs)


def load(path, **kwargs):
    """Load an artifact for inference; see edgekit.runtime.load."""
    from edgekit.runtime import load as _load

    return _load(path, **kwargs)


def benchmark(path, **kwargs):
    """Benchmark an artifact in a fresh process; see edgekit.bench.benchmark."""
    from edgekit.bench import benchmark as _benchmark

    return _benchmark(path, **kwargs)
