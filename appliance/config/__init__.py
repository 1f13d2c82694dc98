"""Owns Doorward's configuration: one TOML file, validated strictly, secrets from env or files.

One module per part of the file (device.py: [device] [database] [security] [sync]; access.py;
hardware.py: [hardware] [camera]; vision.py; alerts.py; admin.py; mqtt.py; health.py), the
section base and the validation in base.py, the whole file and its loading in root.py.
"""

from appliance.config.access import LONGEST_CODE, AccessConfig
from appliance.config.admin import AdminConfig
from appliance.config.alerts import (
    ALERT_KINDS,
    AlertsConfig,
    EmailConfig,
    GsmConfig,
    MailboxConfig,
    Recipient,
    TwilioConfig,
)
from appliance.config.base import MAX_SECONDS, ConfigError, SecretRef, Section
from appliance.config.device import DatabaseConfig, DeviceConfig, SecurityConfig, SyncConfig
from appliance.config.hardware import CameraConfig, HardwareConfig, PinsConfig
from appliance.config.health import HealthConfig
from appliance.config.mqtt import MqttConfig
from appliance.config.remote import DoorbellConfig, RemoteConfig
from appliance.config.root import (
    ENV_CONFIG,
    ENV_DATABASE_URL,
    ENV_PEPPER,
    ENV_REPLICA_PATH,
    Config,
    load_config,
    parse_config,
)
from appliance.config.vision import VisionConfig

__all__ = [
    "ALERT_KINDS", "ENV_CONFIG", "ENV_DATABASE_URL", "ENV_PEPPER", "ENV_REPLICA_PATH",
    "LONGEST_CODE", "MAX_SECONDS", "AccessConfig", "AdminConfig", "AlertsConfig",
    "CameraConfig", "Config", "ConfigError", "DatabaseConfig", "DeviceConfig", "DoorbellConfig",
    "EmailConfig", "GsmConfig", "HardwareConfig", "HealthConfig", "MailboxConfig", "MqttConfig",
    "PinsConfig", "Recipient", "RemoteConfig", "SecretRef", "Section", "SecurityConfig",
    "SyncConfig", "TwilioConfig", "VisionConfig", "load_config", "parse_config",
]  # fmt: skip
