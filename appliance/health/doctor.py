"""Owns `doorward doctor`: one check per part of the appliance, a table or JSON, an exit code."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import textwrap
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from appliance.config import Config, ConfigError

from .settings import health_settings

Status = Literal["ok", "warn", "fail", "skip"]
CHECK_NAMES = (
    "config",
    "stack",
    "pins",
    "camera",
    "modem",
    "smtp",
    "twilio",
    "database",
    "replica",
    "disk",
    "clock",
)
# GPIOs with a fixed job on a Pi that our devices should not take
_RESERVED_PINS = {
    0: "ID EEPROM (ID_SD)",
    1: "ID EEPROM (ID_SC)",
    2: "I2C SDA",
    3: "I2C SCL",
}
_UART_PINS = {14: "UART TXD", 15: "UART RXD"}
_EARLIEST_SANE_CLOCK = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    ms: int = 0


class CheckFailed(Exception):
    """Raised inside a check: becomes a 'fail' row with this message."""


class CheckWarning(Exception):
    """Raised inside a check: becomes a 'warn' row with this message."""


class CheckSkipped(Exception):
    """Raised inside a check: becomes a 'skip' row (not configured, not applicable)."""


CameraProbe = Callable[[Config], str]


# ---- individual checks: each returns a detail string or raises one of the above ---------------


def check_config(config: Config) -> str:
    problems = []
    secrets = [("security.pepper", config.security.pepper)]
    secrets.append(("database.password", config.database.password))
    secrets.append(("admin.secret_key", config.admin.secret_key))
    if config.alerts.email and config.alerts.email.enabled:
        secrets.append(("alerts.email.password", config.alerts.email.password))
    if config.alerts.twilio and config.alerts.twilio.enabled:
        secrets.append(("alerts.twilio.token", config.alerts.twilio.token))
    if config.alerts.gsm and config.alerts.gsm.enabled:
        secrets.append(("alerts.gsm.pin", config.alerts.gsm.pin))
    resolved = 0
    warnings = []
    for key, ref in secrets:
        try:
            if ref.resolve(key) is not None:
                resolved += 1
        except ConfigError as exc:
            problems.append(str(exc))
    pepper = config.security.pepper
    if not pepper.env and not pepper.file and not os.environ.get("DOORWARD_PEPPER"):
        # unset: the app keeps a generated pepper in <data_dir>/pepper
        local = config.data_dir / "pepper"
        if not local.exists():
            warnings.append(f"security.pepper: {local} will be created at first start")
        elif local.stat().st_mode & 0o077:
            problems.append(f"security.pepper: {local} is readable by others (chmod 600)")
    for key, path in (
        ("admin.tls_cert", config.admin.tls_cert),
        ("admin.tls_key", config.admin.tls_key),
        ("database.ssl_ca", config.database.ssl_ca),
        ("database.ssl_cert", config.database.ssl_cert),
        ("database.ssl_key", config.database.ssl_key),
    ):
        if path is not None and not os.access(path, os.R_OK):
            problems.append(f"{key}: cannot read {path}")
    if problems:
        raise CheckFailed("; ".join(problems + warnings))
    detail = f"valid; device={config.device.id} secrets_resolved={resolved}"
    if warnings:
        raise CheckWarning(detail + "; " + "; ".join(warnings))
    return detail


def check_pins(config: Config) -> str:
    pins = config.hardware.pins
    used: dict[int, str] = {}
    problems: list[str] = []
    for name in type(pins).field_names():
        value = getattr(pins, name)
        if isinstance(value, bool) or value is None:  # polarity flags; an unwired doorbell
            continue
        for pin in value if isinstance(value, list) else [value]:
            if not 0 <= pin <= 27:
                problems.append(f"{name}: BCM {pin} is not a GPIO of the 40-pin header (0-27)")
            elif pin in used:
                problems.append(f"BCM {pin} is used by both {used[pin]} and {name}")
            used.setdefault(pin, name)
    for pin, role in _RESERVED_PINS.items():
        if pin in used:
            problems.append(f"{used[pin]}: BCM {pin} is reserved for {role}")
    gsm = config.alerts.gsm
    if gsm and gsm.enabled and any(s in gsm.port for s in ("serial0", "ttyAMA0", "ttyS0")):
        for pin, role in _UART_PINS.items():
            if pin in used:
                problems.append(f"{used[pin]}: BCM {pin} is the {role} the GSM modem uses")
    if problems:
        raise CheckFailed("; ".join(problems))
    factory = config.hardware.pin_factory
    return f"{len(used)} distinct BCM pins; relay=BCM{pins.relay} factory={factory}"


def _origin(module: Any) -> str:
    """'venv' when the module was loaded from this interpreter's prefix, else its folder."""
    import sys

    where = Path(getattr(module, "__file__", "") or "").resolve()
    prefix = Path(sys.prefix).resolve()
    return "venv" if prefix in where.parents else str(where.parent)


