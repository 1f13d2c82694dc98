"""Owns running the admin page on waitress in a thread, and stopping it without a race.

waitress's `server.close()` called from another thread closes the sockets under the
select() its loop thread is sitting in, which then fails with EBADF. Here the closing runs
on the loop thread itself (through waitress's trigger), so the loop ends cleanly.
"""

from __future__ import annotations

import math
import threading
from typing import Any

# The provisioned front (nginx, provisioning/nginx/doorward.conf) connects from 127.0.0.1 and
# sets X-Forwarded-For/-Proto/-Host. waitress drops those headers from anyone it does not
# trust *before* Flask runs, so without these settings the page never learns the client's
# address or that the browser spoke HTTPS (no Secure cookie, no HSTS, one throttle for all).
TRUSTED_PROXY = "127.0.0.1"
TRUSTED_PROXY_HEADERS = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})

# waitress reads a whole request body (to memory, then a temporary file) before the app runs:
# the app's own 413 (auth._load) comes only after that, so waitress itself refuses a body
# longer than admin.max_upload_mb plus this margin as soon as it has read the headers.
# provisioning/install.sh gives nginx's client_max_body_size the same limit (in KiB).
BODY_MARGIN = 64 * 1024
DEFAULT_MAX_UPLOAD_MB = 10.0  # AdminConfig's default, for a server given a bare WSGI app


def max_body_bytes(max_upload_mb: float) -> int:
    """The longest request body the server reads for a page whose max_upload_mb is this."""
    return math.ceil(max_upload_mb * 1024) * 1024 + BODY_MARGIN


def app_max_upload_mb(app: Any) -> float:
    """admin.max_upload_mb of a web_admin app (DEFAULT_MAX_UPLOAD_MB for any other WSGI app)."""
    doorward = getattr(app, "extensions", {}).get("doorward")
    if doorward is None:
        return DEFAULT_MAX_UPLOAD_MB
    return float(doorward["config"].admin.max_upload_mb)


def waitress_settings(
    trust_loopback_proxy: bool = True, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
) -> dict[str, Any]:
    """create_server keywords for every server the project starts."""
    settings: dict[str, Any] = {
        "clear_untrusted_proxy_headers": True,
        "max_request_body_size": max_body_bytes(max_upload_mb),
    }
    if trust_loopback_proxy:
        settings.update(
            trusted_proxy=TRUSTED_PROXY,
            trusted_proxy_count=1,
            trusted_proxy_headers=set(TRUSTED_PROXY_HEADERS),
        )
    return settings


def create_admin_server(
    app: Any, host: str, port: int, threads: int = 4, trust_loopback_proxy: bool = True
) -> Any:
    from waitress import create_server

    settings = waitress_settings(trust_loopback_proxy, app_max_upload_mb(app))
    return create_server(app, host=host, port=port, threads=threads, **settings)


class AdminServer:
    """A waitress server running `app` on its own thread."""

    def __init__(
        self, app: Any, host: str, port: int, threads: int = 4, trust_loopback_proxy: bool = True
    ) -> None:
        self.server = create_admin_server(app, host, port, threads, trust_loopback_proxy)
        self.port: int = self.server.effective_port
        self.thread = threading.Thread(target=self.server.run, name="admin-http", daemon=True)

    def start(self) -> AdminServer:
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        stop_waitress(self.server, self.thread, timeout)


def stop_waitress(server: Any, thread: threading.Thread | None, timeout: float = 5.0) -> None:
    """Stop `server` whose run() loop runs on `thread` (None: the loop is not running)."""
    from waitress import wasyncore

    socket_map = getattr(server, "_map", None)
    trigger = getattr(server, "trigger", None)
    if thread is None or not thread.is_alive() or trigger is None or socket_map is None:
        server.close()
        return

    def close_on_loop_thread() -> None:
        server.task_dispatcher.shutdown(timeout=timeout)
        wasyncore.close_all(socket_map)  # listening socket, open connections, the trigger

    trigger.pull_trigger(close_on_loop_thread)
    thread.join(timeout)
    if thread.is_alive():  # the loop did not turn in time; fall back to waitress's own close
        server.close()
        thread.join(timeout)
