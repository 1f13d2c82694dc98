"""[admin]: the admin page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from msgspec import Meta

from appliance.config.base import Seconds, SecretRef, Section


class AdminConfig(Section, frozen=True, kw_only=True):
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
    # the safe security margin: the users page flags a user whose face is closer than this to
    # another user's, and enrollment warns (above vision.threshold; see docs/BENCHMARKS.md)
    similar_face_distance: Annotated[float, Meta(gt=0, lt=1.5)] = 0.65
