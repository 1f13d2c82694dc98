"""Owns the alert dispatcher: per-channel delivery from the outbox with backoff, caps, failover."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update

from ..config import Config
from ..store.db import Database
from ..store.models import OutboxAlert, User, utcnow
from ..store.models_alerts import AlertDelivery
from .incidents import URGENT_KINDS
from .message import AlertMessage, Channel, ChannelError
from .probe import ConnectivityProbe, StaticProbe

log = logging.getLogger(__name__)

# logical channels of an alert; "sms" is carried by the twilio or the gsm transport
LOGICAL_CHANNELS = ("mailbox", "email", "sms")
CAPPED_CHANNELS = ("email", "sms")
BATCH = 200
# the most pages of BATCH alerts one pass goes through (a backlog behind a dead transport must
# not starve newer alerts on the transports that work, nor make one pass endless)
MAX_PAGES = 50
# after a pass that raised (a full disk, the database gone), the loop waits this long, doubling;
# at most 10 s, so that an urgent alert queued meanwhile is not held up long
ERROR_BACKOFF_S = (1.0, 10.0)


class RecordOwed(RuntimeError):
    """Deliveries went out but their 'delivered' record could not be written (full disk);
    they are not sent again by this process, only their record is retried."""


@dataclass(frozen=True)
class _Work:
    alert_id: str
    channel: str
    attempts: int
    first_failure_at: datetime | None
    created_at: datetime
    kind: str
    user_number: int | None
    distance: float | None
    detail: str
    count: int
    snapshot_path: str | None
    reached: frozenset[str] = frozenset()  # recipients stored as reached (AlertDelivery.reached)


def _split(stored: str | None) -> frozenset[str]:
    return frozenset(x for x in (stored or "").split(",") if x)


class Dispatcher:
    """Delivers outbox alerts on every channel routed for them; never holds a transaction open
    while talking to the network, so the door's own writes are never held up."""

    def __init__(
        self,
        config: Config,
        db: Database,
        channels: dict[str, Channel] | None = None,
        clock: Callable[[], datetime] = utcnow,
        probe: ConnectivityProbe | StaticProbe | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.channels = channels if channels is not None else build_channels(config)
        self.clock = clock
        a = config.alerts
        if probe is None:
            # the probe only chooses between Twilio and the modem: without both, nothing to probe
            both = "twilio" in self.channels and "gsm" in self.channels
            probe = (
                ConnectivityProbe(a.probe_host, a.probe_port, a.probe_interval_s, a.probe_timeout_s)
                if a.probe_enabled and both
                else StaticProbe(True)
            )
        self.probe = probe
        self.rng = rng or random.Random()
        self._twilio_failing_since: datetime | None = None
        self._twilio_tried_at: datetime | None = None  # the last send handed to Twilio
        self._deadline: float | None = None  # monotonic; set by flush(timeout_s)
        self._uncertain: set[tuple[str, str]] = set()  # failed after DATA during this flush
        # in memory only (a restart forgets them; see docs/RELIABILITY.md):
        # sent, but the 'delivered' record failed to write: (work, delivered at, external id)
        self._unrecorded: dict[tuple[str, str], tuple[_Work, datetime, str]] = {}
        # numbers (number_key) a delivery already reached on an attempt that failed for others;
        # written to AlertDelivery.reached with the failed attempt, kept here first (a write
        # refused by a full disk must not lose them)
        self._reached: dict[tuple[str, str], set[str]] = {}
        # SMS deliveries Twilio refused for good: they go by the GSM modem
        self._twilio_refused: set[str] = set()
        self._errors = 0  # passes in a row that raised (the loop backs off)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- routing -------------------------------------------------------------------------
    def _wants(self, transport: str, kind: str) -> bool:
        if transport not in self.channels:
            return False
        section = getattr(self.config.alerts, transport, None)
        return section is None or section.wants(kind)

    def routes(self, kind: str) -> list[str]:
        """The logical channels an alert of `kind` must reach."""
        out = []
        if "mailbox" in self.channels:
            out.append("mailbox")
        if self._wants("email", kind):
            out.append("email")
        if self._wants("twilio", kind) or self._wants("gsm", kind):
            out.append("sms")
        return out

    def sms_transport(
        self, kind: str, first_failure_at: datetime | None, now: datetime, alert_id: str = ""
    ) -> str:
        """twilio while the internet is up and Twilio works; gsm when offline, Twilio kept
        failing for twilio_failover_s, or Twilio refused this alert for good. Failed over, a
        new alert (not yet failed anywhere) tries Twilio again once twilio_retry_s have passed
        since Twilio was last tried: failover does not last until a restart."""
        tw, gsm = self._wants("twilio", kind), self._wants("gsm", kind)
        if not gsm:
            return "twilio"
        if not tw or alert_id in self._twilio_refused:
            return "gsm"
        if not self.probe.online:
            return "gsm"
        failover = timedelta(seconds=self.config.alerts.twilio_failover_s)
        since = [t for t in (self._twilio_failing_since, first_failure_at) if t is not None]
        if since and now - min(since) >= failover:
            tried = self._twilio_tried_at
            retry = timedelta(seconds=self.config.alerts.twilio_retry_s)
            if first_failure_at is None and tried is not None and not now - tried < retry:
                return "twilio"
            return "gsm"
        return "twilio"

    # ---- one pass ------------------------------------------------------------------------
    def _horizon(self, now: datetime) -> datetime:
        """No retry is ever scheduled later than this: a next_attempt_at beyond it was written
        before the wall clock stepped back, and is due now (not in two days)."""
        a = self.config.alerts
        return now + timedelta(seconds=max(a.backoff_max_s, a.incident_hold_s) + 60)

    def _claim(self, now: datetime, force: bool, page: int = 0) -> tuple[list[_Work], int]:
        """The work of the page-th BATCH of alerts due; and how many alerts that page had."""
        horizon = self._horizon(now)
        due = or_(
            OutboxAlert.next_attempt_at.is_(None),
            OutboxAlert.next_attempt_at <= now,
            OutboxAlert.next_attempt_at > horizon,
        )
        with self.db.session() as s:
            # claim first: the UPDATE takes SQLite's write lock, so an incident merge cannot slip
            # in between reading an alert and marking it picked up
            claim = update(OutboxAlert).where(
                OutboxAlert.state == "pending", OutboxAlert.attempts == 0
            )
            if not force:
                claim = claim.where(due)
            s.execute(claim.values(attempts=1).execution_options(synchronize_session=False))
            q = select(OutboxAlert).where(OutboxAlert.state == "pending")
            if not force:
                q = q.where(due)
            order = (OutboxAlert.priority.desc(), OutboxAlert.created_at, OutboxAlert.id)
            alerts = s.scalars(q.order_by(*order).limit(BATCH).offset(page * BATCH)).all()
            if not alerts:
                return [], 0
            ids = [a.id for a in alerts]
            have: dict[str, dict[str, AlertDelivery]] = {}
            for d in s.scalars(select(AlertDelivery).where(AlertDelivery.alert_id.in_(ids))):
                have.setdefault(d.alert_id, {})[d.channel] = d
            work: list[_Work] = []
            for a in alerts:
                rows = have.get(a.id)
                if rows is None:
                    rows = {}
                    for ch in self.routes(a.kind):
                        rows[ch] = AlertDelivery(
                            alert_id=a.id, channel=ch, state="pending", attempts=0, created_at=now
                        )
                        s.add(rows[ch])
                    if not rows:
                        a.state, a.last_error = "failed", "no channel configured for this kind"
                        log.warning("event=alert_unroutable alert=%s kind=%s", a.id, a.kind)
                        continue
                for d in rows.values():
                    if d.state != "pending":
                        continue
                    nxt = d.next_attempt_at
                    if not force and nxt is not None and now < nxt <= horizon:
                        continue
                    work.append(
                        _Work(
                            a.id,
                            d.channel,
                            d.attempts,
                            d.first_failure_at,
                            a.created_at,
                            a.kind,
                            a.user_number,
                            a.distance,
                            a.detail or "",
                            a.count,
                            a.snapshot_path,
                            _split(d.reached),
                        )  # fmt: skip
                    )
                if all(d.state != "pending" for d in rows.values()):
                    self._settle(a, list(rows.values()), now)
        return work, len(alerts)

    def run_once(self, force: bool = False) -> int:
        """Try every delivery that is due (all pending ones with force); deliveries made.

        Raises RecordOwed when a delivery went out but its record could not be written."""
        made = 0
        self._record_owed()
        # a transport that just failed is not tried again in this pass: one dead SMTP server
        # (each try waiting out its timeout) must not hold up the SMS of every other alert
        down: set[str] = set()
        now = self.clock()
        for page in range(MAX_PAGES):
            # page on: a full batch left due behind a transport that is down must not keep
            # the newer alerts (whose other channels work) from ever being claimed
            work, seen = self._claim(now, force, page)
            for w in work:
                if self._stop.is_set() and self._thread is not None:
                    return made
                if (w.alert_id, w.channel) in self._unrecorded:
                    continue  # it went out: only its record is owed, never a second send
                made += self._process(w, down)
            if seen < BATCH:
                break
        if self._unrecorded:
            raise RecordOwed(f"{len(self._unrecorded)} delivery record(s) could not be written")
        return made

    def _record_owed(self) -> None:
        """Write the 'delivered' records a failed write left owed (they went out already)."""
        for key, (w, at, external_id) in list(self._unrecorded.items()):
            try:
                self._record(w, "delivered", None, at, external_id=external_id)
            except Exception as exc:
                log.warning("event=alert_record_retry_failed alert=%s channel=%s error=%s",
                            w.alert_id, w.channel, exc)  # fmt: skip
                return  # the disk is still full: the others would fail alike
            del self._unrecorded[key]
            log.info("event=alert_record_written alert=%s channel=%s", w.alert_id, w.channel)

    def pending_count(self) -> int:
        with self.db.session() as s:
            return s.scalar(
                select(func.count()).select_from(OutboxAlert).where(OutboxAlert.state == "pending")
            )

    def _message(self, w: _Work) -> AlertMessage:
        photo = None
        if w.snapshot_path:
            path = self.config.data_dir / w.snapshot_path
            try:
                photo = path.read_bytes()
            except OSError as exc:
                log.warning("event=alert_photo_missing alert=%s path=%s error=%s", w.alert_id,
                            path, exc)  # fmt: skip
        return AlertMessage(
            id=w.alert_id,
            kind=w.kind,
            time=w.created_at,
            device_id=self.config.device.id,
            door=self.config.device.name,
            user_number=w.user_number,
            distance=w.distance,
            detail=w.detail,
            count=w.count,
            user_name=self._user_name(w.user_number),
            photo_jpeg=photo,
            skip_recipients=w.reached | self._reached.get((w.alert_id, w.channel), set()),
        )

    def _user_name(self, number: int | None) -> str | None:
        """The enrolled name of the user the alert is about (the message names them)."""
        if number is None:
            return None
        try:
            with self.db.session() as s:
                return s.scalar(select(User.name).where(User.number == number))
        except Exception:  # a name is a nicety: never let it hold up an alert
            log.warning("event=alert_user_name_failed user=%s", number)
            return None

    def _over_cap(self, channel: str, now: datetime) -> bool:
        with self.db.session() as s:
            sent = s.scalar(
                select(func.count())
                .select_from(AlertDelivery)
                .where(
                    AlertDelivery.channel == channel,
                    AlertDelivery.state == "delivered",
                    # both sides: a delivery stamped "in the future" (the clock ran ahead,
                    # then stepped back) is not counted in this hour
                    AlertDelivery.delivered_at >= now - timedelta(hours=1),
                    AlertDelivery.delivered_at <= now,
                )
            )
        return sent >= self.config.alerts.hourly_cap

    def _process(self, w: _Work, down: set[str]) -> int:
        a = self.config.alerts
        now = self.clock()
        tried_s = self.attempt_age_s(w.attempts)
        if w.attempts >= a.min_attempts and tried_s >= a.give_up_after_s:
            why = f"gave up after {w.attempts} attempts over at least {tried_s:.0f}s"
            self._record(w, "failed", f"{why} (give_up_after_s {a.give_up_after_s:.0f}s)", now)
            return 0
        capped = w.channel in CAPPED_CHANNELS and w.kind not in URGENT_KINDS
        if capped and self._over_cap(w.channel, now):
            self._record(w, "suppressed", f"hourly cap {a.hourly_cap} reached", now)
            return 0
        transport = w.channel
        if w.channel == "sms":
            transport = self.sms_transport(w.kind, w.first_failure_at, now, w.alert_id)
        if transport not in self.channels:
            # a row left pending by a configuration that had this transport: failed, not a
            # KeyError on every pass that holds up every alert behind it
            what = transport if w.channel != "sms" else "sms (twilio or gsm)"
            log.warning("event=alert_failed alert=%s channel=%s via=%s error=not_configured",
                        w.alert_id, w.channel, transport)  # fmt: skip
            self._record(w, "failed", f"{what} not configured", now)
            return 0
        if transport in down:
            return 0  # left due: retried on the next pass
        if self._deadline is not None and (
            time.monotonic() >= self._deadline or (w.alert_id, w.channel) in self._uncertain
        ):
            return 0  # flush --timeout is over, or it may have arrived already: left pending
        channel = self.channels[transport]
        if transport == "twilio":
            self._twilio_tried_at = now
        if hasattr(channel, "deadline"):
            channel.deadline = self._deadline
        t0 = time.perf_counter()
        try:
            channel.send(self._message(w))
        except ChannelError as exc:
            key = (w.alert_id, w.channel)
            if exc.reached:  # remembered before any write: a full disk must not lose it
                self._reached.setdefault(key, set()).update(exc.reached)
            if transport == "twilio" and not exc.transient and self._wants("gsm", w.kind):
                # refused for good by Twilio (a revoked token, a suspended account, a number
                # it rejects): the modem carries it instead of the alert failing
                log.warning("event=alert_failover alert=%s channel=sms from=twilio to=gsm "
                            "permanent=1 error=%r", w.alert_id, str(exc))  # fmt: skip
                self._twilio_refused.add(w.alert_id)
                if self._twilio_failing_since is None:
                    self._twilio_failing_since = now
                if "gsm" not in down:
                    return self._process(w, down)
                self._failed(w, transport, str(exc), True)
                return 0
            if exc.transient:
                down.add(transport)
            self._failed(w, transport, str(exc), exc.transient, uncertain=exc.uncertain)
            return 0
        except Exception as exc:  # a bug in a channel must not stop the other alerts
            log.exception("event=alert_channel_crash alert=%s channel=%s", w.alert_id, transport)
            down.add(transport)
            self._failed(w, transport, f"{type(exc).__name__}: {exc}", True)
            return 0
        ms = (time.perf_counter() - t0) * 1000
        if transport == "twilio":
            self._twilio_failing_since = None
        ref = _external_ref(channel)
        at, external_id = self.clock(), f"{transport}:{ref}"
        try:
            self._record(w, "delivered", None, at, external_id=external_id)
        except Exception:
            # it went out; only the record failed (a full disk): never send it again, write
            # the record when the database takes it (run_once raises meanwhile, see _run)
            log.exception("event=alert_record_failed alert=%s channel=%s via=%s",
                          w.alert_id, w.channel, transport)  # fmt: skip
            self._unrecorded[(w.alert_id, w.channel)] = (w, at, external_id)
        log.info("event=alert_delivered alert=%s kind=%s channel=%s via=%s attempt=%d ms=%.0f",
                 w.alert_id, w.kind, w.channel, transport, w.attempts + 1, ms)  # fmt: skip
        return 1

    def attempt_age_s(self, attempts: int) -> float:
        """The least real time `attempts` failed attempts can have taken (each retry waits at
        least half its nominal backoff): the monotonic notion of an alert's age, which a
        wall-clock step in either direction cannot change."""
        a = self.config.alerts
        total, k = 0.0, 1
        while k <= attempts:
            step = a.backoff_initial_s * 2 ** (k - 1)
            if step >= a.backoff_max_s:  # the rest are all at the cap
                return total + 0.5 * a.backoff_max_s * (attempts - k + 1)
            total += 0.5 * step
            k += 1
        return total

    def backoff_s(self, attempts: int) -> float:
        """Exponential backoff with jitter: half to all of initial * 2**(attempts-1), capped."""
        a = self.config.alerts
        base = min(a.backoff_max_s, a.backoff_initial_s * 2 ** max(0, attempts - 1))
        return base * self.rng.uniform(0.5, 1.0)

    def _failed(
        self, w: _Work, transport: str, error: str, transient: bool, uncertain: bool = False
    ) -> None:
        now = self.clock()
        if transport == "twilio" and self._twilio_failing_since is None:
            self._twilio_failing_since = now
        if not transient:
            log.warning("event=alert_failed alert=%s channel=%s via=%s permanent=1 error=%r",
                        w.alert_id, w.channel, transport, error)  # fmt: skip
            self._record(w, "failed", f"{transport}: {error}", now)
            return
        delay = self.backoff_s(w.attempts + 1)
        if uncertain:  # it may have arrived: not again soon, and never within one flush
            delay = max(delay, self.config.alerts.backoff_max_s)
            if self._deadline is not None:
                self._uncertain.add((w.alert_id, w.channel))
        log.warning("event=alert_retry alert=%s channel=%s via=%s attempt=%d retry_in_s=%.1f "
                    "error=%r", w.alert_id, w.channel, transport, w.attempts + 1, delay,
                    error)  # fmt: skip
        self._record(
            w, "pending", f"{transport}: {error}", now, next_at=now + timedelta(seconds=delay)
        )

    def _record(
        self,
        w: _Work,
        state: str,
        error: str | None,
        now: datetime,
        next_at: datetime | None = None,
        external_id: str | None = None,
    ) -> None:
        with self.db.session() as s:
            d = s.get(AlertDelivery, (w.alert_id, w.channel))
            alert = s.get(OutboxAlert, w.alert_id)
            if state != "pending":
                self._forget(w)
            if d is None or alert is None or d.state != "pending":
                return  # someone else (a flush in another process) settled it already
            reached = self._reached.get((w.alert_id, w.channel))
            if state == "pending" and reached:
                d.reached = ",".join(sorted(reached | _split(d.reached)))
            d.state = state
            d.attempts += 1
            if error is not None:
                d.last_error = error[:2000]
                alert.last_error = f"{w.channel}: {error}"[:2000]
            if state == "pending":
                d.next_attempt_at = next_at
                d.first_failure_at = d.first_failure_at or now
            if state == "delivered":
                d.delivered_at = now
                d.external_id = external_id
            if state == "suppressed":
                d.delivered_at = now
            alert.attempts += 1
            rows = list(
                s.scalars(select(AlertDelivery).where(AlertDelivery.alert_id == w.alert_id))
            )
            self._settle(alert, rows, now)

    def _forget(self, w: _Work) -> None:
        """Drop what memory holds about a delivery that is settled now."""
        self._reached.pop((w.alert_id, w.channel), None)
        if w.channel == "sms":
            self._twilio_refused.discard(w.alert_id)

    @staticmethod
    def _settle(alert: OutboxAlert, rows: list[AlertDelivery], now: datetime) -> None:
        pending = [r for r in rows if r.state == "pending"]
        if pending:
            nexts = [r.next_attempt_at for r in pending]
            alert.next_attempt_at = None if None in nexts else min(nexts)  # type: ignore[type-var]
            return
        if any(r.state == "failed" for r in rows):
            alert.state = "failed"
            log.error("event=alert_given_up alert=%s kind=%s error=%r", alert.id, alert.kind,
                      alert.last_error)  # fmt: skip
        else:
            alert.state = "delivered"
        alert.delivered_at = now
        alert.next_attempt_at = None

    # ---- lifecycle -----------------------------------------------------------------------
    def notify(self) -> None:
        """Wake the worker now (the door calls this after committing an alert); never blocks."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self.probe.start()
        self._thread = threading.Thread(target=self._run, name="alerts-dispatcher", daemon=True)
        self._thread.start()
        log.info("event=dispatcher_started channels=%s", ",".join(sorted(self.channels)))

    def _run(self) -> None:
        interval = self.config.alerts.poll_interval_s
        while not self._stop.is_set():
            try:
                made = self.run_once()
                self._errors = 0
            except Exception:
                self._errors += 1
                delay = self.error_backoff_s(self._errors)
                log.exception("event=dispatcher_error errors_in_a_row=%d retry_in_s=%.1f",
                              self._errors, delay)  # fmt: skip
                # not at the poll interval (a full disk would log and retry twice a second),
                # and not cut short by notify(): only stop() ends the wait
                self._stop.wait(delay)
                continue
            if made == 0:
                self._wake.wait(interval)
                self._wake.clear()

    def error_backoff_s(self, errors: int) -> float:
        """How long the loop waits after `errors` passes in a row raised: doubling from
        ERROR_BACKOFF_S[0] (at least the poll interval) up to ERROR_BACKOFF_S[1]."""
        first = max(ERROR_BACKOFF_S[0], self.config.alerts.poll_interval_s)
        return float(min(ERROR_BACKOFF_S[1], first * 2 ** max(0, errors - 1)))

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.probe.stop()
        for ch in self.channels.values():
            try:
                ch.close()
            except Exception:
                log.exception("event=channel_close_error channel=%s", ch.name)

    def flush(self, timeout_s: float) -> int:
        """Try everything pending now, retrying until nothing is pending or the time is up;
        the number still pending."""
        deadline = time.monotonic() + timeout_s
        self._deadline = deadline  # no send runs past it (channels bound their timeouts)
        self.probe.start()
        try:
            self.run_once(force=True)
            # later passes respect each delivery's backoff: a failure after SMTP DATA (which
            # may have arrived) is not resent within this flush
            while (left := self.pending_count()) and time.monotonic() < deadline:
                self._stop.wait(min(1.0, max(0.0, deadline - time.monotonic())))
                self.run_once(force=False)
            return left
        finally:
            self._deadline = None
            self._uncertain.clear()
            self.probe.stop()


def _external_ref(channel: Channel) -> str:
    for attr in ("last_sids", "last_refs"):
        refs = getattr(channel, attr, None)
        if refs:
            return ",".join(str(r) for r in refs)[:200]
    return "ok"


def build_channels(config: Config, only: str | None = None) -> dict[str, Channel]:
    """The transports the configuration asks for (or just `only`); secrets are resolved now,
    and a missing one raises ConfigError naming its key."""
    a = config.alerts
    channels: dict[str, Channel] = {}

    def want(name: str) -> bool:
        return only is None or only == name

    if a.mailbox.enabled and want("mailbox"):
        channels["mailbox"] = _mailbox_channel(config)
    if a.email is not None and a.email.enabled and want("email"):
        from .channels.email import EmailChannel

        channels["email"] = EmailChannel(a.email, a.email.password.resolve("alerts.email.password"))
    if a.twilio is not None and a.twilio.enabled and want("twilio"):
        from ..config import ConfigError
        from .channels.twilio_sms import TwilioChannel

        token = a.twilio.token.resolve("alerts.twilio.token")
        if not token:
            raise ConfigError("alerts.twilio.token: no token source configured")
        channels["twilio"] = TwilioChannel(a.twilio, token)
    if a.gsm is not None and a.gsm.enabled and want("gsm"):
        from .channels.gsm import GsmChannel

        channels["gsm"] = GsmChannel(a.gsm, a.gsm.pin.resolve("alerts.gsm.pin"))
    return channels


def _mailbox_channel(config: Config) -> Channel:
    from .channels.mailbox import MailboxChannel

    return MailboxChannel(config.mailbox_dir)


def build_dispatcher(config: Config, db: Database) -> Dispatcher:
    """The dispatcher for `config` (the door service calls start()/stop() on it)."""
    return Dispatcher(config, db)