def check_stack(config: Config) -> str:
    """Import what the door loads at a decision, and run each compiled part once.

    A numpy-built package from the system (apt) next to the venv's numpy fails here
    ("numpy.dtype size changed"), not at the door's first visitor.
    """
    import sys

    problems: list[str] = []
    found: list[str] = []

    def load(name: str, hint: str = "") -> Any:
        try:
            module = __import__(name, fromlist=["_"])
        except Exception as exc:  # ImportError, or a binary mismatch raised as ValueError
            problems.append(f"{name}: {type(exc).__name__}: {exc}{hint}")
            return None
        return module

    np = load("numpy")
    sj = load("simplejpeg")
    cv2 = load("cv2")
    dlib = load("dlib")
    load("PIL.Image")
    for adapter in ("replay", "opencv", "picamera"):
        load(f"appliance.hardware.camera.{adapter}")
    load("appliance.store.snapshots")
    if np is not None and sj is not None:
        try:
            jpeg = sj.encode_jpeg(np.zeros((16, 16, 3), dtype=np.uint8), colorspace="RGB")
            sj.decode_jpeg(jpeg)
        except Exception as exc:
            problems.append(f"simplejpeg with numpy {np.__version__}: {exc}")
    if cv2 is not None and np is not None:
        try:
            cv2.cvtColor(np.zeros((8, 8, 3), dtype=np.uint8), cv2.COLOR_RGB2GRAY)
        except Exception as exc:
            problems.append(f"cv2 {cv2.__version__}: {exc}")
    if dlib is not None:
        from appliance.vision.models import ENCODER, SHAPE_5, ModelError, model_path

        for model in (SHAPE_5, ENCODER):  # liveness uses the same two (no 68-point model)
            try:
                model_path(model)
            except ModelError as exc:
                problems.append(str(exc))
        if np is not None and not problems:
            # the encoder file parses as the network it must be, and numpy's BLAS kernels
            # run on this CPU (a wheel built for a newer core would trap here, not at the door)
            from appliance.vision.resnet import ResNetEncoder, ResNetFileError

            try:
                grey = np.full((150, 150, 3), 128, dtype=np.uint8)
                desc = ResNetEncoder(model_path(ENCODER)).descriptor(grey)
                if not np.all(np.isfinite(desc)):
                    problems.append(f"{ENCODER}: the encoder gave a non-finite descriptor")
            except ResNetFileError as exc:
                problems.append(f"{ENCODER}: {exc}")
    if config.camera.kind == "picamera2":
        load(
            "picamera2",
            " (the python3-picamera2 apt package, in the venv via system site packages)",
        )
    if config.hardware.pin_factory == "lgpio":
        load("lgpio", " (the python3-lgpio apt package)")
    for module in (np, sj, cv2, dlib):
        if module is not None:
            found.append(
                f"{module.__name__} {getattr(module, '__version__', '?')} ({_origin(module)})"
            )
    outside = [m.__name__ for m in (np, sj) if m is not None and _origin(m) != "venv"]
    if outside and sys.prefix != sys.base_prefix:
        problems.append(
            f"{', '.join(outside)} loaded from outside the venv: reinstall with "
            "pip install --ignore-installed -c constraints.txt (provisioning/install.sh does)"
        )
    if problems:
        raise CheckFailed("; ".join(problems))
    return "; ".join(found)


def _frame_detail(frame: Any) -> str:
    shape = getattr(frame, "shape", None)
    if shape is None or len(shape) != 3 or shape[2] != 3:
        raise CheckFailed(f"camera returned no RGB frame (shape={shape})")
    return f"{shape[1]}x{shape[0]} frame"


