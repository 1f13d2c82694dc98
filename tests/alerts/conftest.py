"""Fixtures for the alerts tests: a migrated SQLite outbox and loopback peers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.store.db import Database, sqlite_url
from tests.support.loopback import SmtpServer, TwilioServer
from tests.support.sim_modem import SimModem

from .support import serve_twilio


@pytest.fixture
def outbox_db(tmp_path: Path) -> Iterator[Database]:
    database = Database.from_url(sqlite_url(tmp_path / "doorward.db"))
    database.migrate()
    yield database
    database.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[TwilioServer]:
    yield from serve_twilio(monkeypatch)


@pytest.fixture
def modem() -> Iterator[SimModem]:
    with SimModem() as m:
        yield m
