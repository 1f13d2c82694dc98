"""Owns Doorward's configuration: one TOML file, validated strictly, secrets from env or files."""

from __future__ import annotations

import math
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, field
from msgspec.structs import force_setattr

from appliance.core.kinds import EventKind

ENV_CONFIG = "DOORWARD_CONFIG"
ENV_DATABASE_URL = "DOORWARD_DATABASE_URL"
ENV_REPLICA_PATH = "DOORWARD_REPLICA_PATH"
ENV_PEPPER = "DOORWARD_PEPPER"


class ConfigError(ValueError):
    """The configuration is invalid; the message names every offending key."""


class _Section(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A config section: strict (unknown keys are errors), immutable.

    msgspec, not pydantic: the whole configuration costs ~1.5 MB of the door process instead
    of ~17 MB (docs/BENCHMARKS.md "Face check", memory). The model_* methods keep the names
    the rest of the code uses.
    """

    @classmethod
    def model_validate(cls, data: Any, source: str = "<dict>") -> Any:
        """Validate `data` (a dict as TOML gives it); ConfigError names every bad key."""
        return _validate(cls, data, source)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return cls.__struct_fields__

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Any:
        """A copy with some attributes replaced (not validated, like pydantic's)."""
        return msgspec.structs.replace(self, **(update or {}))

    def model_dump(self, *, exclude_none: bool = False) -> dict[str, Any]:
        """Plain data under the file's key names ("from", not from_), paths as strings:
        what parse_config() takes back."""
        data = msgspec.to_builtins(self, enc_hook=_encode)
        return _drop_none(data) if exclude_none else data


BcmPin = Annotated[int, Meta(ge=0, le=27)]
# every duration is finite (inf/nan are refused by name, see _collect) and at most 30 days
MAX_SECONDS = 30 * 86400.0
Seconds = Annotated[float, Meta(gt=0, le=MAX_SECONDS)]
Delay = Annotated[float, Meta(ge=0, le=MAX_SECONDS)]  # a duration where 0 means "none"
# the longest code enrollment accepts: a 9-digit user number, "*", a 12-digit PIN
LONGEST_CODE = 9 + 1 + 12


class SecretRef(_Section, kw_only=True):
    """Where a secret lives: an environment variable, or a file (e.g. a systemd credential)."""

    env: str | None = None
    file: Path | None = None

    def __post_init__(self) -> None:
        if self.env and self.file:
            raise ValueError("give either env or file, not both")

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


class DeviceConfig(_Section, kw_only=True):
    id: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = "door-1"
    name: str = "Front door"
    data_dir: Path = Path("var")


class DatabaseConfig(_Section, kw_only=True):
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


class SecurityConfig(_Section, kw_only=True):
    # HMAC key ("pepper") mixed into PIN hashes; kept on the device, never in the database.
    # Unset: $DOORWARD_PEPPER if set, else <data_dir>/pepper (created once, mode 0600).
    # Every door and admin page sharing one central database must use the same pepper.
    pepper: SecretRef = SecretRef()


class AccessConfig(_Section, kw_only=True):
    code_timeout_s: Seconds = 10.0
    # keys the keypad buffer takes before it clears; enrollment refuses longer codes
    max_code_length: Annotated[int, Meta(ge=6, le=32)] = LONGEST_CODE
    relay_pulse_s: Annotated[float, Meta(gt=0, le=60)] = 5.0
    wrong_code_limit: Annotated[int, Meta(ge=1)] = 5
    wrong_code_window_s: Seconds = 600.0
    lockout_s: Seconds = 300.0
    face_fail_limit: Annotated[int, Meta(ge=1)] = 3
    face_fail_window_s: Seconds = 600.0
    held_open_s: Seconds = 30.0
    # after the relay locks again, the door may still be opened this long without a forced alert
    entry_grace_s: Delay = 2.0
    exit_pulse_s: Annotated[float, Meta(gt=0, le=60)] = 5.0
    motion_wake_s: Seconds = 30.0
    # someone the PIR saw who enters no code for this long is identified 1:N against every
    # template; a face that matches nobody raises an "unknown_person" alert. 0 = never.
    unknown_person_after_s: Delay = 20.0


class PinsConfig(_Section, kw_only=True):
    """BCM pin numbers. Defaults follow the wiring table in the README."""

    keypad_rows: Annotated[list[BcmPin], Meta(min_length=4, max_length=4)] = field(
        default_factory=lambda: [5, 6, 13, 19]
    )
    keypad_cols: Annotated[list[BcmPin], Meta(min_length=4, max_length=4)] = field(
        default_factory=lambda: [12, 16, 20, 21]
    )
    pir: BcmPin = 4
    relay: BcmPin = 17
    relay_active_high: bool = True
    door_contact: BcmPin = 27
    exit_button: BcmPin = 22
    tamper: BcmPin = 23
    status_led: BcmPin = 24
    buzzer: BcmPin = 25

    def __post_init__(self) -> None:
        seen: dict[int, str] = {}
        for name in self.__struct_fields__:
            value = getattr(self, name)
            for pin in value if isinstance(value, list) else [value]:
                if isinstance(pin, bool):
                    continue
                if pin in seen:
                    raise ValueError(f"BCM pin {pin} is used by both {seen[pin]} and {name}")
                seen[pin] = name


class HardwareConfig(_Section, kw_only=True):
    # "auto": real pins on a Pi, gpiozero MockFactory elsewhere. "mock": always simulated.
    pin_factory: Literal["auto", "mock", "lgpio", "rpigpio", "native"] = "auto"
    pins: PinsConfig = PinsConfig()
    keypad_layout: Annotated[list[str], Meta(min_length=4, max_length=4)] = field(
        default_factory=lambda: ["123A", "456B", "789C", "*0#D"]
    )
    debounce_ms: Annotated[int, Meta(ge=0, le=500)] = 30
    door_contact_closed_when: Literal["low", "high"] = "low"
    tamper_alarm_when: Literal["low", "high"] = "high"


class CameraConfig(_Section, kw_only=True):
    kind: Literal["replay", "opencv", "picamera2"] = "replay"
    # replay: image files, folders or videos, cycled in order
    sources: list[Path] = []
    device: Annotated[int, Meta(ge=0)] = 0
    # 1080p: full field of view from the binned sensor modes of the Pi cameras, and 2.25x the
    # pixels of 720p on a face for the encoder crop; detection runs on a 320 px copy, so the
    # face check costs about the same (docs/BENCHMARKS.md "Face check").
    width: Annotated[int, Meta(ge=160)] = 1920
    height: Annotated[int, Meta(ge=120)] = 1080
    fps: Annotated[float, Meta(gt=0, le=60)] = 10.0


class VisionConfig(_Section, kw_only=True):
    # calibrated on tests/fixtures/faces/pairs.csv, see docs/BENCHMARKS.md "Face check"
    threshold: Annotated[float, Meta(gt=0, lt=1.5)] = 0.59
    detect_width: Annotated[int, Meta(ge=80, le=4096)] = 320
    max_frames: Annotated[int, Meta(ge=1, le=100)] = 5
    window_s: Seconds = 3.0
    min_face_px: Annotated[int, Meta(ge=16)] = 60
    min_sharpness: Annotated[float, Meta(ge=0)] = 15.0
    liveness: bool = False
    enhance_low_light: bool = True
    # with liveness on, more frames are read within window_s so that a blink is caught
    liveness_max_frames: Annotated[int, Meta(ge=3, le=300)] = 30
    # a blink = eye aspect ratio falls below (1 - blink_drop) x its open level, then recovers
    blink_drop: Annotated[float, Meta(gt=0, lt=1)] = 0.3


ALERT_KINDS = tuple(k.value for k in EventKind if k.alerted)  # in appliance.core.kinds' order
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


_FIELD_MARK = "\x00"  # "<mark>key<mark>message": a __post_init__ error about one key


def _key_error(key: str, message: str) -> ValueError:
    """An error raised in __post_init__ that names the key it is about."""
    return ValueError(f"{_FIELD_MARK}{key}{_FIELD_MARK}{message}")


def _check_kinds(kinds: list[str] | None, key: str = "kinds") -> list[str] | None:
    if kinds is not None:
        unknown = sorted(set(kinds) - set(ALERT_KINDS))
        if unknown:
            raise _key_error(key, f"unknown alert kind(s) {unknown}; known: {list(ALERT_KINDS)}")
    return kinds


def _check_template(template: str | None, key: str) -> str | None:
    if template is not None:
        try:
            template.format(**_TEMPLATE_FIELDS)
        except (KeyError, IndexError, ValueError) as exc:
            raise _key_error(
                key, f"bad template placeholder {exc}; allowed: {sorted(_TEMPLATE_FIELDS)}"
            ) from None
    return template


class Recipient(_Section, kw_only=True):
    """One recipient with its own alert kinds: to = [{ to = "+4470...", kinds = ["duress"] }]."""

    to: Annotated[str, Meta(min_length=1)]
    kinds: list[str] | None = None

    def __post_init__(self) -> None:
        _check_kinds(self.kinds)


def _gets(kinds: list[str] | None, kind: str) -> bool:
    return kinds is None or kind in kinds or kind == "test"


class _ChannelSection(_Section, kw_only=True):
    enabled: bool = True
    # which alert kinds this channel's recipients get; None = every kind
    kinds: list[str] | None = None
    # plain addresses/numbers, or { to = ..., kinds = [...] } for per-recipient kinds
    to: Annotated[list[Recipient | str], Meta(min_length=1)]

    def __post_init__(self) -> None:
        _check_kinds(self.kinds)
        recipients = []
        for i, r in enumerate(self.to):
            if isinstance(r, str):
                if not r.strip():
                    raise _key_error(f"to[{i}]", "must not be empty")
                r = Recipient(to=r)
            recipients.append(r)
        force_setattr(self, "to", recipients)  # plain strings become Recipient(to=...)

    def recipients(self, kind: str) -> list[str]:
        """Who gets an alert of `kind` on this channel."""
        if not self.enabled or not _gets(self.kinds, kind):
            return []
        return [r.to for r in self.to if _gets(r.kinds, kind)]

    def wants(self, kind: str) -> bool:
        return bool(self.recipients(kind))


class EmailConfig(_ChannelSection, kw_only=True):
    host: Annotated[str, Meta(min_length=1)]
    port: Annotated[int, Meta(ge=1, le=65535)] = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretRef = SecretRef()
    # extra CA bundle to trust (a private mail relay); None = the system store
    ca_file: Path | None = None
    from_: Annotated[str, Meta(min_length=3)] = field(name="from")
    timeout_s: Seconds = 10.0
    subject_template: str = "[Doorward] {title} at {door} {time}"
    body_template: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_template(self.subject_template, "subject_template")
        _check_template(self.body_template, "body_template")


class TwilioConfig(_ChannelSection, kw_only=True):
    account_sid: Annotated[str, Meta(min_length=1)]
    token: SecretRef = SecretRef(env="DOORWARD_TWILIO_TOKEN")
    from_: str | None = field(name="from", default=None)
    messaging_service_sid: str | None = None
    # e.g. a proxy or a Twilio-shaped test server; None = https://api.twilio.com
    api_base: Annotated[str, Meta(pattern=r"^https?://")] | None = None
    timeout_s: Seconds = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.from_ and not self.messaging_service_sid:
            raise ValueError("set either from or messaging_service_sid")


class GsmConfig(_ChannelSection, kw_only=True):
    port: Annotated[str, Meta(min_length=1)]
    baud: Annotated[int, Meta(gt=0)] = 115200
    pin: SecretRef = SecretRef()
    timeout_s: Seconds = 20.0
    # longer texts are split into at most this many SMS; the last part is shortened
    max_parts: Annotated[int, Meta(ge=1, le=10)] = 3


class MailboxConfig(_Section, kw_only=True):
    enabled: bool = True
    # None = <data_dir>/mailbox
    path: Path | None = None


class AlertsConfig(_Section, kw_only=True):
    email: EmailConfig | None = None
    twilio: TwilioConfig | None = None
    gsm: GsmConfig | None = None
    mailbox: MailboxConfig = MailboxConfig()
    # a delivery is given up only after min_attempts real attempts whose backoff adds up to
    # give_up_after_s (a count of attempts, not the wall clock: a clock step changes nothing)
    give_up_after_s: Seconds = 86400.0
    min_attempts: Annotated[int, Meta(ge=1, le=10000)] = 5
    backoff_initial_s: Seconds = 2.0
    backoff_max_s: Seconds = 300.0
    # SMS moves from Twilio to the GSM modem after Twilio has failed for this long
    twilio_failover_s: Seconds = 120.0
    # per channel (email, sms) deliveries per rolling hour; duress/forced/tamper bypass it
    hourly_cap: Annotated[int, Meta(ge=1)] = 30
    # events of one burst within this window become one incident
    incident_window_s: Seconds = 180.0
    # a follow-up for an incident already sent waits this long to collect the rest of the burst
    incident_hold_s: Delay = 60.0
    poll_interval_s: Seconds = 0.5
    probe_enabled: bool = True
    probe_host: str = "1.1.1.1"
    probe_port: Annotated[int, Meta(ge=1, le=65535)] = 53
    probe_interval_s: Seconds = 30.0
    probe_timeout_s: Seconds = 3.0


class AdminConfig(_Section, kw_only=True):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    secret_key: SecretRef = SecretRef()
    session_idle_s: Seconds = 1800.0
    # requests from loopback may carry X-Forwarded-Proto/-For (the nginx TLS front on the Pi)
    proxy_from_loopback: bool = True
    # a session ends this long after login however active it is
    session_max_s: Seconds = 43200.0
    max_upload_mb: Annotated[float, Meta(gt=0, le=100)] = 10.0
    # a photo may declare at most this many pixels (checked from its header, before decoding)
    max_image_pixels: Annotated[int, Meta(ge=10_000)] = 40_000_000
    max_image_side: Annotated[int, Meta(ge=100)] = 12_000
    # failed logins of one address on one account before that address must wait between
    # tries (2, 4, 8 ... s, at most login_lockout_s); no account is ever locked for everyone
    login_max_failures: Annotated[int, Meta(ge=1)] = 5
    login_lockout_s: Seconds = 900.0
    # failed logins from one address within the window before that address is refused
    login_ip_limit: Annotated[int, Meta(ge=1)] = 20
    login_window_s: Seconds = 900.0
    # warn when a new face is this close to another user's (family members)
    similar_face_distance: Annotated[float, Meta(gt=0, lt=1.5)] = 0.55


class SyncConfig(_Section, kw_only=True):
    # with a central database configured, `doorward run` syncs the replica every interval_s
    enabled: bool = True
    interval_s: Seconds = 5.0
    # rows per pull batch and events per push batch
    batch_size: Annotated[int, Meta(ge=1, le=10000)] = 500


class MqttConfig(_Section, kw_only=True):
    # publish every event and the door's state to an MQTT broker (Home Assistant, Node-RED)
    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 1883
    username: str | None = None
    password: SecretRef = SecretRef()
    topic_prefix: Annotated[str, Meta(min_length=1, pattern=r"^[^#+]+$")] = "doorward"


class HealthConfig(_Section, kw_only=True):
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


class Config(_Section, kw_only=True):
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
        data = self.model_dump(exclude_none=True)
        for section, values in sections.items():
            data.setdefault(section, {}).update(values)
        return parse_config(data, source="overrides")


# ---- validation: every bad key named at once, in plain words -----------------------------
def _encode(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


def _decode(typ: Any, obj: Any) -> Any:
    if typ is Path:
        if isinstance(obj, str):
            return Path(obj)
        raise ValueError(f"Expected `path`, got `{type(obj).__name__}`")
    raise NotImplementedError


def _drop_none(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _drop_none(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_drop_none(v) for v in data]
    return data


def _section_type(typ: Any) -> type[_Section] | None:
    """The section class of a field typed `Section` or `Section | None`, else None."""
    candidates = [typ]
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        candidates = [t for t in typing.get_args(typ) if t is not type(None)]
    for t in candidates:
        if isinstance(t, type) and issubclass(t, _Section):
            return t
    return None


_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "array": "a list",
    "object": "a table",
    "null": "absent",
    "path": "a path",
}
_BOUNDS = {
    ">=": "greater than or equal to",
    ">": "greater than",
    "<=": "less than or equal to",
    "<": "less than",
}


def _plain(msg: str, typ: Any) -> str:
    """msgspec's message in the words the README uses."""
    if m := re.fullmatch(r"Expected `(\w+)`, got `(\w+)`", msg):
        want = _TYPE_WORDS.get(m.group(1), m.group(1))
        if _section_type(typ) is SecretRef:
            return (
                'must be a secret reference (SecretRef): { env = "VAR" } or '
                '{ file = "/path" }, never the secret itself'
            )
        return f"must be {want}, not {_TYPE_WORDS.get(m.group(2), m.group(2))}"
    if m := re.fullmatch(r"Expected `(\w+)` (>=|>|<=|<) (\S+)", msg):
        return f"must be {_BOUNDS[m.group(2)]} {m.group(3).removesuffix('.0')}"
    if m := re.fullmatch(r"Expected `(array|str)` of length (>=|<=) (\d+)", msg):
        unit = "item(s)" if m.group(1) == "array" else "character(s)"
        return f"must have {'at least' if m.group(2) == '>=' else 'at most'} {m.group(3)} {unit}"
    if m := re.fullmatch(r"Expected `str` matching regex (.+)", msg):
        return f"must match the pattern {m.group(1)}"
    if msg.startswith("Invalid enum value"):
        allowed = [a for t in [typ] for a in typing.get_args(t) if isinstance(a, str)]
        return f"{msg.removeprefix('Invalid enum value ')} is not allowed; use one of " + ", ".join(
            repr(a) for a in allowed
        )
    if m := re.fullmatch(r"Object contains unknown field `(.+)`", msg):
        return f"unknown key {m.group(1)!r}"
    if m := re.fullmatch(r"Object missing required field `(.+)`", msg):
        return f"required key {m.group(1)!r} is missing"
    return msg


def _split(err: msgspec.ValidationError) -> tuple[str, str]:
    """('Expected ...', '.a.b[0]') from 'Expected ... - at `$.a.b[0]`'."""
    text = str(err)
    msg, sep, where = text.rpartition(" - at `$")
    if not sep:
        return text, ""
    return msg, where.rstrip("`")


def _error_line(path: str, exc: msgspec.ValidationError, typ: Any) -> str:
    msg, where = _split(exc)
    if msg.startswith(_FIELD_MARK):  # raised by _key_error: it names its own key
        _, key, msg = msg.split(_FIELD_MARK, 2)
        where += ("" if key.startswith("[") else ".") + key
        typ = None
    return f"  {_key(path, where)}: {_plain(msg, typ)}"


def _key(path: str, suffix: str) -> str:
    return (path + suffix).lstrip(".") or "(top level)"


def _collect(cls: type[_Section], data: Any, path: str, errors: list[str]) -> None:
    """Check each key of `data` against section `cls`, recursing into sub-sections, so
    that every bad key is reported, not only the first."""
    if not isinstance(data, dict):
        errors.append(f"  {_key(path, '')}: must be a table, not {type(data).__name__}")
        return
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    for key in data:
        if key not in fields:
            errors.append(f"  {_key(path, '.' + str(key))}: unknown key")
    for name, f in fields.items():
        key = f"{path}.{name}"
        if name not in data:
            if f.required:
                errors.append(f"  {_key(key, '')}: required key is missing")
            continue
        value = data[name]
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(f"  {_key(key, '')}: must be a finite number, got {value}")
            continue
        sub = _section_type(f.type)
        if sub is not None and isinstance(value, dict):
            _collect(sub, value, key, errors)
            continue
        try:
            msgspec.convert(value, f.type, dec_hook=_decode)
        except msgspec.ValidationError as exc:
            errors.append(_error_line(key, exc, f.type))


def _validate(cls: type[Any], data: Any, source: str) -> Any:
    errors: list[str] = []
    _collect(cls, data, "", errors)
    if not errors:
        try:
            return msgspec.convert(data, cls, dec_hook=_decode)
        except msgspec.ValidationError as exc:  # a rule in __post_init__
            errors.append(_error_line("", exc, None))
    raise ConfigError("\n".join([f"invalid configuration in {source}:", *errors]))


def parse_config(data: dict[str, Any], source: str = "<dict>", base: Path | None = None) -> Config:
    """Validate `data`; a relative device.data_dir is made absolute against `base` (the config
    file's folder), else the working directory, so the door's state (replica, pepper, budget)
    never depends on where it was started from."""
    return _absolute_data_dir(_validate(Config, data, source), base)


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
