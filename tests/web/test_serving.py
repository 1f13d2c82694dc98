"""The admin page's waitress server stops from another thread without its loop failing."""

from __future__ import annotations

import threading
import urllib.request

import pytest

from web_admin.serving import AdminServer


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


@pytest.mark.parametrize("round_", range(5))
def test_stop_ends_the_loop_without_an_error_in_its_thread(round_: int) -> None:
    errors: list[BaseException] = []
    old_hook = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        srv = AdminServer(_app, "127.0.0.1", 0).start()
        if round_ % 2:  # with and without a connection having been served
            with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/", timeout=5) as r:
                assert r.read() == b"ok"
        srv.stop()
        assert not srv.thread.is_alive()
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/", timeout=2)
    finally:
        threading.excepthook = old_hook
    assert errors == []
