"""Compact architectures, a registry over them, and offline training data."""

from edgekit.model_zoo.registry import count_macs, create_model, get_spec, list_models, register_model

# Family files register their entrypoints on import (one line each).
from edgekit.model_zoo import resnet  # noqa: F401,E402
from edgekit.model_zoo import vovnet  # noqa: F401,E402
from edgekit.model_zoo import phnn  # noqa: F401,E402
from edgekit.model_zoo import denseshift  # noqa: F401,E402
from edgekit.model_zoo import hourglass  # noqa: F401,E402
from edgekit.model_zoo import llama  # noqa: F401,E402

__all__ = ["list_models", "get_spec", "create_model", "register_model", "count_macs"]
