"""Owns loopback peers for alert tests and benchmarks: an SMTP server and a Twilio-shaped API."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from .waiting import free_port


@dataclass
class SmtpSink:
    """aiosmtpd handler: keeps every message, de-duplicated by Message-ID on request."""

    delay_s: float = 0.0
    messages: list[EmailMessage] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # perf_counter at DATA end
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):
        if self.delay_s:
            import asyncio

            await asyncio.sleep(self.delay_s)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(msg)
            self.arrived.append(time.perf_counter())
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(m["Message-ID"]) for m in self.messages]


class SmtpServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that can be stopped and started again."""

    def __init__(self, delay_s: float = 0.0, port: int | None = None, **controller: Any) -> None:
        """controller: aiosmtpd options, e.g. ssl_context (implicit TLS), tls_context +
        require_starttls (STARTTLS), authenticator."""
        self.sink = SmtpSink(delay_s=delay_s)
        self.port = port or free_port()
        self.options = controller
        self._controller: Any = None

    def start(self) -> SmtpServer:
        from aiosmtpd.controller import Controller  # a dev dependency: tests and benchmarks

        self._controller = Controller(
            self.sink, hostname="127.0.0.1", port=self.port, **self.options
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass
class TwilioPost:
    sid: str
    path: str
    auth: tuple[str, str]
    form: dict[str, str]
    at: float


class TwilioServer:
    """Answers POST /2010-04-01/Accounts/{sid}/Messages.json like Twilio (201 + JSON).

    mode: "ok" | "500" | "hang" (holds the request hang_s before answering).
    """

    def __init__(self, account_sid: str = "AC" + "0" * 32, token: str | None = None) -> None:
        self.account_sid = account_sid
        self.token = token or secrets.token_hex(16)
        self.mode = "ok"
        self.hang_s = 5.0
        self.posts: list[TwilioPost] = []
        self._n = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                outer._handle(self, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> TwilioServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _json(self, h: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _handle(self, h: BaseHTTPRequestHandler, body: str) -> None:
        expected = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        auth = h.headers.get("Authorization", "")
        try:
            user, _, pw = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            user, pw = "", ""
        if (user, pw) != (self.account_sid, self.token):
            self._json(h, 401, {"code": 20003, "message": "Authenticate", "status": 401})
            return
        if h.path != expected:
            self._json(h, 404, {"code": 20404, "message": "not found", "status": 404})
            return
        if self.mode == "hang":
            time.sleep(self.hang_s)
        if self.mode in ("500", "hang"):
            self._json(h, 500, {"code": 20500, "message": "Internal Server Error", "status": 500})
            return
        form = {k: v[0] for k, v in parse_qs(body).items()}
        self._n += 1
        sid = f"SM{self._n:032x}"
        self.posts.append(TwilioPost(sid, h.path, (user, pw), form, time.perf_counter()))
        self._json(
            h,
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": form.get("To"),
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form.get("Body"),
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"{expected[:-5]}/{sid}.json",
            },
        )
