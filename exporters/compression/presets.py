"""Named recipes. Training-time presets are sized for digits-scale models (a few epochs).

    >>> from edgekit.exporters.compression.presets import get_preset
    >>> get_preset("palettize4").steps[0].default.bits
    4
"""

from __future__ import annotations

from edgekit.errors import UnknownChoice
from edgekit.exporters.compression.dkm import DKMConfig
from edgekit.exporters.compression.int8 import Int8Config
from edgekit.exporters.compression.palettize import PalettizeConfig
from edgekit.exporters.compression.recipe import Recipe, Step
from edgekit.exporters.compression.shift import ShiftQuantConfig
from edgekit.exporters.compression.sparsity import SparsityConfig

# Gradual sparsity over 4 epochs of digits (23 steps/epoch at batch 64): masks every 5 steps up to step 60.
_GRADUAL50 = SparsityConfig(sparsity=0.5, schedule="gradual", begin_step=0, end_step=60, frequency=5,
                            epochs=4.0, lr=1e-3)

PRESETS: dict[str, Recipe] = {r.name: r for r in (
    Recipe("palettize2", (Step(default=PalettizeConfig(bits=2)),)),
    Recipe("palettize3", (Step(default=PalettizeConfig(bits=3)),)),
    Recipe("palettize4", (Step(default=PalettizeConfig(bits=4)),)),
    Recipe("palettize8", (Step(default=PalettizeConfig(bits=8)),)),
    Recipe("palettize4_grouped", (Step(default=PalettizeConfig(bits=4, granularity="per_grouped_channel",
                                                               group_size=16)),)),
    # Core ML stores a scaled table as one table per output channel: not worth it below ~1K weights
    Recipe("palettize4_scaled", (Step(default=PalettizeConfig(bits=4, per_channel_scale=True), min_numel=1024),)),
    Recipe("dkm2", (Step(default=DKMConfig(bits=2)),)),
    Recipe("dkm4", (Step(default=DKMConfig(bits=4)),)),
    Recipe("edkm3", (Step(default=DKMConfig(bits=3, edkm=True)),)),
    Recipe("shift3", (Step(default=ShiftQuantConfig(bits=3)),)),
    Recipe("shift3_qat", (Step(default=ShiftQuantConfig(bits=3, qat=True, epochs=4.0, lr=1e-3)),)),
    Recipe("shift4", (Step(default=ShiftQuantConfig(bits=4)),)),
    Recipe("sparse50", (Step(default=SparsityConfig(sparsity=0.5)),)),
    Recipe("sparse50_gradual", (Step(default=_GRADUAL50),)),
    # the stem conv of a 3-channel 3x3 input has 27 weights per row, not a multiple of 4
    Recipe("sparse24", (Step(default=SparsityConfig(structure="n:m", n=2, m=4), by_name={r"stem\..*": None}),)),
    Recipe("sparse50_palettize4", (Step(default=_GRADUAL50), Step(default=PalettizeConfig(bits=4)))),
    # 2:4 + a 4-bit table: what edgekit's sparse_lut_linear(_q8) kernels run (2.75 bits a weight)
    Recipe("sparse24_palettize4", (Step(default=SparsityConfig(structure="n:m", n=2, m=4), by_name={r"stem\..*": None}),
                                   Step(default=PalettizeConfig(bits=4)))),
    Recipe("sparse50_shift3", (Step(default=SparsityConfig(sparsity=0.5)), Step(default=ShiftQuantConfig(bits=3)))),
    # post-training int8 (int8.py): calibrated static activations; dynamic for Linear-heavy models
    Recipe("int8", (Step(default=Int8Config()),)),
    Recipe("int8_percentile", (Step(default=Int8Config(observer="percentile")),)),
    Recipe("int8_mse", (Step(default=Int8Config(observer="mse")),)),
    Recipe("int8_dynamic", (Step(default=Int8Config(activations="dynamic")),)),
)}


def get_preset(name: str) -> Recipe:
    if name not in PRESETS:
        raise UnknownChoice("compression recipe", name, sorted(PRESETS) + ["<path>.json", "<path>.yaml"])
    return PRESETS[name]
