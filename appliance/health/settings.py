"""Owns the [health] config section: heartbeat, device-loss watch, retention and disk bounds."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from appliance.config import Seconds, _Section


class HealthConfig(_Section):
    # a heartbeat event (log line + access_events row of kind "heartbeat") every N seconds
    heartbeat_interval_s: Seconds = 900.0
    # camera/modem probed this often; "lost" after this many failed probes in a row
    device_check_interval_s: Seconds = 60.0
    device_loss_after: int = Field(default=3, ge=1, le=100)
    # snapshot retention: older than this many days, and oldest first above this total size
    snapshot_max_age_days: Annotated[float, Field(gt=0)] | None = 90.0
    snapshot_max_total_mb: Annotated[float, Field(gt=0)] | None = 2048.0
    snapshot_prune_interval_s: Seconds = 3600.0
    # doctor: free space on the data dir's filesystem
    disk_min_free_mb: Annotated[float, Field(ge=0)] = 200.0
    disk_warn_free_mb: Annotated[float, Field(ge=0)] = 1024.0
    # doctor: TCP connect timeout for SMTP/Twilio/MySQL reachability
    probe_timeout_s: Annotated[float, Field(gt=0, le=30)] = 3.0


def health_settings(config: Any) -> HealthConfig:
    """The config's [health] section once the lead wires it into Config, else the defaults."""
    section = getattr(config, "health", None)
    return section if isinstance(section, HealthConfig) else HealthConfig()
