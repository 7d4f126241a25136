"""Compression that survives export: recipes of palettization, DKM/eDKM, shift quantization
and sparsity, each recording its compressed form for the exporters and the manifest ledger.

    >>> from edgekit.exporters.compression import compress
    >>> # new_model, report = compress(model, "palettize4")
"""

from edgekit.exporters.compression.config import CompressionConfig, ConfigError, config_from_dict, config_types
from edgekit.exporters.compression.dkm import DKMConfig
from edgekit.exporters.compression.palettize import PalettizeConfig
from edgekit.exporters.compression.presets import PRESETS, get_preset
from edgekit.exporters.compression.recipe import Recipe, Step, compress, load_recipe
from edgekit.exporters.compression.record import WeightRecord, compressed_layers, get_record
from edgekit.exporters.compression.report import CompressionReport
from edgekit.exporters.compression.shift import ShiftQuantConfig
from edgekit.exporters.compression.sparsity import SparsityConfig

__all__ = [
    "CompressionConfig", "ConfigError", "config_from_dict", "config_types", "DKMConfig", "PalettizeConfig",
    "PRESETS", "get_preset", "Recipe", "Step", "compress", "load_recipe", "WeightRecord", "compressed_layers",
    "get_record", "CompressionReport", "ShiftQuantConfig", "SparsityConfig",
]
