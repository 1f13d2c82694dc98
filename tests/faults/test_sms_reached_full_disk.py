"""Promise 7 under promise 1: the SMS recipients a partly failed delivery reached are kept in
memory when a full disk refuses to store them with the attempt (`alert_deliveries.reached`),
so the same dispatcher does not text them again once space returns (real tmpfs, the
Twilio-shaped server on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from appliance.alerts.dispatcher import Dispatcher
from appliance.alerts.probe import StaticProbe
from appliance.store.db import Database, sqlite_url
from appliance.store.models_alerts import AlertDelivery
from tests.alerts.support import (
    add_alert,
    make_config,
    serve_twilio,
    states,
    twilio_refuses,
    twilio_section,
)
from tests.support.loopback import TwilioServer

from .doubles import fill, free_bytes


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[TwilioServer]:
    yield from serve_twilio(monkeypatch)


def test_numbers_reached_when_a_full_disk_refused_their_record_are_not_texted_again(
    tmpfs: Path, twilio: TwilioServer
) -> None:
    """Twilio takes the first number and answers 503 for the second; the record of that
    attempt (with the reached number) hits a data filesystem full to the last byte. Once
    space is back the same dispatcher retries: the second number gets its text, the first
    is not texted a second time."""
    first, flaky = "+15550000002", "+15550000777"
    db = Database.from_url(sqlite_url(tmpfs / "doorward.db"))
    db.migrate()
    try:
        config = make_config(tmpfs, mailbox={"enabled": False},
                             twilio=twilio_section(twilio, to=[first, flaky]))  # fmt: skip
        d = Dispatcher(config, db, probe=StaticProbe(True))
        alert_id = add_alert(db, tmpfs, kind="forced", photo=False)
        twilio.mode = "500"
        d.run_once(force=True)  # Twilio down: the delivery row is written, a retry scheduled
        assert states(db)[alert_id]["sms"] == "pending" and twilio.posts == []
        twilio.mode = "ok"
        twilio_refuses(twilio, {flaky: [503]})  # once, then it works

        with db.engine.connect() as c:  # an empty WAL: the next commit needs new blocks
            c.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        fill(tmpfs / "filler")
        assert free_bytes(tmpfs) == 0
        with pytest.raises(OperationalError, match="full"):  # the record of that attempt
            d.run_once(force=True)
        assert [p.form["To"] for p in twilio.posts] == [first]
        (tmpfs / "filler").unlink()  # space is back
        with db.session() as s:  # the fault was real: the reached number is not stored
            row = s.get(AlertDelivery, (alert_id, "sms"))
            assert row is not None and not row.reached and row.attempts == 1

        d.run_once(force=True)  # the same dispatcher retries
        assert states(db)[alert_id] == {"alert": "delivered", "sms": "delivered"}
        assert [d.run_once(force=True) for _ in range(2)] == [0, 0]
    finally:
        db.close()
    texted = [p.form["To"] for p in twilio.posts]
    assert texted.count(first) == 1, texted
    assert texted == [first, flaky]
