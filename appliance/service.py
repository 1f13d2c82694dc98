"""Owns the composition root: builds the door from config, runs its loop, stops it in reverse."""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory

from appliance.alerts.outbox import enqueue_alert
from appliance.config import ENV_PEPPER, Config, ConfigError
from appliance.core import (
    CAPTURE,
    AccessController,
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
    Signal,
    SleepCamera,
    TamperTriggered,
    Tick,
    Unlock,
    WakeCamera,
)
from appliance.hardware.board import Board, InputCallbacks, make_pin_factory
from appliance.hardware.camera import Camera, CameraError, open_camera
from appliance.hardware.simulator import DoorSimulator
from appliance.security import PinHasher
from appliance.store.db import Database
from appliance.store.models import AccessEvent, Device, new_uuid, utcnow
from appliance.store.repository import ReplicaCredentials, TemplateCache
from appliance.store.snapshots import SnapshotStore

log = logging.getLogger(__name__)

TICK_S = 0.1
# Events that carry no decision and no alert: held in memory and written together, at most
# BATCH_MAX at a time or BATCH_WAIT_S after the first, or before any other event. A power cut
# can lose at most those seconds of them; decisions and alerts are always committed at once.
BATCHED_KINDS = frozenset(
    {"motion", "heartbeat", "door_opened", "door_closed", "exit", "lockout_ended",
     "locked_out", "camera_restored", "modem_restored"}
)  # fmt: skip
BATCH_MAX = 50
BATCH_WAIT_S = 10.0


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


def pin_hasher(config: Config) -> PinHasher:
    """The PIN hasher with this installation's pepper (see SecurityConfig.pepper)."""
    pepper = config.security.pepper.resolve("security.pepper") or os.environ.get(ENV_PEPPER)
    if not pepper:
        pepper = _device_pepper(config.data_dir / "pepper")
    return PinHasher(pepper)


def _device_pepper(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value)
        fh.flush()
        os.fsync(fh.fileno())
    return value