def probe_camera(config: Config) -> str:
    """Open the configured camera through its real adapter, read one frame, close it."""
    from appliance.hardware.camera import CameraError, open_camera

    cam = config.camera
    if cam.kind == "replay" and not cam.sources:
        raise CheckWarning("replay camera with no sources: simulated frames only")
    try:
        camera = open_camera(cam)
    except (CameraError, ImportError, RuntimeError) as exc:
        raise CheckFailed(f"{cam.kind} camera: {exc}") from None
    # one true line: a camera that never started is not "opened but gave no frame"
    try:
        try:
            camera.start()
        except Exception as exc:  # CameraError (picamera2 missing, no device), or the driver's
            raise CheckFailed(f"{cam.kind} camera cannot start: {exc}") from None
        try:
            frame = camera.read()
        except Exception as exc:
            raise CheckFailed(f"{cam.kind} camera started but gave no frame: {exc}") from None
    finally:
        camera.close()
    where = f"device {cam.device}" if cam.kind == "opencv" else f"{len(cam.sources)} source(s)"
    if cam.kind == "picamera2":
        where = "Pi camera"
    return f"{cam.kind} {where}; {_frame_detail(frame)}"


def _at(port: Any, command: str, deadline: float) -> str:
    port.reset_input_buffer()
    port.write(command.encode("ascii") + b"\r")
    buf = b""
    while time.monotonic() < deadline:
        buf += port.read(port.in_waiting or 1)
        text = buf.decode("ascii", "replace")
        lines = [line.strip() for line in text.splitlines()]
        if "OK" in lines or any(line.startswith(("ERROR", "+CME ERROR")) for line in lines):
            return text
    raise CheckFailed(f"modem did not answer {command} in time (got {buf!r})")


def check_modem(config: Config, timeout_s: float) -> str:
    gsm = config.alerts.gsm
    if gsm is None or not gsm.enabled:
        raise CheckSkipped("no GSM modem configured")
    import serial

    try:
        port = serial.serial_for_url(gsm.port, baudrate=gsm.baud, timeout=0.1)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise CheckFailed(f"cannot open {gsm.port}: {exc}") from None
    try:
        deadline = time.monotonic() + timeout_s
        reply = _at(port, "AT", deadline)
        if "OK" not in reply:
            raise CheckFailed(f"modem on {gsm.port} answered AT with {reply.strip()!r}")
        detail = f"{gsm.port} answers AT"
        csq = _at(port, "AT+CSQ", deadline)
        for line in csq.splitlines():
            if line.strip().startswith("+CSQ:"):
                rssi = line.split(":", 1)[1].split(",")[0].strip()
                detail += f"; signal rssi={rssi}"
                if rssi == "99":
                    raise CheckWarning(detail + " (no signal)")
        return detail
    finally:
        port.close()


def _tcp(host: str, port: int, timeout_s: float) -> float:
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise CheckFailed(f"cannot reach {host}:{port}: {exc}") from None
    return (time.monotonic() - start) * 1000


def check_smtp(config: Config, timeout_s: float) -> str:
    email = config.alerts.email
    if email is None or not email.enabled:
        raise CheckSkipped("no email channel configured")
    start = time.monotonic()
    try:
        with socket.create_connection((email.host, email.port), timeout=timeout_s) as sock:
            if email.security == "tls":
                return f"{email.host}:{email.port} reachable (implicit TLS)"
            sock.settimeout(timeout_s)
            banner = sock.recv(512).decode("ascii", "replace").strip()
    except OSError as exc:
        raise CheckFailed(f"cannot reach {email.host}:{email.port}: {exc}") from None
    ms = (time.monotonic() - start) * 1000
    if not banner.startswith("220"):
        raise CheckFailed(f"{email.host}:{email.port} is not an SMTP server: {banner[:60]!r}")
    return f"{email.host}:{email.port} says 220 in {ms:.0f} ms"


