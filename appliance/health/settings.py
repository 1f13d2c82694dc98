"""Owns access to the [health] config section (defined in appliance.config)."""

from __future__ import annotations

from typing import Any

from appliance.config import HealthConfig


def health_settings(config: Any) -> HealthConfig:
    """The config's [health] section (the defaults for objects without one)."""
    section = getattr(config, "health", None)
    return section if isinstance(section, HealthConfig) else HealthConfig()


__all__ = ["HealthConfig", "health_settings"]
