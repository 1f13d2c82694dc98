"""[device], [database], [security], [sync]: who the door is and where its data lives."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from msgspec import Meta

from appliance.config.base import Seconds, SecretRef, Section


class DeviceConfig(Section, frozen=True, kw_only=True):
    id: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = "door-1"
    name: str = "Front door"
    data_dir: Path = Path("var")


class DatabaseConfig(Section, frozen=True, kw_only=True):
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


class SecurityConfig(Section, frozen=True, kw_only=True):
    # HMAC key ("pepper") mixed into PIN hashes; kept on the device, never in the database.
    # Unset: $DOORWARD_PEPPER if set, else <data_dir>/pepper (created once, mode 0600).
    # Every door and admin page sharing one central database must use the same pepper.
    pepper: SecretRef = SecretRef()


class SyncConfig(Section, frozen=True, kw_only=True):
    # with a central database configured, `doorward run` syncs the replica every interval_s
    enabled: bool = True
    interval_s: Seconds = 5.0
    # rows per pull batch and events per push batch
    batch_size: Annotated[int, Meta(ge=1, le=10000)] = 500
