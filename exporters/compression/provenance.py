"""Where a compressed model came from: the original model, the recipe, the layers it skipped.

``compress`` attaches a ``Provenance`` to the model it returns (a plain attribute, so
``state_dict``, ``named_modules`` and ``torch.export`` never see it). The export
pipeline uses it to measure the compression cost against the original model and to
record the recipe and the skipped layers in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ATTR = "edgekit_provenance"


@dataclass(frozen=True)
class Provenance:
    original: Any                     # the uncompressed nn.Module (eval mode)
    recipe: Any                       # the Recipe applied (exclude/only folded into its steps)
    skipped: tuple[dict, ...] = field(default=())   # {"layer", "step", "type", "reason"} per skipped layer

    def __deepcopy__(self, memo) -> "Provenance":
        return self  # read-only metadata: copies of the compressed model share it (never copy the original)


def get_provenance(model) -> Provenance | None:
    return getattr(model, ATTR, None)


def set_provenance(model, prov: Provenance | None) -> None:
    object.__setattr__(model, ATTR, prov)  # bypass nn.Module.__setattr__: not a submodule
