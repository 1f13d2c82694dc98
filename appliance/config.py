"""Owns Doorward's configuration: one TOML file, validated strictly, secrets from env or files."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

ENV_CONFIG = "DOORWARD_CONFIG"
ENV_DATABASE_URL = "DOORWARD_DATABASE_URL"
ENV_REPLICA_PATH = "DOORWARD_REPLICA_PATH"
ENV_PEPPER = "DOORWARD_PEPPER"


class ConfigError(ValueError):
    """The configuration is invalid; the message names every offending key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


BcmPin = Annotated[int, Field(ge=0, le=27)]
Seconds = Annotated[float, Field(gt=0)]


class SecretRef(_Section):
    """Where a secret lives: an environment variable, or a file (e.g. a systemd credential)."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if self.env and self.file:
            raise ValueError("give either env or file, not both")
        return self

    def resolve(self, key: str) -> str | None:
        """The secret's value, or None when no source is configured.

        Raises ConfigError naming `key` when the source is configured but empty or unreadable.
        """
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError(f"{key}: environment variable {self.env} is not set")
            return value
        if self.file:
            try:
                return self.file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{key}: cannot read secret file {self.file}: {exc}") from exc
        return None


class DeviceConfig(_Section):
    id: str = Field(default="door-1", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = "Front door"
    data_dir: Path = Path("var")


class DatabaseConfig(_Section):
    # Central database (MySQL in production), e.g. mysql+pymysql://door@db.lan:3306/doorward
    # (no password in the URL: see `password`). None = embedded default: the replica file is
    # also the central database and no sync runs.
    url: str | None = None
    password: SecretRef = SecretRef()
    # Local replica the door decides from. None = <data_dir>/doorward.db
    replica_path: Path | None = None
    # TLS to MySQL: tls = true (or an ssl_ca) requires it and verifies the server certificate
    tls: bool = False
    ssl_ca: Path | None = None
    ssl_cert: Path | None = None
    ssl_key: Path | None = None
    ssl_verify_identity: bool = True
    connect_timeout_s: Seconds = 5.0
    # a read or write to MySQL taking longer than this fails (a cut network never hangs sync)
    io_timeout_s: Seconds = 30.0


class SecurityConfig(_Section):
    # HMAC key ("pepper") mixed into PIN hashes; kept on the device, never in the database.
    # Unset: $DOORWARD_PEPPER if set, else <data_dir>/pepper (created once, mode 0600).
    # Every door and admin page sharing one central database must use the same pepper.
    pepper: SecretRef = SecretRef()


class AccessConfig(_Section):
    code_timeout_s: Seconds = 10.0
    max_code_length: int = Field(default=16, ge=4, le=32)
    relay_pulse_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    wrong_code_limit: int = Field(default=5, ge=1)
    wrong_code_window_s: Seconds = 600.0
    lockout_s: Seconds = 300.0
    face_fail_limit: int = Field(default=3, ge=1)
    face_fail_window_s: Seconds = 600.0
    held_open_s: Seconds = 30.0
    # after the relay locks again, the door may still be opened this long without a forced alert
    entry_grace_s: Annotated[float, Field(ge=0)] = 2.0
    exit_pulse_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    motion_wake_s: Seconds = 30.0
    # someone the PIR saw who enters no code for this long is identified 1:N against every
    # template; a face that matches nobody raises an "unknown_person" alert. 0 = never.
    unknown_person_after_s: Annotated[float, Field(ge=0)] = 20.0


class PinsConfig(_Section):
    """BCM pin numbers. Defaults follow the wiring table in the README."""

    keypad_rows: list[BcmPin] = Field(default=[5, 6, 13, 19], min_length=4, max_length=4)
    keypad_cols: list[BcmPin] = Field(default=[12, 16, 20, 21], min_length=4, max_length=4)
    pir: BcmPin = 4
    relay: BcmPin = 17
    relay_active_high: bool = True
    door_contact: BcmPin = 27
    exit_button: BcmPin = 22
    tamper: BcmPin = 23
    status_led: BcmPin = 24
    buzzer: BcmPin = 25

    @model_validator(mode="after")
    def _distinct(self) -> PinsConfig:
        seen: dict[int, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            for pin in value if isinstance(value, list) else [value]:
                if isinstance(pin, bool):
                    continue
                if pin in seen:
                    raise ValueError(f"BCM pin {pin} is used by both {seen[pin]} and {name}")
                seen[pin] = name
        return self


class HardwareConfig(_Section):
    # "auto": real pins on a Pi, gpiozero MockFactory elsewhere. "mock": always simulated.
    pin_factory: Literal["auto", "mock", "lgpio", "rpigpio", "native"] = "auto"
    pins: PinsConfig = PinsConfig()
    keypad_layout: list[str] = Field(
        default=["123A", "456B", "789C", "*0#D"], min_length=4, max_length=4
    )
    debounce_ms: int = Field(default=30, ge=0, le=500)
    door_contact_closed_when: Literal["low", "high"] = "low"
    tamper_alarm_when: Literal["low", "high"] = "high"


class CameraConfig(_Section):
    kind: Literal["replay", "opencv", "picamera2"] = "replay"
    # replay: image files, folders or videos, cycled in order
    sources: list[Path] = []
    device: int = Field(default=0, ge=0)
    # 1080p: full field of view from the binned sensor modes of the Pi cameras, and 2.25x the
    # pixels of 720p on a face for the encoder crop; detection runs on a 320 px copy, so the
    # face check costs about the same (docs/BENCHMARKS.md "Face check").
    width: int = Field(default=1920, ge=160)
    height: int = Field(default=1080, ge=120)
    fps: float = Field(default=10.0, gt=0, le=60)


class VisionConfig(_Section):
    # calibrated on ../shared/faces/pairs.csv, see docs/BENCHMARKS.md "Face check"
    threshold: Annotated[float, Field(gt=0, lt=1.5)] = 0.59
    detect_width: int = Field(default=320, ge=80, le=4096)
    max_frames: int = Field(default=5, ge=1, le=100)
    window_s: Seconds = 3.0
    min_face_px: int = Field(default=60, ge=16)
    min_sharpness: float = Field(default=15.0, ge=0)
    liveness: bool = False
    enhance_low_light: bool = True
    # with liveness on, more frames are read within window_s so that a blink is caught
    liveness_max_frames: int = Field(default=30, ge=3, le=300)
    # a blink = eye aspect ratio falls below (1 - blink_drop) x its open level, then recovers
    blink_drop: float = Field(default=0.3, gt=0, lt=1)


ALERT_KINDS = (
    "denied_face",
    "denied_no_face",
    "denied_liveness",
    "lockout",
    "duress",
    "forced",
    "held_open",
    "tamper",
    "unknown_person",
    "camera_lost",
    "modem_lost",
    "test",
)
_TEMPLATE_FIELDS = {
    "id": "x",
    "kind": "denied_face",
    "title": "Face mismatch",
    "door": "Front door",
    "device": "door-1",
    "time": "2026-01-01 00:00:00 UTC",
    "user": "12",
    "distance": "0.61",
    "count": 1,
    "detail": "",
    "summary": "",
}


def _check_kinds(kinds: list[str] | None) -> list[str] | None:
    if kinds is not None:
        unknown = sorted(set(kinds) - set(ALERT_KINDS))
        if unknown:
            raise ValueError(f"unknown alert kind(s) {unknown}; known: {list(ALERT_KINDS)}")
    return kinds


def _check_template(template: str | None) -> str | None:
    if template is not None:
        try:
            template.format(**_TEMPLATE_FIELDS)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"bad template placeholder {exc}; allowed: {sorted(_TEMPLATE_FIELDS)}"
            ) from None
    return template


class Recipient(_Section):
    """One recipient with its own alert kinds: to = [{ to = "+4470...", kinds = ["duress"] }]."""

    to: str = Field(min_length=1)
    kinds: list[str] | None = None

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: list[str] | None) -> list[str] | None:
        return _check_kinds(v)


def _gets(kinds: list[str] | None, kind: str) -> bool:
    return kinds is None or kind in kinds or kind == "test"


class _ChannelSection(_Section):
    enabled: bool = True
    # which alert kinds this channel's recipients get; None = every kind
    kinds: list[str] | None = None
    # plain addresses/numbers, or { to = ..., kinds = [...] } for per-recipient kinds
    to: list[Recipient] = Field(min_length=1)

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: list[str] | None) -> list[str] | None:
        return _check_kinds(v)

    @field_validator("to", mode="before")
    @classmethod
    def _plain_recipients(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"to": r} if isinstance(r, str) else r for r in v]
        return v

    def recipients(self, kind: str) -> list[str]:
        """Who gets an alert of `kind` on this channel."""
        if not self.enabled or not _gets(self.kinds, kind):
            return []
        return [r.to for r in self.to if _gets(r.kinds, kind)]

    def wants(self, kind: str) -> bool:
        return bool(self.recipients(kind))


class EmailConfig(_ChannelSection):
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretRef = SecretRef()
    # extra CA bundle to trust (a private mail relay); None = the system store
    ca_file: Path | None = None
    from_: str = Field(alias="from", min_length=3)
    timeout_s: Seconds = 10.0
    subject_template: str = "[Doorward] {title} at {door} {time}"
    body_template: str | None = None

    @field_validator("subject_template", "body_template")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        return _check_template(v)


class TwilioConfig(_ChannelSection):
    account_sid: str = Field(min_length=1)
    token: SecretRef = SecretRef(env="DOORWARD_TWILIO_TOKEN")
    from_: str | None = Field(default=None, alias="from")
    messaging_service_sid: str | None = None
    # e.g. a proxy or a Twilio-shaped test server; None = https://api.twilio.com
    api_base: str | None = Field(default=None, pattern=r"^https?://")
    timeout_s: Seconds = 10.0

    @model_validator(mode="after")
    def _sender(self) -> TwilioConfig:
        if not self.from_ and not self.messaging_service_sid:
            raise ValueError("set either from or messaging_service_sid")
        return self


class GsmConfig(_ChannelSection):
    port: str = Field(min_length=1)
    baud: int = Field(default=115200, gt=0)
    pin: SecretRef = SecretRef()
    timeout_s: Seconds = 20.0
    # longer texts are split into at most this many SMS; the last part is shortened
    max_parts: int = Field(default=3, ge=1, le=10)


class MailboxConfig(_Section):
    enabled: bool = True
    # None = <data_dir>/mailbox
    path: Path | None = None


class AlertsConfig(_Section):
    email: EmailConfig | None = None
    twilio: TwilioConfig | None = None
    gsm: GsmConfig | None = None
    mailbox: MailboxConfig = MailboxConfig()
    give_up_after_s: Seconds = 86400.0
    backoff_initial_s: Seconds = 2.0
    backoff_max_s: Seconds = 300.0
    # SMS moves from Twilio to the GSM modem after Twilio has failed for this long
    twilio_failover_s: Seconds = 120.0
    # per channel (email, sms) deliveries per rolling hour; duress/forced/tamper bypass it
    hourly_cap: int = Field(default=30, ge=1)
    # events of one burst within this window become one incident
    incident_window_s: Seconds = 180.0
    # a follow-up for an incident already sent waits this long to collect the rest of the burst
    incident_hold_s: Annotated[float, Field(ge=0)] = 60.0
    poll_interval_s: Seconds = 0.5
    probe_enabled: bool = True
    probe_host: str = "1.1.1.1"
    probe_port: int = Field(default=53, ge=1, le=65535)
    probe_interval_s: Seconds = 30.0
    probe_timeout_s: Seconds = 3.0


class AdminConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    secret_key: SecretRef = SecretRef()
    session_idle_s: Seconds = 1800.0
    # requests from loopback may carry X-Forwarded-Proto/-For (the nginx TLS front on the Pi)
    proxy_from_loopback: bool = True
    # a session ends this long after login however active it is
    session_max_s: Seconds = 43200.0
    max_upload_mb: float = Field(default=10.0, gt=0, le=100)
    # a photo may declare at most this many pixels (checked from its header, before decoding)
    max_image_pixels: int = Field(default=40_000_000, ge=10_000)
    max_image_side: int = Field(default=12_000, ge=100)
    # failed logins in a row that lock an account, and for how long
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_s: Seconds = 900.0
    # failed logins from one address within the window before it gets 429
    login_ip_limit: int = Field(default=20, ge=1)
    login_window_s: Seconds = 900.0
    # warn when a new face is this close to another user's (family members)
    similar_face_distance: Annotated[float, Field(gt=0, lt=1.5)] = 0.55


class SyncConfig(_Section):
    # with a central database configured, `doorward run` syncs the replica every interval_s
    enabled: bool = True
    interval_s: Seconds = 5.0
    # rows per pull batch and events per push batch
    batch_size: int = Field(default=500, ge=1, le=10000)


class MqttConfig(_Section):
    # publish every event and the door's state to an MQTT broker (Home Assistant, Node-RED)
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretRef = SecretRef()
    topic_prefix: str = Field(default="doorward", min_length=1, pattern=r"^[^#+]+$")


class HealthConfig(_Section):
    # a heartbeat event (log line + access_events row of kind "heartbeat") every N seconds
    heartbeat_interval_s: Seconds = 900.0
    # camera probed this often; "lost" after this many failed probes in a row
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


class Config(_Section):
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
        data = self.model_dump(by_alias=True, exclude_none=True)
        for section, values in sections.items():
            data.setdefault(section, {}).update(values)
        return parse_config(data, source="overrides")


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], source: str = "<dict>") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load `path`, else $DOORWARD_CONFIG, else the embedded default (no file at all)."""
    if path is None:
        path = os.environ.get(ENV_CONFIG) or None
    if path is None:
        return Config()
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
    return parse_config(data, source=str(p))