def check_twilio(config: Config, timeout_s: float) -> str:
    tw = config.alerts.twilio
    if tw is None or not tw.enabled:
        raise CheckSkipped("no Twilio channel configured")
    base = urlsplit(tw.api_base or "https://api.twilio.com")
    if not base.hostname:
        raise CheckFailed(f"alerts.twilio.api_base has no host: {tw.api_base!r}")
    port = base.port or (443 if base.scheme == "https" else 80)
    ms = _tcp(base.hostname, port, timeout_s)
    return f"{base.hostname}:{port} reachable in {ms:.0f} ms"


def _expected_heads() -> set[str]:
    from alembic.script import ScriptDirectory

    from appliance.store.migrate import alembic_config

    cfg = alembic_config(None)  # type: ignore[arg-type]  # no engine needed to read scripts
    return set(ScriptDirectory.from_config(cfg).get_heads())


def _schema_detail(engine: Any, label: str) -> str:
    from sqlalchemy.exc import SQLAlchemyError

    from appliance.store.migrate import current

    try:
        have = current(engine)
    except SQLAlchemyError as exc:
        msg = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CheckFailed(f"{label}: cannot connect: {msg}") from None
    want = _expected_heads()
    if not have:
        raise CheckFailed(f"{label}: no schema yet; run `doorward migrate`")
    if have != want:
        behind = ", ".join(sorted(want - have)) or "-"
        raise CheckFailed(
            f"{label}: schema at {', '.join(sorted(have))}, missing head(s) {behind}; "
            "run `doorward migrate`"
        )
    return f"{label}: schema at head ({', '.join(sorted(have))})"


def central_engine(config: Config, url: str) -> Any:
    """An engine for the central database: password from its SecretRef, TLS from ssl_*."""
    from sqlalchemy.engine import make_url

    from appliance.store.db import make_engine

    parsed = make_url(url)
    password = config.database.password.resolve("database.password")
    if password is not None:
        parsed = parsed.set(password=password)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() in ("mysql", "mariadb"):
        connect_args["connect_timeout"] = max(1, int(config.database.connect_timeout_s))
        ssl = {
            k: str(v)
            for k, v in (
                ("ca", config.database.ssl_ca),
                ("cert", config.database.ssl_cert),
                ("key", config.database.ssl_key),
            )
            if v is not None
        }
        if ssl:
            connect_args["ssl"] = ssl
    return make_engine(parsed.render_as_string(hide_password=False), connect_args=connect_args)


def check_database(config: Config, db_url: str | None) -> str:
    url = db_url or config.database.url or os.environ.get("DOORWARD_DATABASE_URL")
    if not url:
        raise CheckSkipped("no central database configured: the replica is the database")
    from appliance.store.db import safe_url

    safe = safe_url(url)
    engine = central_engine(config, url)
    try:
        return _schema_detail(engine, safe)
    finally:
        engine.dispose()


def check_replica(config: Config) -> str:
    path = config.replica_path
    if not path.exists():
        raise CheckFailed(f"{path} does not exist yet; run `doorward migrate`")
    from appliance.store.db import make_engine, sqlite_url

    engine = make_engine(sqlite_url(path))
    try:
        detail = _schema_detail(engine, str(path))
        with engine.connect() as conn:
            from sqlalchemy import text

            result = conn.execute(text("PRAGMA quick_check")).scalar()
        if result != "ok":
            raise CheckFailed(f"{path}: integrity check says {result}")
        return detail + "; quick_check ok"
    finally:
        engine.dispose()


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(config: Config) -> str:
    settings = health_settings(config)
    where = _existing_parent(config.data_dir)
    usage = shutil.disk_usage(where)
    free_mb = usage.free / 1024 / 1024
    pct = 100 * usage.free / usage.total if usage.total else 0
    detail = f"{where}: {free_mb:.0f} MB free ({pct:.0f}%)"
    if free_mb < settings.disk_min_free_mb:
        raise CheckFailed(detail + f" < {settings.disk_min_free_mb:.0f} MB minimum")
    if free_mb < settings.disk_warn_free_mb:
        raise CheckWarning(detail + f" < {settings.disk_warn_free_mb:.0f} MB")
    return detail


