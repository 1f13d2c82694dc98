"""Owns the composition root: builds the door from config, runs its loop, stops it in reverse."""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory

from appliance.alerts.outbox import enqueue_alert
from appliance.config import Config
from appliance.core import (
    CAPTURE,
    AccessController,
    Budget,
    CheckFace,
    Command,
    DoorClosed,
    DoorOpened,
    Event,
    ExitPressed,
    FaceChecked,
    FaceIdentified,
    IdentifyFace,
    KeyPressed,
    Lock,
    MotionDetected,
    Policy,
    Record,
    ServiceRecord,
    Signal,
    SleepCamera,
    TamperTriggered,
    Tick,
    Unlock,
    WakeCamera,
)
from appliance.core.kinds import EventKind
from appliance.hardware.board import Board, InputCallbacks, make_pin_factory
from appliance.hardware.camera import Camera, CameraError, open_camera
from appliance.hardware.simulator import DoorSimulator
from appliance.security import pin_hasher
from appliance.store.db import Database
from appliance.store.guard import StorageGuard
from appliance.store.models import AccessEvent, Device, new_uuid, utcnow
from appliance.store.repository import ReplicaCredentials, TemplateCache
from appliance.store.snapshots import SnapshotStore

log = logging.getLogger(__name__)

TICK_S = 0.1
# Events that carry no decision and no alert: held in memory and written together, at most
# BATCH_MAX at a time or BATCH_WAIT_S after the first, or before any other event. A power cut
# can lose at most those seconds of them; decisions and alerts are always committed at once.
BATCHED_KINDS = EventKind.where("batched")
BATCH_MAX = 50
BATCH_WAIT_S = 10.0
# Records the disk refused (full card, I/O error) wait here, oldest first, and are written again
# every HELD_RETRY_S until the disk takes them. Bounded: when full, the oldest informational
# event is dropped first; decisions and alerts go only when nothing else is left to drop.
HELD_MAX = 2000
BUDGET_FILE = "budget.json"  # the brute-force budget across restarts (see Door._save_budget)
HELD_RETRY_S = 1.0
# the channels that need no disk of the door's own (the mailbox writes .eml files to data_dir)
DIRECT_CHANNELS = ("email", "twilio", "gsm")


def policy_from(config: Config) -> Policy:
    a, v = config.access, config.vision
    return Policy(
        code_timeout_s=a.code_timeout_s,
        max_code_length=a.max_code_length,
        relay_pulse_s=a.relay_pulse_s,
        wrong_code_limit=a.wrong_code_limit,
        wrong_code_window_s=a.wrong_code_window_s,
        lockout_s=a.lockout_s,
        face_fail_limit=a.face_fail_limit,
        face_fail_window_s=a.face_fail_window_s,
        face_timeout_s=v.window_s + 10.0,
        held_open_s=a.held_open_s,
        entry_grace_s=a.entry_grace_s,
        exit_pulse_s=a.exit_pulse_s,
        motion_wake_s=a.motion_wake_s,
        unknown_person_after_s=a.unknown_person_after_s,
    )


@dataclass
class _Held:
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


