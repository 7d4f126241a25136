"""Config base: frozen dataclasses with a type tag and a version, and their registry.

Behaviour hangs off the config's type: each technique file defines its config,
registers it here and registers a handler for it (``recipe.register_handler``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from edgekit.errors import EdgekitError, UnknownChoice

_CONFIGS: dict[str, type["CompressionConfig"]] = {}


class ConfigError(EdgekitError):
    """A config value outside its valid range: names the field, the value, the choices and the fix."""

    def __init__(self, config: str, field: str, value: Any, valid: str, fix: str | None = None):
        super().__init__(
            "bad_compression_config",
            f"{config}.{field} = {value!r} is invalid; valid: {valid}",
            fix=fix or f"set {field} to {valid}",
            details={"config": config, "field": field, "value": value, "valid": valid},
        )


@dataclasses.dataclass(frozen=True)
class CompressionConfig:
    """Base of every compression config. Subclasses set ``type_tag``, ``version`` and ``training``."""

    type_tag: ClassVar[str] = ""
    version: ClassVar[int] = 1
    training: ClassVar[bool] = False  # needs fine-tuning data (prepare/step/finalize)

    def to_dict(self) -> dict:
        out = {"type": self.type_tag, "version": self.version}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def skip_reason(self, module) -> str | None:
        """Why this config cannot apply to ``module`` (it is then skipped or, under strict, an error)."""
        return None

    def check(self, name: str, ok: bool, value: Any, valid: str, fix: str | None = None) -> None:
        if not ok:
            raise ConfigError(type(self).__name__, name, value, valid, fix)


def register_config(cls: type[CompressionConfig]) -> type[CompressionConfig]:
    _CONFIGS[cls.type_tag] = cls
    return cls


def config_types() -> list[str]:
    return sorted(_CONFIGS)


def config_from_dict(data: dict) -> CompressionConfig:
    data = dict(data)
    tag = data.pop("type", None)
    version = data.pop("version", 1)
    if tag not in _CONFIGS:
        raise UnknownChoice("compression config type", tag, config_types())
    cls = _CONFIGS[tag]
    if version > cls.version:
        raise EdgekitError(
            "config_version", f"{tag} config version {version} is newer than this edgekit's {cls.version}",
            fix="upgrade edgekit or write the recipe with this version's fields",
        )
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            raise UnknownChoice(f"{tag} config field", key, sorted(known))
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**kwargs)
