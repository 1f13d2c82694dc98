"""The recorder: writes what the door decided, and never lets a disk fault reach the loop.

Decisions and alerts are committed at once, each event with its alert in one transaction.
Informational events (`EventKind.where("batched")`) share one fsync'd commit: at most
BATCH_MAX of them, or BATCH_WAIT_S after the first, or ahead of any other event; a power cut can
lose at most those seconds of them. What the disk refuses (full card, I/O error) is held in
memory, oldest first, and written again every HELD_RETRY_S; an alert among it still leaves over
a channel that needs no disk (DIRECT_CHANNELS).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.alerts.outbox import enqueue_alert
from appliance.config import Config
from appliance.core import CAPTURE, Record
from appliance.core.kinds import EventKind
from appliance.store.db import Database
from appliance.store.guard import StorageGuard
from appliance.store.models import AccessEvent, new_uuid, utcnow

log = logging.getLogger(__name__)

BATCHED_KINDS = EventKind.where("batched")
BATCH_MAX = 50
BATCH_WAIT_S = 10.0
# Bounded: when full, the oldest informational event is dropped first; decisions and alerts go
# only when nothing else is left to drop.
HELD_MAX = 2000
HELD_RETRY_S = 1.0
# the channels that need no disk of the door's own (the mailbox writes .eml files to data_dir)
DIRECT_CHANNELS = ("email", "twilio", "gsm")
RECENT_MAX = 200


@dataclass
class Held:
    """One event to write: its columns (a fresh AccessEvent per try), and its Record when it
    carries a decision or an alert (None for a batched informational event)."""

    fields: dict[str, Any]
    cmd: Record | None = None
    direct: str = "none"  # the alert's disk-free delivery: none, sending, sent, failed

    @property
    def informational(self) -> bool:
        return self.cmd is None


@dataclass
class RecordedEvent:
    """What the door recorded, as printed by `doorward simulate` and shown by the admin page."""

    id: str
    kind: str
    ts: str
    user_number: int | None
    distance: float | None
    reason: str | None
    snapshot: str | None
    alert_id: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **{k: v for k, v in self.__dict__.items() if k != "kind"}}


class Recorder:
    """Events and alerts of one door into its database (the replica), with the SD-card care
    and the storage-fault rules above. Called on the door's loop thread."""

    def __init__(
        self,
        config: Config,
        db: Database,
        *,
        capture_snapshot: Callable[[], str | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.db = db
        self.device_id = config.device.id
        self.capture_snapshot = capture_snapshot
        self.clock = clock
        self.batched_kinds: frozenset[str] = frozenset(BATCHED_KINDS)
        self.listeners: list[Callable[[RecordedEvent], None]] = []
        self.alert_hooks: list[Callable[[], None]] = []  # e.g. the dispatcher's notify()
        self.recent: list[RecordedEvent] = []
        self.batched: list[Held] = []
        self._batch_started = 0.0
        self.held: list[Held] = []  # refused by the disk; retried until it takes them
        self.held_dropped = 0
        self._held_retry_at = 0.0
        self._storage_failing = False  # a storage_failed alert went out for this episode
        hs = config.health
        self.guard = StorageGuard(
            config.data_dir, reserve_mb=hs.storage_reserve_mb, floor_mb=hs.storage_floor_mb
        )
        self._storage_check_at = 0.0
        self.direct_channels: dict[str, Any] | None = None  # built on first need
        self._direct_lock = threading.Lock()
        self._direct_threads: list[threading.Thread] = []

    # ---- one event ------------------------------------------------------------------------
    def record(self, cmd: Record) -> RecordedEvent:
        """Write one event (with its alert). Never raises on a storage fault: what the disk
        refuses waits in memory and an alert still leaves over a channel that needs no disk,
        so a full card can neither end a running pulse nor lose an alert."""
        snapshot = self.capture_snapshot() if cmd.snapshot == CAPTURE else cmd.snapshot
        event_id, ts = new_uuid(), utcnow()
        fields: dict[str, Any] = dict(
            id=event_id,
            device_id=self.device_id,
            ts=ts,
            kind=cmd.kind,
            user_number=cmd.user_number,
            user_id=cmd.user_id,
            distance=cmd.distance,
            reason=cmd.reason,
            snapshot_path=snapshot,
            detail=cmd.detail or None,
        )
        alert_id = None
        if cmd.kind in self.batched_kinds and not cmd.alert:
            item = Held(fields)
            if self.held or self.guard.low:  # the disk is refusing or nearly full: wait
                self.hold([item])
            else:
                self.batched.append(item)
                if len(self.batched) == 1:
                    self._batch_started = self.clock()
                if len(self.batched) >= BATCH_MAX:
                    self.flush_batched()
        else:
            alert_id = self._write_now(Held(fields, cmd))
        recorded = RecordedEvent(
            id=event_id,
            kind=cmd.kind,
            ts=ts.isoformat(),
            user_number=cmd.user_number,
            distance=None if cmd.distance is None else round(cmd.distance, 4),
            reason=cmd.reason,
            snapshot=snapshot,
            alert_id=alert_id,
            detail=dict(cmd.detail),
        )
        log.info(
            "event=%s user=%s distance=%s reason=%s alert=%s",
            cmd.kind,
            cmd.user_number,
            recorded.distance,
            cmd.reason,
            alert_id or "-",
        )
        self.recent = (self.recent + [recorded])[-RECENT_MAX:]
        for listener in list(self.listeners):
            try:
                listener(recorded)
            except Exception:
                log.exception("event=listener_failed")
        return recorded

    def _commit(self, items: list[Held]) -> dict[str, str]:
        """Write `items` in one transaction (each event with its alert); {event id: alert id}."""
        alert_ids: dict[str, str] = {}
        with self.db.session() as s:  # event and its alert commit together, or not at all
            for item in items:
                event = AccessEvent(**item.fields)
                s.add(event)
                if item.fields["kind"] == "guest_entry":
                    s.add(_guest_use(item.fields))  # the use counts with its event, or not
                cmd = item.cmd
                if cmd is None or not cmd.alert:
                    continue
                s.flush()
                alert = enqueue_alert(
                    s,
                    event=event,
                    detail=detail_text(cmd),
                    window_s=self.config.alerts.incident_window_s,
                    hold_s=self.config.alerts.incident_hold_s,
                )
                if item.direct == "sent" and alert.attempts == 0 and alert.count == 1:
                    # it already left over a disk-free channel: the outbox keeps the record
                    # but does not send it a second time
                    alert.state = "delivered"
                    alert.delivered_at = utcnow()
                    alert.last_error = "sent directly while the door's storage failed"
                alert_ids[event.id] = alert.id
        return alert_ids

    def pending_guest_uses(self, guest_code_id: int) -> int:
        """Uses of a guest code recorded but held in memory (the disk refused them): they
        count toward its limit all the same."""
        return sum(
            1
            for h in self.held
            if h.fields["kind"] == "guest_entry"
            and (h.fields.get("detail") or {}).get("guest_id") == guest_code_id
        )

    def _notify_alerts(self) -> None:
        for hook in list(self.alert_hooks):
            try:
                hook()
            except Exception:
                log.exception("event=alert_hook_failed")

    def _write_now(self, item: Held) -> str | None:
        """Write a decision or alert at once (held batched events ahead of it, in time order)."""
        batch = self._take_batched()
        ids: dict[str, str] | None
        try:
            ids = self._commit(batch + [item])
        except Exception as exc:
            error = exc
            self.hold(batch)  # informational: they wait, the decision goes first
            ids = None
            if self.guard.release_reserve():
                try:
                    ids = self._commit([item])
                except Exception as exc2:
                    error = exc2
            if ids is None:
                self._storage_failed(item, error)
                return None
            self._storage_trouble(f"reserve released: {error}")
        alert_id = ids.get(item.fields["id"])
        if alert_id is not None:
            self._notify_alerts()
        return alert_id

    # ---- what the disk refused ------------------------------------------------------------
    def hold(self, items: list[Held]) -> None:
        if not items:
            return
        self.held.extend(items)
        while len(self.held) > HELD_MAX:
            drop = next((i for i, h in enumerate(self.held) if h.informational), 0)
            gone = self.held.pop(drop)
            self.held_dropped += 1
            log.error("event=held_event_dropped kind=%s held=%d dropped=%d", gone.fields["kind"],
                      len(self.held), self.held_dropped)  # fmt: skip

    def _storage_failed(self, item: Held, error: Exception) -> None:
        """The disk refused a decision or alert: hold it, and send its alert without the disk."""
        log.error("event=record_held kind=%s error=%r held=%d", item.fields["kind"], str(error),
                  len(self.held) + 1)  # fmt: skip
        self.hold([item])
        if item.cmd is not None and item.cmd.alert:
            self._send_direct(item)
        self._storage_trouble(f"could not write {item.fields['kind']}: {error}")

    def _storage_trouble(self, what: str) -> None:
        """Once per episode: a storage_failed alert over the disk-free channels (and, later,
        in the outbox like any other alert)."""
        if self._storage_failing:
            return
        self._storage_failing = True
        try:
            free: float | None = round(self.guard.free_mb(), 2)
        except OSError:
            free = None
        record = Record(
            "storage_failed",
            reason="storage",
            alert=True,
            detail={"error": what[:300], "replica": str(self.config.replica_path),
                    "free_mb": free, "held": len(self.held)},
        )  # fmt: skip
        item = Held(
            dict(id=new_uuid(), device_id=self.device_id, ts=utcnow(), kind="storage_failed",
                 user_number=None, user_id=None, distance=None, reason="storage",
                 snapshot_path=None, detail=record.detail),
            record,
        )  # fmt: skip
        log.error(
            "event=storage_failed %s", " ".join(f"{k}={v!r}" for k, v in record.detail.items())
        )
        self.hold([item])
        self._send_direct(item)

    def _direct(self) -> dict[str, Any]:
        if self.direct_channels is None:
            from appliance.alerts.dispatcher import build_channels

            channels: dict[str, Any] = {}
            for name in DIRECT_CHANNELS:
                try:
                    channels.update(build_channels(self.config, only=name))
                except Exception as exc:
                    log.error("event=direct_channel_unavailable channel=%s error=%r", name,
                              str(exc))  # fmt: skip
            self.direct_channels = channels
        return self.direct_channels

    def _send_direct(self, item: Held) -> None:
        """Send the alert of `item` over every disk-free channel that wants it, off the loop."""
        from appliance.alerts.message import AlertMessage

        cmd = item.cmd
        assert cmd is not None
        f = item.fields
        message = AlertMessage(
            id=f["id"], kind=f["kind"], time=f["ts"], device_id=self.device_id,
            door=self.config.device.name, user_number=f["user_number"],
            distance=f["distance"], detail=detail_text(cmd),
        )  # fmt: skip
        channels = {
            n: ch
            for n, ch in self._direct().items()
            if (section := getattr(self.config.alerts, n, None)) is None or section.wants(f["kind"])
        }
        if not channels:
            item.direct = "failed"
            log.error(
                "event=direct_alert_impossible kind=%s reason=no_disk_free_channel", f["kind"]
            )
            return
        item.direct = "sending"

        def send() -> None:
            sent = 0
            with self._direct_lock:
                for name, channel in channels.items():
                    try:
                        channel.send(message)
                        sent += 1
                        log.warning("event=alert_sent_direct alert=%s kind=%s channel=%s",
                                    message.id, message.kind, name)  # fmt: skip
                    except Exception as exc:
                        log.error("event=alert_direct_failed alert=%s channel=%s error=%r",
                                  message.id, name, str(exc))  # fmt: skip
            item.direct = "sent" if sent else "failed"

        t = threading.Thread(target=send, name="direct-alert", daemon=True)
        self._direct_threads = [x for x in self._direct_threads if x.is_alive()] + [t]
        t.start()

    @property
    def held_count(self) -> int:
        return len(self.held)

    def retry_held(self, *, all_of_it: bool = False) -> int:
        """Write what the disk refused earlier, decisions and alerts first, in chunks of
        BATCH_MAX; the number written (0 while it still refuses). An alert still being sent
        directly waits, so it is not queued twice; below the free-space floor informational
        events keep waiting (unless `all_of_it`, at stop), so they cannot take the space
        decisions need."""
        ready = [
            h
            for h in self.held
            if h.direct != "sending" and (all_of_it or not (h.informational and self.guard.low))
        ]
        ready.sort(key=lambda h: h.informational)  # stable: time order within each group
        written: set[int] = set()
        alerted = False
        for i in range(0, len(ready), BATCH_MAX):
            chunk = ready[i : i + BATCH_MAX]
            try:
                alerted |= bool(self._commit(chunk))
            except Exception as exc:
                log.warning("event=held_retry_failed held=%d error=%r", len(self.held),
                            str(exc))  # fmt: skip
                break
            written |= {id(h) for h in chunk}
        if written:
            self.held = [h for h in self.held if id(h) not in written]
            log.warning("event=held_written count=%d left=%d", len(written), len(self.held))
        if alerted:
            self._notify_alerts()
        if not self.held:
            self._storage_failing = False
        return len(written)

    # ---- idle ticks -----------------------------------------------------------------------
    def housekeeping(self) -> None:
        """On idle ticks: flush old batched events, retry held records, measure free space."""
        self.flush_batched(older_than_s=BATCH_WAIT_S)
        now = self.clock()
        if self.held and now >= self._held_retry_at:
            self._held_retry_at = now + HELD_RETRY_S
            self.retry_held()
        if now >= self._storage_check_at:
            self._storage_check_at = now + self.config.health.storage_check_interval_s
            if self.guard.check() == "low":
                detail = {
                    "free_mb": round(self.guard.free_mb(), 2),
                    "floor_mb": self.guard.floor_mb,
                }
                self.record(Record("low_disk_space", alert=True, detail=detail))

    def _take_batched(self) -> list[Held]:
        batch, self.batched = self.batched, []
        return batch

    def flush_batched(self, *, older_than_s: float = 0.0) -> int:
        """Commit held informational events (all, or only once the oldest is that old); what
        the disk refuses waits with the other held records. The number written."""
        if not self.batched:
            return 0
        if older_than_s and self.clock() - self._batch_started < older_than_s:
            return 0
        batch = self._take_batched()
        try:
            self._commit(batch)
        except Exception as exc:
            log.warning("event=batch_held count=%d error=%r", len(batch), str(exc))
            self.hold(batch)
            return 0
        return len(batch)

    def drain(self, timeout_s: float) -> int:
        """Write everything held in memory (batched and refused), waiting at most `timeout_s`
        for a direct alert in flight; the number of events still not written."""
        deadline = time.monotonic() + timeout_s
        self.flush_batched()
        for t in list(self._direct_threads):
            t.join(max(0.0, deadline - time.monotonic()))
        self.retry_held(all_of_it=True)  # the process is going: memory is no place to wait
        return len(self.held) + len(self.batched)

    def close(self) -> None:
        """Close the disk-free channels built for direct alerts."""
        for channel in (self.direct_channels or {}).values():
            try:
                channel.close()
            except Exception:
                log.exception("event=channel_close_error channel=%s", channel.name)


def detail_text(cmd: Record) -> str:
    parts = [f"{k}={v}" for k, v in cmd.detail.items()]
    if cmd.reason:
        parts.insert(0, f"reason={cmd.reason}")
    return " ".join(parts)


def _guest_use(fields: dict[str, Any]) -> Any:
    from appliance.store.models_policies import GuestUse

    detail = fields.get("detail") or {}
    return GuestUse(
        id=fields["id"],  # the event's UUID: one use per guest_entry, idempotent up the sync
        guest_code_id=detail.get("guest_id"),
        device_id=fields["device_id"],
        ts=fields["ts"],
        event_id=fields["id"],
        offline_serial=detail.get("serial"),
    )
