"""Alerts page: queue state per channel, retry of a failed alert, the mailbox with its photo.

The alerts go through the real dispatcher: the mailbox channel writes .eml files, and the email
channel talks to a real SMTP server on loopback (first to a closed port, so it fails).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import select

from appliance.alerts.dispatcher import Dispatcher, build_channels
from appliance.alerts.outbox import enqueue_alert
from appliance.alerts.status import outbox_status
from appliance.config import parse_config
from appliance.store.models import AccessEvent, OutboxAlert, utcnow
from appliance.store.models_admin import AuditEntry
from appliance.store.models_alerts import AlertDelivery
from appliance.store.snapshots import SnapshotStore
from tests.support.loopback import SmtpServer
from tests.support.waiting import free_port

from .conftest import VIEWER_PW, csrf_of, login


def _channel_row(html: str, channel: str) -> list[str]:
    """The cells of one row of the per-channel table."""
    m = re.search(rf'<tr><td data-label="Channel">{channel}</td>(.*?)</tr>', html)
    assert m, f"no row for channel {channel}"
    return re.findall(r"<td[^>]*>(.*?)</td>", m.group(1))


def _tile(html: str, state: str) -> int:
    m = re.search(rf'<span class="label">{state}</span><strong>(\d+)</strong>', html, re.I)
    assert m, f"no {state} tile"
    return int(m.group(1))


@pytest.fixture
def smtp_port() -> int:
    return free_port()  # nothing listens there until a test starts a server


@pytest.fixture
def dispatcher(admin_config, db, smtp_port):
    """The real dispatcher on the page's database: mailbox + email, with a settable clock."""
    alerts = {
        "probe_enabled": False,
        "backoff_initial_s": 0.05,
        "backoff_max_s": 0.2,
        "give_up_after_s": 1,
        "email": {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                  "from": "door@example.test", "to": ["owner@example.test"], "timeout_s": 2},
    }  # fmt: skip
    dconfig = parse_config(
        {"device": {"id": "door-1", "name": "Front door", "data_dir": str(admin_config.data_dir)},
         "alerts": alerts}
    )  # fmt: skip
    assert dconfig.mailbox_dir == admin_config.mailbox_dir  # the page reads the same mailbox
    now = [utcnow()]
    d = Dispatcher(dconfig, db, channels=build_channels(dconfig), clock=lambda: now[0])
    d.now = now  # type: ignore[attr-defined]
    yield d
    for channel in d.channels.values():
        channel.close()  # the email channel keeps its SMTP connection between sends


@pytest.fixture
def alert(admin_config, db) -> tuple[str, bytes]:
    """A held-open event with its snapshot and its outbox alert, committed together."""
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[:, :40] = (200, 40, 40)
    rel = SnapshotStore(admin_config.data_dir).save(rgb)
    with db.session() as s:
        ev = AccessEvent(device_id="door-1", kind="held_open", snapshot_path=rel)
        s.add(ev)
        s.flush()
        alert_id = enqueue_alert(s, event=ev).id
    return alert_id, (admin_config.data_dir / rel).read_bytes()


@pytest.fixture
def smtp(smtp_port) -> Iterator[SmtpServer]:
    server = SmtpServer(port=smtp_port)
    yield server
    server.stop()


def _until_given_up(dispatcher, db) -> None:
    """Email gives up once its attempts' backoff adds up to give_up_after_s (not by the
    wall clock): keep trying until it has."""
    for _ in range(200):
        if outbox_status(db)["alerts"].get("failed"):
            return
        dispatcher.run_once(force=True)
    raise AssertionError("email never gave up")


