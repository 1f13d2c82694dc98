"""The dispatcher end to end on a real SQLite outbox with loopback peers, including faults."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from appliance.alerts.dispatcher import Dispatcher, build_dispatcher
from appliance.alerts.message import AlertMessage, ChannelError
from appliance.alerts.probe import ConnectivityProbe, StaticProbe
from appliance.store.db import Database
from appliance.store.models import OutboxAlert, utcnow
from appliance.store.models_alerts import AlertDelivery
from tests.support.loopback import SmtpServer, TwilioServer
from tests.support.sim_modem import SimModem
from tests.support.waiting import eventually, free_port

from .support import add_alert, email_section, gsm_section, make_config, twilio_section


def states(outbox_db: Database) -> dict[str, dict[str, str]]:
    with outbox_db.session() as s:
        out: dict[str, dict[str, str]] = {}
        for a in s.scalars(select(OutboxAlert)):
            out[a.id] = {"alert": a.state}
        for d in s.scalars(select(AlertDelivery)):
            out[d.alert_id][d.channel] = d.state
        return out


class Recorder:
    """A channel that records and can be told to fail (for routing/cap logic, not transport)."""

    def __init__(self, name: str, fail: ChannelError | None = None) -> None:
        self.name = name
        self.fail = fail
        self.sent: list[AlertMessage] = []

    def send(self, message: AlertMessage) -> None:
        if self.fail:
            raise self.fail
        self.sent.append(message)

    def close(self) -> None:
        pass


def test_embedded_default_delivers_to_the_mailbox(tmp_path: Path, outbox_db: Database) -> None:
    config = make_config(tmp_path)
    alert_id = add_alert(outbox_db, tmp_path)
    dispatcher = build_dispatcher(config, outbox_db)
    assert set(dispatcher.channels) == {"mailbox"}
    assert dispatcher.run_once() == 1
    assert (config.mailbox_dir / f"{alert_id}.eml").exists()
    assert states(outbox_db)[alert_id] == {"alert": "delivered", "mailbox": "delivered"}
    assert dispatcher.run_once() == 0


def test_smtp_down_then_back_delivers_exactly_once(tmp_path: Path, outbox_db: Database) -> None:
    port = free_port()
    config = make_config(tmp_path, email=email_section(port))
    dispatcher = build_dispatcher(config, outbox_db)
    dispatcher.start()
    try:
        alert_id = add_alert(outbox_db, tmp_path)
        dispatcher.notify()
        # mailbox gets it at once; email keeps retrying with backoff while the server is down
        eventually(lambda: states(outbox_db)[alert_id].get("mailbox") == "delivered")
        eventually(lambda: _attempts(outbox_db, alert_id, "email") >= 3)
        assert states(outbox_db)[alert_id]["alert"] == "pending"
        server = SmtpServer(port=port).start()
        try:
            eventually(lambda: states(outbox_db)[alert_id]["alert"] == "delivered")
            dispatcher.stop()
            # more passes, even forced past every backoff, must not send it again
            assert [dispatcher.run_once(force=True) for _ in range(3)] == [0, 0, 0]
            assert server.sink.message_ids() == [f"<{alert_id}@door-t.doorward>"]
        finally:
            server.stop()
    finally:
        dispatcher.stop()


def _attempts(outbox_db: Database, alert_id: str, channel: str) -> int:
    with outbox_db.session() as s:
        d = s.get(AlertDelivery, (alert_id, channel))
        return 0 if d is None else d.attempts


@pytest.mark.parametrize("mode", ["500", "hang"])
def test_twilio_failing_fails_over_to_gsm(
    tmp_path: Path, outbox_db: Database, twilio: TwilioServer, modem: SimModem, mode: str
) -> None:
    twilio.mode, twilio.hang_s = mode, 2.0
    config = make_config(
        tmp_path,
        twilio=twilio_section(twilio),
        gsm=gsm_section(modem),
        twilio_failover_s=0.3,
        mailbox={"enabled": False},
    )
    dispatcher = build_dispatcher(config, outbox_db)
    alert_id = add_alert(outbox_db, tmp_path)

    def settled() -> bool:
        dispatcher.run_once()
        return states(outbox_db)[alert_id]["alert"] != "pending"

    eventually(settled, 15, what="the alert leaves the queue")
    dispatcher.stop()
    assert states(outbox_db)[alert_id] == {"alert": "delivered", "sms": "delivered"}
    assert len(modem.sent) == 1 and "Face mismatch" in modem.sent[0].text
    assert twilio.posts == []
    with outbox_db.session() as s:
        d = s.get(AlertDelivery, (alert_id, "sms"))
        assert d is not None and d.external_id == "gsm:1" and d.attempts >= 2
        assert "twilio" in (d.last_error or "")


def test_sms_goes_by_twilio_when_online_and_gsm_when_offline(
    tmp_path: Path, outbox_db: Database, twilio: TwilioServer, modem: SimModem
) -> None:
    config = make_config(tmp_path, twilio=twilio_section(twilio), gsm=gsm_section(modem))
    probe = StaticProbe(True)
    dispatcher = Dispatcher(config, outbox_db, probe=probe)
    first = add_alert(outbox_db, tmp_path)
    dispatcher.run_once()
    assert len(twilio.posts) == 1 and modem.sent == []
    probe.online = False
    second = add_alert(outbox_db, tmp_path, kind="forced")
    dispatcher.run_once()
    dispatcher.stop()
    assert len(twilio.posts) == 1 and len(modem.sent) == 1
    assert "Door forced open" in modem.sent[0].text
    s = states(outbox_db)
    assert s[first]["alert"] == s[second]["alert"] == "delivered"


def test_connectivity_probe_never_blocks_and_sees_loopback(tmp_path: Path) -> None:
    # a blackholed address would block a synchronous check; reading `online` must not wait
    probe = ConnectivityProbe("10.255.255.1", 9, interval_s=60, timeout_s=2.0)
    probe.start()
    t0 = time.perf_counter()
    assert probe.online is True  # unknown yet: not blocking, optimistic
    assert time.perf_counter() - t0 < 0.05
    probe.stop()
    closed = ConnectivityProbe("127.0.0.1", free_port(), interval_s=60)
    assert closed.check() is False and closed.online is False
    with _Listening() as port:
        opened = ConnectivityProbe("127.0.0.1", port, interval_s=60)
        assert opened.check() is True and opened.online is True


class _Listening:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_backoff_is_exponential_with_jitter_and_capped(tmp_path: Path, outbox_db: Database) -> None:
    config = make_config(tmp_path, backoff_initial_s=2, backoff_max_s=60)
    d = Dispatcher(config, outbox_db, channels={})
    for attempts, base in [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (20, 60)]:
        samples = [d.backoff_s(attempts) for _ in range(200)]
        assert base * 0.5 <= min(samples) and max(samples) <= base
        assert max(samples) - min(samples) > base * 0.2  # really jittered


def test_permanent_error_and_give_up_mark_the_alert_failed(
    tmp_path: Path, outbox_db: Database
) -> None:
    now = [utcnow()]
    config = make_config(tmp_path, give_up_after_s=60)
    bad = Recorder("email", ChannelError("smtp 550 no such user", transient=False))
    flaky = Recorder("email", ChannelError("smtp down"))
    d1 = Dispatcher(config, outbox_db, channels={"email": bad}, clock=lambda: now[0])
    a1 = add_alert(outbox_db, tmp_path)
    d1.run_once()
    assert states(outbox_db)[a1] == {"alert": "failed", "email": "failed"}
    d2 = Dispatcher(config, outbox_db, channels={"email": flaky}, clock=lambda: now[0])
    a2 = add_alert(outbox_db, tmp_path, kind="tamper", ts=now[0])
    d2.run_once(force=True)
    assert states(outbox_db)[a2]["alert"] == "pending"
    now[0] += timedelta(seconds=61)  # the wall clock alone never gives up (see tests/faults)
    d2.run_once(force=True)
    assert states(outbox_db)[a2]["alert"] == "pending"
    tries = 2
    while states(outbox_db)[a2]["alert"] == "pending" and tries < 2000:
        d2.run_once(force=True)
        tries += 1
    failed_after = tries - 1  # the last pass only gave up, it made no attempt
    assert states(outbox_db)[a2] == {"alert": "failed", "email": "failed"}
    assert failed_after >= config.alerts.min_attempts
    # given up exactly when the attempts' backoff adds up to give_up_after_s, not before
    assert d2.attempt_age_s(failed_after) >= 60 > d2.attempt_age_s(failed_after - 1)
    with outbox_db.session() as s:
        a = s.get(OutboxAlert, a2)
        assert a is not None and f"gave up after {failed_after} attempts" in (a.last_error or "")


def test_restart_resumes_pending_deliveries(tmp_path: Path, outbox_db: Database) -> None:
    failing = Recorder("email", ChannelError("smtp down"))
    config = make_config(tmp_path)
    alert_id = add_alert(outbox_db, tmp_path)
    Dispatcher(config, outbox_db, channels={"email": failing}).run_once()
    assert states(outbox_db)[alert_id]["alert"] == "pending"
    fresh = Recorder("email")  # a new process: nothing in memory, all state in the DB
    d = Dispatcher(config, outbox_db, channels={"email": fresh})
    eventually(lambda: d.run_once() == 1 or bool(fresh.sent), timeout=5)
    assert [m.id for m in fresh.sent] == [alert_id]
    assert states(outbox_db)[alert_id] == {"alert": "delivered", "email": "delivered"}


def test_hourly_cap_suppresses_but_never_duress_or_forced(
    tmp_path: Path, outbox_db: Database
) -> None:
    config = make_config(tmp_path, hourly_cap=2)
    email = Recorder("email")
    d = Dispatcher(config, outbox_db, channels={"email": email, "mailbox": Recorder("mailbox")})
    ids = [add_alert(outbox_db, tmp_path, kind="held_open") for _ in range(4)]
    d.run_once()
    s = states(outbox_db)
    assert [s[i]["email"] for i in ids] == ["delivered", "delivered", "suppressed", "suppressed"]
    assert all(s[i]["mailbox"] == "delivered" for i in ids)  # the local mailbox is not capped
    assert all(s[i]["alert"] == "delivered" for i in ids)  # suppressed by policy is done
    urgent = [add_alert(outbox_db, tmp_path, kind=k) for k in ("duress", "forced", "tamper")]
    d.run_once()
    s = states(outbox_db)
    assert all(s[i]["email"] == "delivered" for i in urgent)
    assert [m.id for m in email.sent] == ids[:2] + urgent


def test_kinds_route_recipients(tmp_path: Path, outbox_db: Database, smtp: SmtpServer) -> None:
    config = make_config(
        tmp_path, email=email_section(smtp.port, kinds=["duress", "forced"]), mailbox={}
    )
    d = build_dispatcher(config, outbox_db)
    assert d.routes("denied_face") == ["mailbox"]
    assert d.routes("duress") == ["mailbox", "email"]
    a = add_alert(outbox_db, tmp_path, kind="denied_face")
    b = add_alert(outbox_db, tmp_path, kind="duress")
    d.run_once()
    d.stop()
    assert smtp.sink.message_ids() == [f"<{b}@door-t.doorward>"]
    assert states(outbox_db)[a] == {"alert": "delivered", "mailbox": "delivered"}


def test_a_hanging_smtp_server_does_not_hold_up_sms(
    tmp_path: Path, outbox_db: Database, modem: SimModem
) -> None:
    with _Listening() as port:  # accepts TCP, never says a word: each try waits its timeout
        config = make_config(
            tmp_path, email=email_section(port, timeout_s=1), gsm=gsm_section(modem),
            mailbox={"enabled": False},
        )  # fmt: skip
        d = build_dispatcher(config, outbox_db)
        ids = [add_alert(outbox_db, tmp_path, kind="forced") for _ in range(3)]
        assert d.run_once() == 3  # the three SMS
        d.stop()
    assert len(modem.sent) == 3
    assert sum(_attempts(outbox_db, i, "email") for i in ids) == 1  # tried once, then skipped
    assert all(states(outbox_db)[i]["email"] == "pending" for i in ids)


def test_recipients_get_only_their_kinds(
    tmp_path: Path, outbox_db: Database, smtp: SmtpServer, twilio: TwilioServer
) -> None:
    section = email_section(
        smtp.port, to=["all@example.test", {"to": "boss@example.test", "kinds": ["duress"]}]
    )
    sms = twilio_section(twilio, to=[{"to": "+15550009999", "kinds": ["forced", "duress"]}])
    config = make_config(tmp_path, email=section, twilio=sms, mailbox={"enabled": False})
    d = build_dispatcher(config, outbox_db)
    assert d.routes("denied_face") == ["email"]  # no SMS recipient wants it
    add_alert(outbox_db, tmp_path, kind="denied_face")
    add_alert(outbox_db, tmp_path, kind="duress")
    d.run_once()
    d.stop()
    to = {str(m["X-Doorward-Kind"]): str(m["To"]) for m in smtp.sink.messages}
    assert to["denied_face"] == "all@example.test"
    assert to["duress"] == "all@example.test, boss@example.test"
    assert [p.form["To"] for p in twilio.posts] == ["+15550009999"]
    assert "DURESS" in twilio.posts[0].form["Body"]


def test_unknown_kind_in_config_is_rejected_by_name(tmp_path: Path) -> None:
    from appliance.config import ConfigError

    with pytest.raises(ConfigError, match=r"alerts\.email\.to\[0\]\.kinds.*'burglary'"):
        make_config(tmp_path, email=email_section(25, to=[{"to": "x@y.z", "kinds": ["burglary"]}]))


def test_offline_probe_routes_sms_to_the_modem(
    tmp_path: Path, outbox_db: Database, twilio: TwilioServer, modem: SimModem
) -> None:
    # the real probe, aimed at a closed loopback port: "internet down"
    config = make_config(
        tmp_path, twilio=twilio_section(twilio), gsm=gsm_section(modem), probe_enabled=True,
        probe_host="127.0.0.1", probe_port=free_port(), probe_interval_s=0.05,
    )  # fmt: skip
    d = build_dispatcher(config, outbox_db)
    assert isinstance(d.probe, ConnectivityProbe)
    d.start()
    try:
        eventually(lambda: d.probe.online is False)
        alert_id = add_alert(outbox_db, tmp_path, kind="forced")
        d.notify()
        eventually(lambda: states(outbox_db)[alert_id]["alert"] == "delivered")
    finally:
        d.stop()
    assert len(modem.sent) == 1 and twilio.posts == []
    only_email = build_dispatcher(make_config(tmp_path, probe_enabled=True), outbox_db)
    assert isinstance(only_email.probe, StaticProbe)  # nothing to choose: no probing
