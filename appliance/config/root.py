"""The whole file: Config (every section), parse_config and load_config."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import msgspec
from msgspec.structs import force_setattr

from appliance.config.access import AccessConfig
from appliance.config.admin import AdminConfig
from appliance.config.alerts import AlertsConfig
from appliance.config.base import ConfigError, Section, key_error, validate
from appliance.config.device import DatabaseConfig, DeviceConfig, SecurityConfig, SyncConfig
from appliance.config.hardware import CameraConfig, HardwareConfig
from appliance.config.health import HealthConfig
from appliance.config.mqtt import MqttConfig
from appliance.config.remote import DoorbellConfig, RemoteConfig
from appliance.config.vision import VisionConfig

ENV_CONFIG = "DOORWARD_CONFIG"
ENV_DATABASE_URL = "DOORWARD_DATABASE_URL"
ENV_REPLICA_PATH = "DOORWARD_REPLICA_PATH"
ENV_PEPPER = "DOORWARD_PEPPER"


class Config(Section, frozen=True, kw_only=True):
    device: DeviceConfig = DeviceConfig()
    database: DatabaseConfig = DatabaseConfig()
    security: SecurityConfig = SecurityConfig()
    access: AccessConfig = AccessConfig()
    hardware: HardwareConfig = HardwareConfig()
    camera: CameraConfig = CameraConfig()
    vision: VisionConfig = VisionConfig()
    alerts: AlertsConfig = AlertsConfig()
    admin: AdminConfig = AdminConfig()
    sync: SyncConfig = SyncConfig()
    mqtt: MqttConfig = MqttConfig()
    health: HealthConfig = HealthConfig()
    remote: RemoteConfig = RemoteConfig()
    doorbell: DoorbellConfig = DoorbellConfig()

    def __post_init__(self) -> None:
        gsm = self.alerts.gsm
        if self.remote.sms_commands and (gsm is None or not gsm.enabled):
            raise key_error("remote.sms_commands", "needs the GSM modem: an enabled [alerts.gsm]")

    # ---- derived paths -------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.device.data_dir

    @property
    def replica_path(self) -> Path:
        return self.database.replica_path or self.data_dir / "doorward.db"

    @property
    def mailbox_dir(self) -> Path:
        return self.alerts.mailbox.path or self.data_dir / "mailbox"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "snapshots"

    def with_overrides(self, **sections: dict[str, Any]) -> Config:
        """A copy with some keys replaced, validated like the file (e.g. CLI flags)."""
        data = self.to_builtins(exclude_none=True)
        for section, values in sections.items():
            data.setdefault(section, {}).update(values)
        return parse_config(data, source="overrides")


def parse_config(data: dict[str, Any], source: str = "<dict>", base: Path | None = None) -> Config:
    """Validate `data`; a relative device.data_dir is made absolute against `base` (the config
    file's folder), else the working directory, so the door's state (replica, pepper, budget)
    never depends on where it was started from."""
    return _absolute_data_dir(validate(Config, data, source), base)


def _absolute_data_dir(config: Config, base: Path | None) -> Config:
    d = config.device.data_dir
    if not d.is_absolute():
        absolute = Path(os.path.abspath((base or Path.cwd()) / d))
        # a new section: the default DeviceConfig instance is shared by every Config()
        force_setattr(config, "device", msgspec.structs.replace(config.device, data_dir=absolute))
    return config


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load `path`, else $DOORWARD_CONFIG, else the embedded default (no file at all)."""
    if path is None:
        path = os.environ.get(ENV_CONFIG) or None
    if path is None:
        return _absolute_data_dir(Config(), None)
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {p} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    return parse_config(data, source=str(p), base=p.resolve().parent)
