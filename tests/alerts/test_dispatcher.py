"""The dispatcher end to end on a real SQLite outbox with loopback peers, including faults."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from appliance.alerts.dispatcher import Dispatcher, build_dispatcher
from appliance.alerts.message import AlertMessage, ChannelError
from appliance.alerts.probe import ConnectivityProbe, StaticProbe
from appliance.store.db import Database
from appliance.store.models import OutboxAlert, utcnow
from appliance.store.models_alerts import AlertDelivery
from tests.support.loopback import SmtpServer, TwilioServer
from tests.support.sim_modem import SimModem
from tests.support.waiting import eventually, free_port

from .support import (
    add_alert,
    email_section,
    gsm_section,
    make_config,
    states,
    twilio_refuses,
    twilio_section,
)


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


def test_the_message_names_the_enrolled_user(tmp_path: Path, outbox_db: Database) -> None:
    """An alert about user 12 says who user 12 is (the door's database knows the name); a
    number nobody has stays a number."""
    from appliance.store.models import User

    with outbox_db.session() as s:
        s.add(User(number=12, name="Kit Harington", pin_hash="x"))
    config = make_config(tmp_path)
    named = add_alert(outbox_db, tmp_path)  # user 12
    unnamed = add_alert(outbox_db, tmp_path, kind="duress", user_number=99)  # not grouped
    assert build_dispatcher(config, outbox_db).run_once() == 2
    import email
    import email.policy

    def subject(alert_id: str) -> str:
        raw = (config.mailbox_dir / f"{alert_id}.eml").read_bytes()
        return str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"])

    assert "Kit Harington (user #12)" in subject(named)
    assert "user #99" in subject(unnamed) and "(user #99)" not in subject(unnamed)


def test_a_send_whose_record_hits_a_full_disk_is_not_sent_again(tmp_path: Path) -> None:
    """The email goes out, then the 'delivered' record cannot be written (a real tmpfs full
    to the last byte): later passes retry only the record, never the send; once the disk
    has room the record is written and the alert is done, emailed exactly once."""
    from sqlalchemy import text

    from appliance.alerts.dispatcher import RecordOwed
    from appliance.store.db import sqlite_url
    from tests.faults.doubles import fill, free_bytes, small_tmpfs

    port = free_port()
    with small_tmpfs(tmp_path / "mnt", "4m") as mnt:
        db = Database.from_url(sqlite_url(mnt / "doorward.db"))
        db.migrate()
        try:
            config = make_config(tmp_path, mailbox={"enabled": False}, email=email_section(port))
            d = Dispatcher(config, db, probe=StaticProbe(True))
            alert_id = add_alert(db, tmp_path, kind="forced", photo=False)
            d.run_once()  # SMTP down: the delivery row is written, a retry scheduled
            with db.engine.connect() as c:  # an empty WAL: the next commit needs new blocks
                c.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            fill(mnt / "filler")
            assert free_bytes(mnt) == 0
            server = SmtpServer(port=port).start()
            try:
                for _ in range(4):  # forced: past every backoff, as the loop would get there
                    with pytest.raises(RecordOwed):
                        d.run_once(force=True)
                assert server.sink.message_ids() == [f"<{alert_id}@door-t.doorward>"]
                (mnt / "filler").unlink()
                d.run_once(force=True)  # the record goes in; nothing is sent
                assert states(db)[alert_id] == {"alert": "delivered", "email": "delivered"}
                assert [d.run_once(force=True) for _ in range(2)] == [0, 0]
                assert len(server.sink.messages) == 1
            finally:
                d.stop()
                server.stop()
        finally:
            db.close()


def test_the_loop_backs_off_after_a_pass_that_raised(tmp_path: Path, outbox_db: Database) -> None:
    """A pass that raises (a full disk) is retried after a doubling wait that notify() does
    not cut short, not at every poll interval (which would log and retry twice a second)."""
    import threading

    config = make_config(tmp_path)
    d = Dispatcher(config, outbox_db, channels={})
    passes = [0]

    class Waits(threading.Event):
        """The stop event, recording each wait it is asked for instead of waiting."""

        def __init__(self) -> None:
            super().__init__()
            self.asked: list[float | None] = []

        def wait(self, timeout: float | None = None) -> bool:
            self.asked.append(timeout)
            return self.is_set()

    def failing_pass(force: bool = False) -> int:
        passes[0] += 1
        d.notify()  # the door committing an alert meanwhile
        if passes[0] == 6:
            d._stop.set()
        raise RuntimeError("database or disk is full")

    d._stop = Waits()
    d.run_once = failing_pass  # type: ignore[method-assign]
    d._run()
    assert d._stop.asked == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert [d.error_backoff_s(n) for n in (7, 8, 50)] == [10.0, 10.0, 10.0]


def test_sms_reaches_every_valid_twilio_number_despite_an_invalid_one(
    tmp_path: Path, outbox_db: Database, twilio: TwilioServer
) -> None:
    """Twilio refuses one number for good (400, code 21211): the others are still texted,
    and the delivery is failed (permanent) naming the bad number."""
    bad, good = "+15550000999", "+15550000002"
    twilio_refuses(twilio, {bad: [400]})
    config = make_config(tmp_path, mailbox={"enabled": False},
                         twilio=twilio_section(twilio, to=[bad, good]))  # fmt: skip
    d = Dispatcher(config, outbox_db, probe=StaticProbe(True))
    alert_id = add_alert(outbox_db, tmp_path, kind="forced")
    d.run_once(force=True)
    d.run_once(force=True)
    assert [p.form["To"] for p in twilio.posts] == [good]
    assert states(outbox_db)[alert_id] == {"alert": "failed", "sms": "failed"}
    with outbox_db.session() as s:
        delivery = s.get(AlertDelivery, (alert_id, "sms"))
        assert delivery is not None and f"to={bad}" in (delivery.last_error or "")


def test_a_retry_after_one_number_failed_skips_the_numbers_already_texted(
    tmp_path: Path, outbox_db: Database, twilio: TwilioServer
) -> None:
    first, flaky = "+15550000002", "+15550000777"
    twilio_refuses(twilio, {flaky: [503]})  # once, then it works
    config = make_config(tmp_path, mailbox={"enabled": False},
                         twilio=twilio_section(twilio, to=[first, flaky]))  # fmt: skip
    d = Dispatcher(config, outbox_db, probe=StaticProbe(True))
    alert_id = add_alert(outbox_db, tmp_path, kind="forced")
    for _ in range(3):
        d.run_once(force=True)
    assert states(outbox_db)[alert_id] == {"alert": "delivered", "sms": "delivered"}
    assert [p.form["To"] for p in twilio.posts] == [first, flaky]


def test_a_restart_between_retries_does_not_text_the_numbers_already_reached_again(
    tmp_path: Path, outbox_db: Database, twilio: TwilioServer
) -> None:
    """One number fails (503), the other was texted; the door restarts before the retry:
    the new dispatcher texts only the one that failed (the reached list is in the row)."""
    first, flaky = "+15550000002", "+15550000777"
    twilio_refuses(twilio, {flaky: [503]})
    config = make_config(tmp_path, mailbox={"enabled": False},
                         twilio=twilio_section(twilio, to=[first, flaky]))  # fmt: skip
    alert_id = add_alert(outbox_db, tmp_path, kind="forced")
    Dispatcher(config, outbox_db, probe=StaticProbe(True)).run_once(force=True)
    assert states(outbox_db)[alert_id]["sms"] == "pending"
    with outbox_db.session() as s:
        row = s.get(AlertDelivery, (alert_id, "sms"))
        assert row is not None and row.reached == "+15550000002"
    restarted = Dispatcher(config, outbox_db, probe=StaticProbe(True))  # nothing in memory
    for _ in range(2):
        restarted.run_once(force=True)
    assert states(outbox_db)[alert_id] == {"alert": "delivered", "sms": "delivered"}
    assert [p.form["To"] for p in twilio.posts] == [first, flaky]  # first texted once


def test_failover_to_the_modem_does_not_last_until_a_restart(
    tmp_path: Path, outbox_db: Database, twilio: TwilioServer, modem: SimModem
) -> None:
    """Twilio fails (500) until the dispatcher fails over; new alerts then go by the modem
    without waiting on Twilio, until twilio_retry_s after Twilio was last tried: the next
    new alert tries Twilio again, and Twilio working again takes SMS back from the modem."""

    calls: list[str] = []
    handle = twilio._handle
    twilio._handle = lambda h, body: calls.append(body) or handle(h, body)  # type: ignore[method-assign]
    now = [utcnow()]
    config = make_config(tmp_path, twilio=twilio_section(twilio), gsm=gsm_section(modem),
                         mailbox={"enabled": False}, twilio_failover_s=60,
                         twilio_retry_s=900)  # fmt: skip
    d = Dispatcher(config, outbox_db, clock=lambda: now[0], probe=StaticProbe(True))
    twilio.mode = "500"
    a = add_alert(outbox_db, tmp_path, kind="forced")
    d.run_once(force=True)  # Twilio fails: pending
    assert len(calls) == 1 and states(outbox_db)[a]["sms"] == "pending"
    now[0] += timedelta(seconds=61)
    d.run_once(force=True)  # failing for longer than twilio_failover_s: the modem
    assert states(outbox_db)[a]["sms"] == "delivered" and len(modem.sent) == 1

    now[0] += timedelta(seconds=100)  # a new alert, well within twilio_retry_s: the modem
    b = add_alert(outbox_db, tmp_path, kind="forced")
    d.run_once(force=True)
    assert states(outbox_db)[b]["sms"] == "delivered" and len(modem.sent) == 2
    assert len(calls) == 1  # Twilio was not asked

    twilio.mode = "ok"  # Twilio works again; 900 s after it was last tried, a new alert
    now[0] += timedelta(seconds=800)
    c = add_alert(outbox_db, tmp_path, kind="forced")
    d.run_once(force=True)
    assert states(outbox_db)[c]["sms"] == "delivered" and len(calls) == 2
    assert len(twilio.posts) == 1 and len(modem.sent) == 2
    now[0] += timedelta(seconds=5)  # and Twilio carries SMS again from then on
    e = add_alert(outbox_db, tmp_path, kind="forced")
    d.run_once(force=True)
    assert states(outbox_db)[e]["sms"] == "delivered" and len(twilio.posts) == 2
    with outbox_db.session() as s:
        row = s.get(AlertDelivery, (e, "sms"))
        assert row is not None and (row.external_id or "").startswith("twilio:")


class _RefusingModem(SimModem):
    """The pty modem, with numbers the network refuses (+CMS ERROR 21) or, once, cannot
    reach now (+CMS ERROR 500)."""

    refuse: frozenset[str]  # each test sets both
    busy_once: set[str]

    def _finish_sms(self, number: str, text: str) -> None:
        if number in self.refuse:
            self._reply("+CMS ERROR: 21")
        elif number in self.busy_once:
            self.busy_once.discard(number)
            self._reply("+CMS ERROR: 500")
        else:
            super()._finish_sms(number, text)


def test_gsm_texts_every_number_the_network_takes_and_retries_only_the_others(
    tmp_path: Path, outbox_db: Database
) -> None:
    refused, first, busy = "+15550000001", "+15550000002", "+15550000003"
    with _RefusingModem() as modem:
        modem.refuse, modem.busy_once = frozenset({refused}), {busy}
        config = make_config(tmp_path, mailbox={"enabled": False},
                             gsm=gsm_section(modem, to=[refused, first, busy]))  # fmt: skip
        d = Dispatcher(config, outbox_db, probe=StaticProbe(False))
        alert_id = add_alert(outbox_db, tmp_path, kind="forced")
        d.run_once(force=True)
        assert [s.number for s in modem.sent] == [first]  # busy fails now, refused for good
        assert states(outbox_db)[alert_id]["sms"] == "pending"  # busy may work later
        d.run_once(force=True)
        d.run_once(force=True)
        # the retry: only the refused (again, for good) and the busy number, which gets it
        assert [s.number for s in modem.sent] == [first, busy]
        assert states(outbox_db)[alert_id] == {"alert": "failed", "sms": "failed"}


def test_a_gsm_number_written_with_spaces_is_texted(
    tmp_path: Path, outbox_db: Database, modem: SimModem
) -> None:
    numbers = ["+44 7700 900123", "+1-555-000-0003"]  # config writes them the modem's way
    config = make_config(tmp_path, mailbox={"enabled": False}, gsm=gsm_section(modem, to=numbers))
    d = Dispatcher(config, outbox_db, probe=StaticProbe(False))
    alert_id = add_alert(outbox_db, tmp_path, kind="forced")
    d.run_once(force=True)
    assert [s.number for s in modem.sent] == ["+447700900123", "+15550000003"]
    assert states(outbox_db)[alert_id] == {"alert": "delivered", "sms": "delivered"}


def test_a_pending_delivery_of_a_channel_no_longer_configured_fails_and_blocks_nothing(
    tmp_path: Path, outbox_db: Database, smtp: SmtpServer
) -> None:
    """Email was pending (SMTP down) when the admin removed [alerts.email] and restarted:
    that delivery is failed ("email not configured") and the alerts behind it go out."""
    down = Recorder("email", fail=ChannelError("smtp down"))
    with_email = make_config(tmp_path, email=email_section(smtp.port))
    old = add_alert(outbox_db, tmp_path)
    Dispatcher(with_email, outbox_db, channels={"email": down, "mailbox": Recorder("mailbox")},
               probe=StaticProbe(True)).run_once(force=True)  # fmt: skip
    assert states(outbox_db)[old]["email"] == "pending"
    new = add_alert(outbox_db, tmp_path, kind="lockout")
    d = build_dispatcher(make_config(tmp_path), outbox_db)  # the mailbox only
    d.run_once(force=True)
    d.run_once(force=True)
    s = states(outbox_db)
    assert s[old] == {"alert": "failed", "mailbox": "delivered", "email": "failed"}
    assert s[new] == {"alert": "delivered", "mailbox": "delivered"}
    with outbox_db.session() as session:
        delivery = session.get(AlertDelivery, (old, "email"))
        assert delivery is not None and delivery.last_error == "email not configured"


def test_twilio_refusing_for_good_falls_over_to_gsm_at_once(
    tmp_path: Path,
    outbox_db: Database,
    twilio: TwilioServer,
    modem: SimModem,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A revoked Twilio token (401, permanent): the SMS goes by the modem in the same pass,
    instead of the alert failing while a working modem is configured."""
    from .support import TOKEN_ENV

    monkeypatch.setenv(TOKEN_ENV, "revoked")
    config = make_config(tmp_path, twilio=twilio_section(twilio), gsm=gsm_section(modem),
                         mailbox={"enabled": False}, twilio_failover_s=3600)  # fmt: skip
    d = build_dispatcher(config, outbox_db)
    alert_id = add_alert(outbox_db, tmp_path, kind="forced")
    assert d.run_once() == 1
    d.stop()
    assert states(outbox_db)[alert_id] == {"alert": "delivered", "sms": "delivered"}
    assert [s.number for s in modem.sent] == ["+15550000003"] and twilio.posts == []
    with outbox_db.session() as s:
        delivery = s.get(AlertDelivery, (alert_id, "sms"))
        assert delivery is not None and delivery.external_id == "gsm:1"


def test_the_hourly_cap_ignores_deliveries_stamped_in_the_future(
    tmp_path: Path, outbox_db: Database
) -> None:
    """The clock ran 30 days ahead while two alerts went out, then NTP stepped it back:
    those two are not 'within the last hour' and suppress nothing."""
    now = [utcnow() + timedelta(days=30)]
    config = make_config(tmp_path, hourly_cap=2)
    email = Recorder("email")
    d = Dispatcher(config, outbox_db, channels={"email": email}, clock=lambda: now[0])
    for _ in range(2):
        add_alert(outbox_db, tmp_path, kind="held_open", ts=now[0])
        d.run_once()
    assert len(email.sent) == 2
    now[0] = utcnow() + timedelta(hours=2)  # stepped back, past the incident window
    alert_id = add_alert(outbox_db, tmp_path, kind="held_open", ts=now[0])
    d.run_once()
    assert states(outbox_db)[alert_id] == {"alert": "delivered", "email": "delivered"}
    assert len(email.sent) == 3


def test_a_full_batch_stuck_on_a_dead_transport_does_not_starve_newer_alerts(
    tmp_path: Path, outbox_db: Database
) -> None:
    """SMTP unreachable: each pass tries one email and leaves the rest of the batch due; an
    alert newer than a whole batch of them still gets its SMS by the modem."""
    from appliance.alerts import dispatcher as dmod

    config = make_config(tmp_path, email=email_section(1), gsm={"port": "/dev/null",
                         "to": ["+15550000003"]}, mailbox={"enabled": False},
                         hourly_cap=100000)  # fmt: skip
    email, gsm = Recorder("email", fail=ChannelError("smtp unreachable")), Recorder("gsm")
    d = Dispatcher(config, outbox_db, channels={"email": email, "gsm": gsm},
                   probe=StaticProbe(False))  # fmt: skip
    for _ in range(dmod.BATCH + 5):
        add_alert(outbox_db, tmp_path, kind="held_open", photo=False)
    d.run_once()
    new = add_alert(outbox_db, tmp_path, kind="held_open", photo=False)
    d.run_once()
    assert states(outbox_db)[new] == {"alert": "pending", "email": "pending", "sms": "delivered"}