def _timedatectl() -> dict[str, str] | None:
    exe = shutil.which("timedatectl")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "show", "--property=NTPSynchronized", "--property=NTP"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def check_clock(
    config: Config,
    now: datetime | None = None,
    status: Callable[[], dict[str, str] | None] = _timedatectl,
) -> str:
    now = now or datetime.now(UTC)
    if now < _EARLIEST_SANE_CLOCK:
        raise CheckFailed(f"clock says {now:%Y-%m-%d}: not set (no RTC and no NTP yet?)")
    info = status()
    if info is None:
        if Path("/run/systemd/timesync/synchronized").exists():
            return f"{now:%Y-%m-%d %H:%M:%S} UTC; systemd-timesyncd synchronized"
        raise CheckWarning(f"{now:%Y-%m-%d %H:%M:%S} UTC; NTP status unavailable (no timedatectl)")
    if info.get("NTPSynchronized") == "yes":
        return f"{now:%Y-%m-%d %H:%M:%S} UTC; NTP synchronized"
    if info.get("NTP") == "no":
        raise CheckFailed("NTP is switched off: `timedatectl set-ntp true`")
    raise CheckWarning(f"{now:%Y-%m-%d %H:%M:%S} UTC; NTP not synchronized yet")


# ---- running ---------------------------------------------------------------------------------


def run_doctor(
    config: Config,
    *,
    db_url: str | None = None,
    only: Iterable[str] | None = None,
    camera_probe: CameraProbe | None = None,
    clock_status: Callable[[], dict[str, str] | None] | None = None,
) -> list[CheckResult]:
    """Run the checks (all, or `only` these names) in a fixed order; never raises."""
    timeout = health_settings(config).probe_timeout_s
    checks: dict[str, Callable[[], str]] = {
        "config": lambda: check_config(config),
        "stack": lambda: check_stack(config),
        "pins": lambda: check_pins(config),
        "camera": lambda: (camera_probe or probe_camera)(config),
        "modem": lambda: check_modem(config, timeout),
        "smtp": lambda: check_smtp(config, timeout),
        "twilio": lambda: check_twilio(config, timeout),
        "database": lambda: check_database(config, db_url),
        "replica": lambda: check_replica(config),
        "disk": lambda: check_disk(config),
        "clock": lambda: check_clock(config, status=clock_status or _timedatectl),
    }
    wanted = list(only) if only else list(CHECK_NAMES)
    unknown = [n for n in wanted if n not in checks]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known: {list(CHECK_NAMES)}")
    results = []
    for name in CHECK_NAMES:
        if name not in wanted:
            continue
        start = time.monotonic()
        status: Status
        try:
            detail, status = checks[name](), "ok"
        except CheckSkipped as exc:
            detail, status = str(exc), "skip"
        except CheckWarning as exc:
            detail, status = str(exc), "warn"
        except CheckFailed as exc:
            detail, status = str(exc), "fail"
        except Exception as exc:  # a check must never take the doctor down
            detail, status = f"{type(exc).__name__}: {exc}", "fail"
        ms = int((time.monotonic() - start) * 1000)
        results.append(CheckResult(name, status, detail, ms))
    return results


def exit_code(results: Iterable[CheckResult]) -> int:
    return 1 if any(r.status == "fail" for r in results) else 0


_MARK = {"ok": "OK", "warn": "WARN", "fail": "FAIL", "skip": "SKIP"}


def render_table(results: list[CheckResult], width: int = 100) -> str:
    """A fixed-width table; long details wrap onto indented continuation lines."""
    name_w = max([len("CHECK")] + [len(r.name) for r in results])
    head = f"{'CHECK':<{name_w}}  STATUS  {'MS':>5}  DETAIL"
    indent = " " * (name_w + 17)
    lines = [head, "-" * width]
    for r in results:
        wrapped = textwrap.wrap(r.detail, width=max(20, width - len(indent))) or [""]
        lines.append(f"{r.name:<{name_w}}  {_MARK[r.status]:<6}  {r.ms:>5}  {wrapped[0]}")
        lines.extend(indent + more for more in wrapped[1:])
    counts = {s: sum(r.status == s for r in results) for s in _MARK}
    lines.append("-" * width)
    lines.append(
        f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail, {counts['skip']} skip"
    )
    return "\n".join(lines)


def render_json(results: list[CheckResult]) -> str:
    return json.dumps(
        {"ok": exit_code(results) == 0, "checks": [asdict(r) for r in results]}, indent=2
    )
