"""Promises 7 and 8: alert delivery survives wall-clock steps; SMTP sends once per attempt."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from appliance.alerts.dispatcher import Dispatcher, build_channels
from appliance.alerts.message import AlertMessage, ChannelError
from appliance.store.db import Database, sqlite_url
from appliance.store.models import OutboxAlert, utcnow
from appliance.store.models_alerts import AlertDelivery
from tests.alerts.support import add_alert, email_section, make_config

from .doubles import FakeSmtp

TWO_DAYS = timedelta(days=2)


class Flaky:
    """A channel that fails while `down` and records what it delivered."""

    name = "email"

    def __init__(self) -> None:
        self.down = True
        self.attempts = 0
        self.sent: list[AlertMessage] = []

    def send(self, message: AlertMessage) -> None:
        self.attempts += 1
        if self.down:
            raise ChannelError("smtp down")
        self.sent.append(message)

    def close(self) -> None: ...


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database.from_url(sqlite_url(tmp_path / "outbox.db"))
    d.migrate()
    yield d
    d.close()


def _state(db: Database, alert_id: str) -> tuple[str, int]:
    with db.session() as s:
        a = s.get(OutboxAlert, alert_id)
        d = s.get(AlertDelivery, (alert_id, "email"))
        return a.state, d.attempts if d else 0


def test_a_wall_clock_step_forward_of_two_days_gives_up_nothing(
    tmp_path: Path, db: Database
) -> None:
    """NTP steps a Pi without RTC two days forward: every pending alert is still tried (no
    'gave up' without real attempts) and is delivered once the channel works."""
    now = [utcnow()]
    config = make_config(tmp_path, give_up_after_s=3600)
    channel = Flaky()
    d = Dispatcher(config, db, channels={"email": channel}, clock=lambda: now[0])
    alert_id = add_alert(db, tmp_path, kind="tamper", ts=now[0])
    d.run_once()
    now[0] += TWO_DAYS
    for _ in range(config.alerts.min_attempts + 2):
        d.run_once(force=True)
    assert _state(db, alert_id)[0] == "pending"
    channel.down = False
    d.run_once(force=True)
    assert _state(db, alert_id)[0] == "delivered"
    assert [m.id for m in channel.sent] == [alert_id]


def test_a_wall_clock_step_back_of_two_days_does_not_park_a_retry_for_two_days(
    tmp_path: Path, db: Database
) -> None:
    """The clock steps two days back after a failed attempt: the retry scheduled 'in the
    future' is due within the backoff, not two days later."""
    now = [utcnow()]
    config = make_config(tmp_path)
    channel = Flaky()
    d = Dispatcher(config, db, channels={"email": channel}, clock=lambda: now[0])
    alert_id = add_alert(db, tmp_path, kind="forced", ts=now[0])
    d.run_once()
    assert _state(db, alert_id) == ("pending", 1)
    now[0] -= TWO_DAYS
    channel.down = False
    d.run_once()  # not forced: only what is due
    assert _state(db, alert_id)[0] == "delivered"


def test_smtp_that_hangs_after_data_gets_one_transmission_and_flush_keeps_its_timeout(
    tmp_path: Path, db: Database
) -> None:
    """An SMTP server that takes DATA and never answers: `flush(8)` transmits the alert once
    (a failure after DATA may be a delivery, so it is not resent in that flush) and returns in
    about 8 s, not 16."""
    fake_smtp = FakeSmtp(hang_after_data=True).start()
    try:
        config = make_config(tmp_path, mailbox={"enabled": False},
                             email=email_section(fake_smtp.port, timeout_s=3))  # fmt: skip
        d = Dispatcher(config, db, channels=build_channels(config))
        alert_id = add_alert(db, tmp_path, kind="tamper")
        t0 = time.monotonic()
        left = d.flush(8)
        took = time.monotonic() - t0
        d.stop(timeout=1)
    finally:
        fake_smtp.stop()
    assert left == 1 and _state(db, alert_id)[0] == "pending"
    assert len(fake_smtp.messages) == 1, f"{len(fake_smtp.messages)} transmissions"
    assert took <= 8.5, f"flush took {took:.1f}s"
    print(f"transmissions={len(fake_smtp.messages)} flush_s={took:.2f}")


def test_flush_timeout_bounds_a_send_whose_own_timeout_is_longer(
    tmp_path: Path, db: Database
) -> None:
    """`flush --timeout 2` with an SMTP timeout of 10 s against a hanging server returns in
    about 2 s: the send's socket timeout is cut to what is left of the flush."""
    fake_smtp = FakeSmtp(hang_after_data=True).start()
    try:
        config = make_config(tmp_path, mailbox={"enabled": False},
                             email=email_section(fake_smtp.port, timeout_s=10))  # fmt: skip
        d = Dispatcher(config, db, channels=build_channels(config))
        add_alert(db, tmp_path, kind="tamper")
        t0 = time.monotonic()
        d.flush(2)
        took = time.monotonic() - t0
        d.stop(timeout=1)
    finally:
        fake_smtp.stop()
    assert took <= 2.7, f"flush took {took:.1f}s"
