"""The admin page's waitress server stops from another thread without its loop failing."""

from __future__ import annotations

import socket
import threading
import urllib.request

import pytest

from web_admin.serving import AdminServer, max_body_bytes


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


def _answer_to_headers_only(port: int, path: str, length: int) -> bytes:
    """The first bytes waitress answers to a POST that announces `length` body bytes and sends
    none of them (a server that waits for the body lets the read time out: the test fails)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            f"POST {path} HTTP/1.1\r\nHost: door\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {length}\r\n\r\n".encode()
        )
        return s.recv(200)


def test_a_body_over_the_upload_limit_is_refused_before_it_is_read(app) -> None:
    """waitress buffers a whole body before Flask runs; without its own limit (1 GB by default)
    anyone, signed in or not, could make it store 50 MB before the app's 413."""
    mb = app.extensions["doorward"]["config"].admin.max_upload_mb
    srv = AdminServer(app, "127.0.0.1", 0).start()
    try:
        assert srv.server.adj.max_request_body_size == max_body_bytes(mb)
        for path in ("/users/new", "/login"):
            answer = _answer_to_headers_only(srv.port, path, 50 * 1024 * 1024)
            assert answer.startswith(b"HTTP/1.1 413"), (path, answer)
            answer = _answer_to_headers_only(srv.port, path, max_body_bytes(mb))
            assert answer.startswith(b"HTTP/1.1 413"), (path, answer)
        # a body of the app's own limit still reaches the app (unsigned: 401 from the app)
        body = b"x" * int(mb * 1024 * 1024)
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(
                b"POST /users/new HTTP/1.1\r\nHost: door\r\nConnection: close\r\n"
                b"Content-Type: application/octet-stream\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            assert s.recv(200).startswith(b"HTTP/1.1 401")
    finally:
        srv.stop()