class Door:
    """One door: board (relay locked first), camera, face engine, replica, state machine.

    Hardware callbacks arrive on gpiozero's threads and are queued; one loop thread feeds the
    state machine and carries out its commands, so decisions never race each other.
    """

    def __init__(
        self,
        config: Config,
        db: Database,
        *,
        factory: Factory | None = None,
        camera: Camera | None = None,
        face_engine: Any = None,
        clock: Callable[[], float] = time.monotonic,
        inline_face: bool = False,
        liveness: bool | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.wall_clock = wall_clock  # only for the persisted brute-force budget
        self.factory = factory or make_pin_factory(config.hardware.pin_factory)
        # Simulated wiring (keypad matrix, switches) must claim its mock pins before the board.
        self.simulator: DoorSimulator | None = None
        if isinstance(self.factory, MockFactory):
            self.simulator = DoorSimulator(self.factory, config.hardware)
        # the relay is the first device built: the door is locked before anything can fail
        self.board = Board(config.hardware, self.factory, clock)
        if self.simulator is not None:
            self.simulator.set_resting()
        try:
            self.db = db
            self.device_id = config.device.id
            self._register_device()
            self.snapshots = SnapshotStore(config.data_dir)
            self.templates = TemplateCache(db)
            self.camera = camera if camera is not None else open_camera(config.camera)
            if face_engine is None:
                from appliance.vision import FaceEngine

                face_engine = FaceEngine(config.vision)
            self.face = face_engine
            self.liveness = liveness
            self.controller = AccessController(
                policy_from(config),
                ReplicaCredentials(db, pin_hasher(config, db), device_id=config.device.id),
                clock,
            )
            self.budget_path = config.data_dir / BUDGET_FILE
            self._restore_budget()
        except Exception:
            self.board.close()
            raise
        self._budget_saved = self.controller.budget_changes
        self.inline_face = inline_face
        self.listeners: list[Callable[[RecordedEvent], None]] = []
        self.alert_hooks: list[Callable[[], None]] = []  # e.g. the dispatcher's notify()
        self._batched: list[_Held] = []
        self._batch_started = 0.0
        self._held: list[_Held] = []  # refused by the disk; retried until it takes them
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
        self.recent: list[RecordedEvent] = []
        self._queue: queue.Queue[Event | ServiceRecord] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._face_lock = threading.Lock()
        self.last_loop_at = 0.0
        self.board.connect(
            InputCallbacks(
                motion=lambda: self.post(MotionDetected()),
                door_opened=lambda: self.post(DoorOpened()),
                door_closed=lambda: self.post(DoorClosed()),
                exit_pressed=lambda: self.post(ExitPressed()),
                tamper=lambda: self.post(TamperTriggered()),
                key=lambda k: self.post(KeyPressed(k)),
            )
        )

    def _register_device(self) -> None:
        with self.db.session() as s:
            dev = s.get(Device, self.device_id)
            if dev is None:
                s.add(Device(id=self.device_id, name=self.config.device.name, last_seen=utcnow()))
            else:
                dev.name = self.config.device.name
                dev.last_seen = utcnow()

    # ---- events in ------------------------------------------------------------------------
    def post(self, event: Event | ServiceRecord) -> None:
        """Queue an event from any thread (hardware callbacks, face worker, admin panel)."""
        self._queue.put(event)

    def handle(self, event: Event | ServiceRecord) -> None:
        """Feed one event to the state machine and carry out its commands (loop thread)."""
        if isinstance(event, ServiceRecord):  # heartbeat, device loss: not access decisions
            self._record(event.record)
            return
        commands = self.controller.handle(event)
        if self.controller.budget_changes != self._budget_saved:
            # before the feedback: a wrong code the person saw refused is on disk, so a crash,
            # a watchdog restart or a power cut cannot hand out a fresh budget
            self._budget_saved = self.controller.budget_changes
            self._save_budget()
        for command in commands:
            self._execute(command)

    # ---- brute-force budget across restarts -----------------------------------------------
    def _save_budget(self) -> None:
        b = self.controller.budget()
        wall = self.wall_clock()
        data = {
            "version": 1,
            "saved_at": wall,
            "wrong": [wall - a for a in b.wrong_ages],
            "face_fails": [wall - a for a in b.face_fail_ages],
            "lockout_until": wall + b.lockout_remaining if b.lockout_remaining > 0 else None,
        }
        tmp = self.budget_path.with_name(self.budget_path.name + ".tmp")
        try:
            with open(tmp, "w", encoding="ascii") as fh:
                json.dump(data, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.budget_path)
        except OSError as exc:  # e.g. a full card: the budget still holds in this process
            log.error("event=budget_save_failed path=%s error=%r", self.budget_path, str(exc))

    def _restore_budget(self) -> None:
        """Take over the budget an earlier process saved. Missing file: a fresh budget (first
        start). Unreadable or corrupt file: fail secure, a full lockout from now."""
        try:
            raw = self.budget_path.read_text(encoding="ascii")
        except FileNotFoundError:
            return
        except OSError as exc:
            raw, error = None, str(exc)
        policy = self.controller.policy
        try:
            if raw is None:
                raise ValueError(error)
            data = json.loads(raw)
            wall = self.wall_clock()
            until = data.get("lockout_until")
            budget = Budget(
                wrong_ages=tuple(wall - float(t) for t in data.get("wrong", [])),
                face_fail_ages=tuple(wall - float(t) for t in data.get("face_fails", [])),
                lockout_remaining=0.0 if until is None else float(until) - wall,
            )
            if not all(math.isfinite(x) for x in (*budget.wrong_ages, *budget.face_fail_ages,
                                                  budget.lockout_remaining)):  # fmt: skip
                raise ValueError("not finite")
        except (ValueError, TypeError, AttributeError) as exc:
            log.error("event=budget_unreadable path=%s error=%r action=lockout_s=%.0f",
                      self.budget_path, str(exc), policy.lockout_s)  # fmt: skip
            budget = Budget(lockout_remaining=policy.lockout_s)
        self.controller.restore_budget(budget)
        b = self.controller.budget()
        log.info("event=budget_restored wrong=%d face_fails=%d lockout_remaining_s=%.0f",
                 len(b.wrong_ages), len(b.face_fail_ages), b.lockout_remaining)  # fmt: skip

    def pump(self, timeout: float = 0.0) -> int:
        """Handle every queued event (waiting up to `timeout` for the first); returns count."""
        n = 0
        try:
            event = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return 0
        while True:
            self.handle(event)
            n += 1
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return n

    # ---- commands out ---------------------------------------------------------------------
    def _execute(self, command: Command) -> None:
        match command:
            case Unlock(seconds=seconds):
                self.board.relay.unlock(seconds)
            case Lock():
                self.board.relay.lock()
            case Signal(feedback=fb):
                self.board.signal(fb)
            case WakeCamera():
                try:
                    self.camera.start()
                except CameraError as exc:
                    log.warning("event=camera_wake_failed error=%r", str(exc))
            case SleepCamera():
                try:
                    self.camera.stop()
                except CameraError as exc:
                    log.warning("event=camera_sleep_failed error=%r", str(exc))
            case CheckFace():
                self._run_face_job(lambda: self.post(self._check_face(command)), "face-check")
            case IdentifyFace():
                self._run_face_job(lambda: self.post(self._identify(command)), "face-identify")
            case Record():
                try:
                    self._record(command)
                except Exception:  # a bug while recording must not skip the Signal after it
                    log.exception("event=record_failed kind=%s", command.kind)

    def _run_face_job(self, job: Callable[[], None], name: str) -> None:
        """Face work runs off the loop thread (inline in scripted simulations)."""
        if self.inline_face:
            job()
        else:
            threading.Thread(target=job, name=name, daemon=True).start()

    def _identify(self, cmd: IdentifyFace) -> FaceIdentified:
        """1:N over every template: is the person lingering at the door anyone we know?"""
        from appliance.vision import nearest

        with self._face_lock:
            try:
                frame = self.camera.read()
                encoding = self.face.encode_largest(frame)
            except Exception:
                log.exception("event=identify_failed")
                return FaceIdentified(cmd.attempt, face_seen=False)
            if encoding is None:
                return FaceIdentified(cmd.attempt, face_seen=False)
            gallery, labels = self.templates.gallery()
            hit = None
            if len(labels):
                hit = nearest(gallery, labels, encoding, float("inf"))
        user_id = None
        distance = None if hit is None else hit[1]
        if hit is not None and hit[1] <= self.face.config.threshold:
            user_id = hit[0]
        snapshot = None
        if user_id is None:
            try:
                snapshot = self.snapshots.save(frame)
            except Exception:
                log.exception("event=snapshot_failed")
        log.info(
            "event=face_identified known=%s user_id=%s distance=%s",
            user_id is not None,
            user_id,
            None if distance is None else round(distance, 3),
        )
        return FaceIdentified(cmd.attempt, True, user_id, distance, snapshot)

    def _check_face(self, cmd: CheckFace) -> FaceChecked:
        with self._face_lock:
            try:
                templates = self.templates.for_user(cmd.user_id)
                decision = self.face.verify(self.camera, templates, liveness=self.liveness)
            except Exception as exc:  # a broken camera denies, it never unlocks
                log.exception("event=face_check_failed user=%s", cmd.user_number)
                return FaceChecked(cmd.attempt, False, None, f"error:{type(exc).__name__}")
        snapshot = None
        if decision.frame is not None:
            try:
                snapshot = self.snapshots.save(decision.frame)
            except Exception:
                log.exception("event=snapshot_failed")
        log.info(
            "event=face_checked user=%s matched=%s distance=%s reason=%s frames=%d ms=%.0f",
            cmd.user_number,
            decision.matched,
            None if decision.distance is None else round(decision.distance, 3),
            decision.reason,
            decision.frames_seen,
            decision.ms,
        )
        return FaceChecked(
            cmd.attempt, decision.matched, decision.distance, decision.reason, snapshot
        )

    def _capture_snapshot(self) -> str | None:
        try:
            return self.snapshots.save(self.camera.read())
        except Exception as exc:
            log.warning("event=snapshot_capture_failed error=%r", str(exc))
            return None

    def _record(self, cmd: Record) -> None:
        """Write one event (with its alert). Never raises on a storage fault: what the disk
        refuses waits in memory (see HELD_MAX) and an alert still leaves over a channel that
        needs no disk, so a full card can neither end a running pulse nor lose an alert."""
        snapshot = self._capture_snapshot() if cmd.snapshot == CAPTURE else cmd.snapshot
        fields = dict(
            id=new_uuid(),
            device_id=self.device_id,
            ts=utcnow(),
            kind=cmd.kind,
            user_number=cmd.user_number,
            user_id=cmd.user_id,
            distance=cmd.distance,
            reason=cmd.reason,
            snapshot_path=snapshot,
            detail=cmd.detail or None,
        )
        alert_id = None
        if cmd.kind in BATCHED_KINDS and not cmd.alert:
            # SD-card care: informational events share one fsync'd commit (see flush_batched)
            item = _Held(fields)
            if self._held or self.guard.low:  # the disk is refusing or nearly full: wait
                self._hold([item])
            else:
                self._batched.append(item)
                if len(self._batched) == 1:
                    self._batch_started = time.monotonic()
                if len(self._batched) >= BATCH_MAX:
                    self.flush_batched()
        else:
            alert_id = self._write_now(_Held(fields, cmd))
        recorded = RecordedEvent(
            id=fields["id"],
            kind=cmd.kind,
            ts=fields["ts"].isoformat(),
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
        self.recent = (self.recent + [recorded])[-200:]
        for listener in list(self.listeners):
            try:
                listener(recorded)
            except Exception:
                log.exception("event=listener_failed")

    def _commit(self, items: list[_Held]) -> dict[str, str]:
        """Write `items` in one transaction (each event with its alert); {event id: alert id}."""
        alert_ids: dict[str, str] = {}
        with self.db.session() as s:  # event and its alert commit together, or not at all
            for item in items:
                event = AccessEvent(**item.fields)
                s.add(event)
                cmd = item.cmd
                if cmd is None or not cmd.alert:
                    continue
                s.flush()
                alert = enqueue_alert(
                    s,
                    event=event,
                    detail=_detail_text(cmd),
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

    def _notify_alerts(self) -> None:
        for hook in list(self.alert_hooks):
            try:
                hook()
            except Exception:
                log.exception("event=alert_hook_failed")

    def _write_now(self, item: _Held) -> str | None:
        """Write a decision or alert at once (held batched events ahead of it, in time order)."""
        batch = self._take_batched()
        try:
            ids = self._commit(batch + [item])
        except Exception as exc:
            error = exc
            self._hold(batch)  # informational: they wait, the decision goes first
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

    def _hold(self, items: list[_Held]) -> None:
        if not items:
            return
        self._held.extend(items)
        while len(self._held) > HELD_MAX:
            drop = next((i for i, h in enumerate(self._held) if h.informational), 0)
            gone = self._held.pop(drop)
            self.held_dropped += 1
            log.error("event=held_event_dropped kind=%s held=%d dropped=%d", gone.fields["kind"],
                      len(self._held), self.held_dropped)  # fmt: skip

    def _storage_failed(self, item: _Held, error: Exception) -> None:
        """The disk refused a decision or alert: hold it, and send its alert without the disk."""
        log.error("event=record_held kind=%s error=%r held=%d", item.fields["kind"], str(error),
                  len(self._held) + 1)  # fmt: skip
        self._hold([item])
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
            free = round(self.guard.free_mb(), 2)
        except OSError:
            free = None
        record = Record(
            "storage_failed",
            reason="storage",
            alert=True,
            detail={"error": what[:300], "replica": str(self.config.replica_path),
                    "free_mb": free, "held": len(self._held)},
        )  # fmt: skip
        item = _Held(
            dict(id=new_uuid(), device_id=self.device_id, ts=utcnow(), kind="storage_failed",
                 user_number=None, user_id=None, distance=None, reason="storage",
                 snapshot_path=None, detail=record.detail),
            record,
        )  # fmt: skip
        log.error(
            "event=storage_failed %s", " ".join(f"{k}={v!r}" for k, v in record.detail.items())
        )
        self._hold([item])
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

    def _send_direct(self, item: _Held) -> None:
        """Send the alert of `item` over every disk-free channel that wants it, off the loop."""
        from appliance.alerts.message import AlertMessage

        cmd = item.cmd
        assert cmd is not None
        f = item.fields
        message = AlertMessage(
            id=f["id"], kind=f["kind"], time=f["ts"], device_id=self.device_id,
            door=self.config.device.name, user_number=f["user_number"],
            distance=f["distance"], detail=_detail_text(cmd),
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
        return len(self._held)

    def retry_held(self, *, all_of_it: bool = False) -> int:
        """Write what the disk refused earlier, decisions and alerts first, in chunks of
        BATCH_MAX; the number written (0 while it still refuses). An alert still being sent
        directly waits, so it is not queued twice; below the free-space floor informational
        events keep waiting (unless `all_of_it`, at stop), so they cannot take the space
        decisions need."""
        ready = [
            h
            for h in self._held
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
                log.warning("event=held_retry_failed held=%d error=%r", len(self._held),
                            str(exc))  # fmt: skip
                break
            written |= {id(h) for h in chunk}
        if written:
            self._held = [h for h in self._held if id(h) not in written]
            log.warning("event=held_written count=%d left=%d", len(written), len(self._held))
        if alerted:
            self._notify_alerts()
        if not self._held:
            self._storage_failing = False
        return len(written)

    def _housekeeping(self) -> None:
        """On idle ticks: retry held records, measure free space (loop thread)."""
        now = time.monotonic()
        if self._held and now >= self._held_retry_at:
            self._held_retry_at = now + HELD_RETRY_S
            self.retry_held()
        if now >= self._storage_check_at:
            self._storage_check_at = now + self.config.health.storage_check_interval_s
            change = self.guard.check()
            if change == "low":
                self._record(
                    Record(
                        "low_disk_space",
                        alert=True,
                        detail={
                            "free_mb": round(self.guard.free_mb(), 2),
                            "floor_mb": self.guard.floor_mb,
                        },
                    )  # fmt: skip
                )

    def _take_batched(self) -> list[_Held]:
        batch, self._batched = self._batched, []
        return batch

    def flush_batched(self, *, older_than_s: float = 0.0) -> int:
        """Commit held informational events (all, or only once the oldest is that old); what
        the disk refuses waits with the other held records. The number written."""
        if not self._batched:
            return 0
        if older_than_s and time.monotonic() - self._batch_started < older_than_s:
            return 0
        batch = self._take_batched()
        try:
            self._commit(batch)
        except Exception as exc:
            log.warning("event=batch_held count=%d error=%r", len(batch), str(exc))
            self._hold(batch)
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
        return len(self._held) + len(self._batched)

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self.templates.refresh()
        warm_up = getattr(self.face, "warm_up", None)
        if warm_up is not None:  # load the models now, not while the first visitor waits
            warm_up(liveness=self.liveness)
        self._stop.clear()
        self.board.keypad.start()
        self._thread = threading.Thread(target=self._run, name="door-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.last_loop_at = time.monotonic()
            try:
                if self.pump(timeout=TICK_S) == 0:
                    self.handle(Tick())
                    self.flush_batched(older_than_s=BATCH_WAIT_S)
                    self._housekeeping()
            except Exception:
                # A bug: lock and carry on. A pulse the state machine granted is left to its own
                # timer (it ends by itself): a fault elsewhere never shortens a granted pulse.
                log.exception("event=door_loop_error")
                if not self.controller.relay_on:
                    self.board.relay.lock()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def healthy(self) -> bool:
        """The loop thread runs and went round within the last 5 s (the watchdog's test)."""
        return self.loop_turned_within(5.0)

    def loop_turned_within(self, seconds: float) -> bool:
        """The loop thread is alive and started a turn less than `seconds` ago."""
        return self.alive and time.monotonic() - self.last_loop_at < seconds

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        self.stop()
        try:
            left = self.drain(2.0)
            if left:
                log.error("event=held_lost_at_stop count=%d", left)
            for channel in (self.direct_channels or {}).values():
                try:
                    channel.close()
                except Exception:
                    log.exception("event=channel_close_error channel=%s", channel.name)
            self.camera.close()
        finally:
            self.board.close()  # relay locked first inside

    def press_keys(self, keys: str) -> None:
        """Press `keys` on the simulated keypad, each exactly once (simulated pins only).

        Raises ValueError naming the first key the keypad does not have, before any is pressed.
        """
        if self.simulator is None:
            raise RuntimeError("press_keys needs simulated hardware (hardware.pin_factory mock)")
        self.simulator.keypad.check_keys(keys)
        for key in keys:
            self.simulator.keypad.tap(key, self.board.keypad)

    def status(self) -> dict[str, Any]:
        c = self.controller
        return {
            "device_id": self.device_id,
            "state": c.state.value,
            "locked": self.board.relay.locked,
            "door_open": self.board.door_is_open,
            "lockout_remaining_s": round(c.lockout_remaining, 1),
            "entered": c.entered_length,
            "loop_alive": self.alive,
        }


def _detail_text(cmd: Record) -> str:
    parts = [f"{k}={v}" for k, v in cmd.detail.items()]
    if cmd.reason:
        parts.insert(0, f"reason={cmd.reason}")
    return " ".join(parts)