@dataclass(frozen=True)
class ServiceRecord:
    """An event the service itself records on the loop thread (heartbeat, device lost)."""

    record: Record


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
    ) -> None:
        self.config = config
        self.clock = clock
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
                ReplicaCredentials(db, pin_hasher(config), device_id=config.device.id),
                clock,
            )
        except Exception:
            self.board.close()
            raise
        self.inline_face = inline_face
        self.listeners: list[Callable[[RecordedEvent], None]] = []
        self.alert_hooks: list[Callable[[], None]] = []  # e.g. the dispatcher's notify()
        self._batched: list[AccessEvent] = []
        self._batch_started = 0.0
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
        for command in self.controller.handle(event):
            self._execute(command)

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
                self._record(command)

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
        snapshot = self._capture_snapshot() if cmd.snapshot == CAPTURE else cmd.snapshot
        event = AccessEvent(
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
            self._batched.append(event)
            if len(self._batched) == 1:
                self._batch_started = time.monotonic()
            if len(self._batched) >= BATCH_MAX:
                self.flush_batched()
        else:
            with self.db.session() as s:  # event and its alert commit together, or not at all
                for earlier in self._take_batched():  # keep the table in time order
                    s.add(earlier)
                s.add(event)
                if cmd.alert:
                    s.flush()
                    alert_id = enqueue_alert(
                        s,
                        event=event,
                        detail=_detail_text(cmd),
                        priority=cmd.priority,
                        window_s=self.config.alerts.incident_window_s,
                        hold_s=self.config.alerts.incident_hold_s,
                    ).id
            if alert_id is not None:
                for hook in list(self.alert_hooks):
                    try:
                        hook()
                    except Exception:
                        log.exception("event=alert_hook_failed")
        recorded = RecordedEvent(
            id=event.id,
            kind=event.kind,
            ts=event.ts.isoformat(),
            user_number=event.user_number,
            distance=None if event.distance is None else round(event.distance, 4),
            reason=event.reason,
            snapshot=snapshot,
            alert_id=alert_id,
            detail=dict(cmd.detail),
        )
        log.info(
            "event=%s user=%s distance=%s reason=%s alert=%s",
            event.kind,
            event.user_number,
            recorded.distance,
            event.reason,
            alert_id or "-",
        )
        self.recent = (self.recent + [recorded])[-200:]
        for listener in list(self.listeners):
            try:
                listener(recorded)
            except Exception:
                log.exception("event=listener_failed")

    def _take_batched(self) -> list[AccessEvent]:
        batch, self._batched = self._batched, []
        return batch

    def flush_batched(self, *, older_than_s: float = 0.0) -> int:
        """Commit held informational events (all, or only once the oldest is that old)."""
        if not self._batched:
            return 0
        if older_than_s and time.monotonic() - self._batch_started < older_than_s:
            return 0
        batch = self._take_batched()
        try:
            with self.db.session() as s:
                s.add_all(batch)
        except Exception:
            self._batched = batch + self._batched  # try again on the next flush
            raise
        return len(batch)

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
            except Exception:
                # never leave the door open because of a bug: lock and carry on
                log.exception("event=door_loop_error")
                self.board.relay.lock()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def healthy(self) -> bool:
        """The loop thread runs and went round within the last 5 s (the watchdog's test)."""
        return self.alive and time.monotonic() - self.last_loop_at < 5.0

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        self.stop()
        try:
            self.flush_batched()
            self.camera.close()
        finally:
            self.board.close()  # relay locked first inside

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


def check_data_dir(path: Path) -> None:
    from appliance.security import private_dir

    try:
        private_dir(path)
    except OSError as exc:
        raise ConfigError(f"device.data_dir: cannot create {path}: {exc.strerror}") from None


class HealthWorker:
    """Heartbeat events, camera-loss alerts and snapshot retention, off the door's loop.

    Results go to the door loop as ServiceRecord events, so all recording stays on one thread.
    The camera is probed only while the door is idle, so a probe never steals a frame from a
    face check.
    """

    def __init__(self, door: Door, clock: Callable[[], float] = time.monotonic) -> None:
        from appliance.health.settings import health_settings
        from appliance.health.watch import DeviceWatch, Heartbeat, camera_probe, modem_probe

        self.door = door
        self.settings = health_settings(door.config)
        self._clock = clock
        self.heartbeat = Heartbeat(self.settings.heartbeat_interval_s, clock)
        self.camera_watch = DeviceWatch(
            "camera", camera_probe(door.camera), self.settings.device_loss_after
        )
        gsm = door.config.alerts.gsm
        self.modem_watch = (
            DeviceWatch("modem", modem_probe(gsm.port, gsm.baud), self.settings.device_loss_after)
            if gsm is not None and gsm.enabled
            else None
        )
        self._next_device_check = clock()
        self._next_prune = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        now = self._clock()
        s = self.settings
        if self.heartbeat.due():
            self.door.post(ServiceRecord(Record("heartbeat", detail=self.heartbeat.detail())))
        if now >= self._next_device_check:
            self._next_device_check = now + s.device_check_interval_s
            if self.door.controller.state.value == "idle":
                self._report(self.camera_watch.check())
                if not self.door.controller.camera_awake:
                    try:  # the probe started the stream; nobody is at the door
                        self.door.camera.stop()
                    except Exception:
                        log.warning("event=camera_stop_failed")
            if self.modem_watch is not None:
                self._report(self.modem_watch.check())
        if now >= self._next_prune:
            self._next_prune = now + s.snapshot_prune_interval_s
            from appliance.health.retention import prune_snapshots

            try:
                stats = prune_snapshots(
                    self.door.config.snapshot_dir, s.snapshot_max_age_days, s.snapshot_max_total_mb
                )
                log.info(
                    "event=snapshots_pruned %s",
                    " ".join(f"{k}={v}" for k, v in stats.as_dict().items()),
                )
            except Exception:
                log.exception("event=snapshot_prune_failed")

    def _report(self, change: Any) -> None:
        """A device was lost (alert) or came back (event), as the door loop records it."""
        if change is None:
            return
        kind = change.alert_kind or f"{change.device}_restored"
        self.door.post(
            ServiceRecord(
                Record(
                    kind,
                    reason=change.error[:64] or None,
                    alert=change.alert_kind is not None,
                    detail={"failures": change.failures},
                )
            )
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.run_once()
            except Exception:
                log.exception("event=health_worker_error")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