def test_queue_state_per_channel_and_retry_of_a_failed_alert(
    client, token, db, dispatcher, alert, smtp
) -> None:
    alert_id, _ = alert
    page = client.get("/alerts").text
    assert _tile(page, "pending") == 1 and _tile(page, "failed") == 0
    assert "not routed yet" in page

    dispatcher.run_once()  # mailbox delivers; email finds nobody listening and backs off
    page = client.get("/alerts").text
    mailbox, email = _channel_row(page, "mailbox"), _channel_row(page, "email")
    assert mailbox[:4] == ["0", "1", "0", "0"] and mailbox[4] == "-"  # nothing left to try
    assert email[:4] == ["1", "0", "0", "0"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", email[4]), email  # the next try
    assert "mailbox: delivered" in page and "email: pending (1 tries)" in page
    status = outbox_status(db)  # the page agrees with the outbox summary
    assert status["alerts"]["pending"] == _tile(page, "pending") == 1
    assert status["channels"] == {"mailbox": {"delivered": 1}, "email": {"pending": 1}}

    _until_given_up(dispatcher, db)
    page = client.get("/alerts").text
    assert _tile(page, "failed") == 1 and _tile(page, "pending") == 0
    assert _channel_row(page, "email")[:4] == ["0", "0", "0", "1"]
    assert "gave up after" in page and "attempts" in page
    assert f'action="/alerts/{alert_id}/retry"' in page
    assert client.get("/alerts?state=failed").text.count(f"/alerts/{alert_id}/retry") == 1
    assert f"/alerts/{alert_id}/retry" not in client.get("/alerts?state=delivered").text

    before = utcnow()
    r = client.post(f"/alerts/{alert_id}/retry", data={"csrf_token": token})
    after = utcnow()
    assert r.status_code == 302
    with db.session() as s:
        a = s.get(OutboxAlert, alert_id)
        assert a.state == "pending" and a.delivered_at is None
        assert before <= a.next_attempt_at <= after  # due now
        rows = {d.channel: d for d in s.scalars(select(AlertDelivery))}
        assert rows["email"].state == "pending" and before <= rows["email"].next_attempt_at <= after
        assert rows["email"].first_failure_at is None
        assert rows["mailbox"].state == "delivered"  # what was delivered is not sent again
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "alert_retry")).one()
        assert audit.target == f"alert {alert_id}" and audit.detail["channels"] == ["email"]
    page = client.get("/alerts").text
    assert "queued again (email)" in page and _tile(page, "pending") == 1

    # the mail server is back: the retried alert goes out once, on email only
    smtp.start()
    dispatcher.now[0] = utcnow()
    assert dispatcher.run_once() == 1
    (sent,) = smtp.sink.message_ids()
    assert alert_id in sent
    page = client.get("/alerts").text
    assert _tile(page, "delivered") == 1 and _tile(page, "failed") == 0
    assert _channel_row(page, "email")[:4] == ["0", "1", "0", "0"]


def test_retry_refuses_what_is_not_failed(client, token, db, alert) -> None:
    alert_id, _ = alert
    r = client.post(f"/alerts/{alert_id}/retry", data={"csrf_token": token}, follow_redirects=True)
    assert "only a failed alert can be retried" in r.text
    with db.session() as s:
        assert s.get(OutboxAlert, alert_id).next_attempt_at is None  # untouched
    assert client.post("/alerts/no-such-alert/retry", data={"csrf_token": token}).status_code == 404


def test_viewer_sees_the_queue_but_cannot_retry(app, db, dispatcher, alert) -> None:
    alert_id, _ = alert
    dispatcher.run_once()
    _until_given_up(dispatcher, db)
    c = app.test_client()
    assert login(c, "viewer", VIEWER_PW).status_code == 302
    page = c.get("/alerts").text
    assert _tile(page, "failed") == 1 and "/retry" not in page
    r = c.post(f"/alerts/{alert_id}/retry", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 403
    with db.session() as s:
        assert s.get(OutboxAlert, alert_id).state == "failed"


def test_mailbox_lists_the_eml_with_its_photo(client, admin_config, dispatcher, alert) -> None:
    alert_id, snapshot = alert
    assert "The mailbox is empty." in client.get("/mailbox").text
    dispatcher.run_once()
    eml = admin_config.mailbox_dir / f"{alert_id}.eml"
    assert eml.is_file()  # written by the real MailboxChannel

    listing = client.get("/mailbox").text
    assert 'Local mailbox <span class="muted">(1)</span>' in listing
    assert f'href="/mailbox/{alert_id}.eml"' in listing
    assert "[Doorward] Door held open at Front door" in listing
    photo_url = f"/mailbox/{alert_id}.eml/photo/0.jpg"
    assert f'src="{photo_url}"' in listing
    with client.get(photo_url) as photo:
        assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
        assert photo.data == snapshot  # the very snapshot the door took
        assert photo.headers["Cache-Control"] == "private, no-store"  # no cache keeps it

    message = client.get(f"/mailbox/{alert_id}.eml").text
    assert f"Alert id: {alert_id}" in message and f'src="{photo_url}"' in message
    assert f"{alert_id}.jpg (image/jpeg, {len(snapshot)} bytes)" in message
    # names are checked: no path tricks, no other attachment index, no missing message
    assert client.get("/mailbox/..%2Fconfig.toml").status_code == 404
    assert client.get(f"/mailbox/{alert_id}.eml/photo/1.jpg").status_code == 404
    assert client.get("/mailbox/0000.eml").status_code == 404


def test_mailbox_message_without_photo(client, admin_config) -> None:
    from datetime import UTC, datetime

    from appliance.alerts.channels.mailbox import MailboxChannel
    from appliance.alerts.message import AlertMessage

    MailboxChannel(admin_config.mailbox_dir).send(
        AlertMessage(
            id="a1b2",
            kind="test",
            time=datetime(2025, 6, 2, tzinfo=UTC),
            device_id="door-1",
            door="Front door",
        )  # fmt: skip
    )
    listing = client.get("/mailbox").text
    assert "Test message at Front door" in listing and "no photo" in listing
    assert "/photo/" not in listing
    assert client.get("/mailbox/a1b2.eml/photo/0.jpg").status_code == 404
