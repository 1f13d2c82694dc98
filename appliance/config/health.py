"""[health]: heartbeat, device checks, retention, the storage guard."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from appliance.config.base import Seconds, Section


class HealthConfig(Section, frozen=True, kw_only=True):
    # a heartbeat event (log line + access_events row of kind "heartbeat") every N seconds
    heartbeat_interval_s: Seconds = 900.0
    # camera probed this often; "lost" after this many failed probes in a row
    device_check_interval_s: Seconds = 60.0
    device_loss_after: Annotated[int, Meta(ge=1, le=100)] = 3
    # snapshot retention: older than this many days, and oldest first above this total size
    snapshot_max_age_days: Annotated[float, Meta(gt=0)] | None = 90.0
    snapshot_max_total_mb: Annotated[float, Meta(gt=0)] | None = 2048.0
    snapshot_prune_interval_s: Seconds = 3600.0
    # doctor: free space on the data dir's filesystem
    disk_min_free_mb: Annotated[float, Meta(ge=0)] = 200.0
    disk_warn_free_mb: Annotated[float, Meta(ge=0)] = 1024.0
    # the door's own storage guard (appliance/store/guard.py): a reserve file of this size is
    # kept in data_dir and deleted the moment a decision or alert cannot be written (0 = none);
    # below storage_floor_mb free, informational events wait in memory and a low_disk_space
    # alert is raised, so decisions and alerts keep the space that is left
    storage_reserve_mb: Annotated[float, Meta(ge=0, le=1024)] = 16.0
    storage_floor_mb: Annotated[float, Meta(ge=0, le=100000)] = 64.0
    storage_check_interval_s: Annotated[float, Meta(gt=0, le=3600)] = 30.0
    # doctor: TCP connect timeout for SMTP/Twilio/MySQL reachability
    probe_timeout_s: Annotated[float, Meta(gt=0, le=30)] = 3.0
