"""The door: builds its parts from config (relay locked first), runs one loop thread that feeds
the state machine, and stops in reverse.

Hardware callbacks arrive on gpiozero's threads and are queued; the loop thread feeds the state
machine and carries out its commands (CommandRunner), so decisions never race each other.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory

from appliance.config import Config
from appliance.core import (
    AccessController,
    DoorbellPressed,
    DoorClosed,
    DoorOpened,
    Event,
    ExitPressed,
    FireAlarm,
    HandleError,
    KeyPressed,
    MotionDetected,
    ScheduleChanged,
    ServiceRecord,
    SetLockdown,
    TamperTriggered,
    Tick,
)
from appliance.door.budget import BudgetFile
from appliance.door.commands import HOLD_LEASE_S, CommandRunner
from appliance.door.faces import FaceJobs
from appliance.door.policy import policy_from
from appliance.door.recorder import RecordedEvent, Recorder
from appliance.hardware.board import Board, InputCallbacks, make_pin_factory
from appliance.hardware.camera import Camera, open_camera
from appliance.hardware.simulator import DoorSimulator
from appliance.security import pin_hasher
from appliance.store.db import Database
from appliance.store.guests import ReplicaGuests
from appliance.store.lockdown import read_lockdown, write_lockdown
from appliance.store.models import Device, utcnow
from appliance.store.repository import ReplicaCredentials, TemplateCache
from appliance.store.schedules import ScheduleCache
from appliance.store.snapshots import SnapshotStore

log = logging.getLogger(__name__)

TICK_S = 0.1
POLICY_POLL_S = 1.0  # how often the loop looks at the schedule and the stored lockdown
PUMP_LIMIT = 64  # events one loop turn handles before its polls (a flood cannot starve them)
BUDGET_RETRY_S = 1.0  # how often a budget save the disk refused is tried again
# a wall clock that moved this far against the monotonic one since the last budget save (NTP
# stepping a Pi without a clock battery) has the budget saved again in the new wall time
CLOCK_STEP_S = 1.0


class Door:
    """One door: board (relay locked first), camera, face engine, replica, state machine,
    recorder. `start()` runs the loop thread; `close()` stops it and locks."""

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
        synced: bool = False,
    ) -> None:
        self.config = config
        self.clock = clock
        self.wall_clock = wall_clock
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
            hasher = pin_hasher(config, db)
            self.guests = ReplicaGuests(
                db, hasher, config.device.id, now=self.now, synced=synced,
                pending_uses=lambda gid: self.recorder.pending_guest_uses(gid),
            )  # fmt: skip
            self.controller = AccessController(
                policy_from(config),
                ReplicaCredentials(db, hasher, self.now, device_id=config.device.id),
                clock,
                guests=self.guests,
            )
            self.schedule = ScheduleCache(db, config.device.id)
            stored = read_lockdown(db)
            self._lockdown_wanted = stored["on"]
            self.controller.restore_lockdown(stored["on"])
            # wall clock only for the persisted brute-force budget
            self.budget_file = BudgetFile(config.data_dir, wall_clock)
            self._restore_budget()
        except Exception:
            self.board.close()
            raise
        self._budget_saved = self._budget_tried = self.controller.budget_changes
        self._budget_offset = wall_clock() - clock()
        self._budget_retry_at = float("-inf")
        self.faces = FaceJobs(
            self.camera, self.face, self.templates, self.snapshots, self.post,
            liveness=liveness, inline=inline_face, fps=config.camera.fps,
        )  # fmt: skip
        self.recorder = Recorder(config, db, capture_snapshot=self.faces.capture_snapshot)
        self.execute = CommandRunner(self.board, self.faces, self.recorder)
        self._queue: queue.Queue[Event | ServiceRecord] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_loop_at = 0.0
        self._policy_poll_at = float("-inf")
        self._schedule_posted: tuple[str | None, bool] | None = None
        self.board.connect(
            InputCallbacks(
                motion=lambda: self.post(MotionDetected()),
                door_opened=lambda: self.post(DoorOpened()),
                door_closed=lambda: self.post(DoorClosed()),
                exit_pressed=lambda: self.post(ExitPressed()),
                tamper=lambda: self.post(TamperTriggered()),
                key=lambda k: self.post(KeyPressed(k)),
                doorbell=lambda: self.post(DoorbellPressed()),
                fire=lambda active: self.post(FireAlarm(active)),
            )
        )
        # inputs already at their alarm level when the door started (after a power cut, a
        # watchdog restart): their edges happened before anyone was listening
        if self.board.fire_alarm:
            self.post(FireAlarm(True))
        if self.board.door_is_open:
            self.post(DoorOpened(at_start=True))
        if self.board.tamper_alarm:
            self.post(TamperTriggered())

    def now(self) -> datetime:
        """Wall-clock time for validity dates, schedules and guest codes (injectable)."""
        return datetime.fromtimestamp(self.wall_clock(), UTC)

    # ---- lockdown and schedule (remote commands, admin page, CLI) -------------------------
    def set_lockdown(self, on: bool, *, by: str, source: str) -> None:
        """Lockdown on or off, from any thread. Stored first (it survives a restart and the
        admin page and CLI see it), then handed to the loop; refusals start with the next
        event the loop takes."""
        write_lockdown(self.db, on, by=by, source=source)
        self._lockdown_wanted = bool(on)
        self.post(SetLockdown(bool(on), by=by, source=source))

    @property
    def lockdown_active(self) -> bool:
        """The lockdown as last set (the loop enforces it from its next event)."""
        return self._lockdown_wanted

    def _poll_policies(self) -> None:
        """On the loop, once per POLICY_POLL_S: the stored lockdown (set by another process)
        and the schedule window for the wall-clock time."""
        t = time.monotonic()
        if t < self._policy_poll_at:
            return
        self._policy_poll_at = t + POLICY_POLL_S
        self.poll_policies_now()

    def poll_policies_now(self) -> None:
        try:
            stored = read_lockdown(self.db)
            self._lockdown_wanted = stored["on"]
            if stored["on"] != self.controller.lockdown:
                self.handle(SetLockdown(stored["on"], by=stored["by"], source=stored["source"]))
        except Exception:
            log.exception("event=lockdown_poll_failed")
        try:
            active = self.schedule.active(self.now())
        except Exception:  # a broken schedule row: the door stays as it is, locked by default
            log.exception("event=schedule_poll_failed")
            return
        want = (active.key, active.first_person_in) if active else (None, False)
        if want != self._schedule_posted:
            self._schedule_posted = want
            self.handle(ScheduleChanged(want[0], first_person_in=want[1]))

    def _register_device(self) -> None:
        with self.db.session() as s:
            dev = s.get(Device, self.device_id)
            if dev is None:
                s.add(Device(id=self.device_id, name=self.config.device.name, last_seen=utcnow()))
            else:
                dev.name = self.config.device.name
                dev.last_seen = utcnow()

    def _restore_budget(self) -> None:
        budget = self.budget_file.load(self.controller.policy.lockout_s)
        if budget is None:  # first start
            return
        self.controller.restore_budget(budget)
        b = self.controller.budget()
        log.info("event=budget_restored wrong=%d face_fails=%d lockout_remaining_s=%.0f",
                 len(b.wrong_ages), len(b.face_fail_ages), b.lockout_remaining)  # fmt: skip

    # ---- what other parts hook into -------------------------------------------------------
    @property
    def listeners(self) -> list[Callable[[RecordedEvent], None]]:
        """Called with every RecordedEvent (MQTT publisher, `doorward simulate`'s printer)."""
        return self.recorder.listeners

    @property
    def alert_hooks(self) -> list[Callable[[], None]]:
        """Called when an alert was queued (the dispatcher's notify)."""
        return self.recorder.alert_hooks

    @property
    def recent(self) -> list[RecordedEvent]:
        return self.recorder.recent

    @property
    def held_count(self) -> int:
        return self.recorder.held_count

    @property
    def liveness(self) -> bool | None:
        return self.faces.liveness

    def flush_batched(self) -> int:
        return self.recorder.flush_batched()

    def drain(self, timeout_s: float) -> int:
        return self.recorder.drain(timeout_s)

    # ---- events in ------------------------------------------------------------------------
    def post(self, event: Event | ServiceRecord) -> None:
        """Queue an event from any thread (hardware callbacks, face worker, admin panel)."""
        self._queue.put(event)

    def handle(self, event: Event | ServiceRecord) -> None:
        """Feed one event to the state machine and carry out its commands (loop thread)."""
        if isinstance(event, ServiceRecord):  # heartbeat, device loss: not access decisions
            self.recorder.record(event.record)
            return
        failure: HandleError | None = None
        try:
            commands = self.controller.handle(event)
        except HandleError as exc:  # a bug or a fault in the event's handler: what came
            commands, failure = exc.commands, exc  # before it is still carried out
        # before the feedback: a wrong code the person saw refused is on disk, so a crash, a
        # watchdog restart or a power cut cannot hand out a fresh budget
        self._keep_budget()
        for command in commands:
            self.execute(command)
        if self.controller.relay_held:
            self.board.relay.hold(HOLD_LEASE_S)  # renew the lease while the machine holds it
        if failure is not None:
            raise failure.__cause__ or failure  # to the loop's handler: logged, relay safe

    def _keep_budget(self) -> None:
        """Save the brute-force budget when it changed since the last save that succeeded
        (a change is tried at once; one the disk refused again every BUDGET_RETRY_S, on every
        event and idle tick), and when the wall clock stepped since (the file holds wall
        times: saved before an NTP step, a lockout would read as over after a restart)."""
        changes = self.controller.budget_changes
        offset = self.wall_clock() - self.clock()
        stepped = abs(offset - self._budget_offset) > CLOCK_STEP_S
        if changes == self._budget_saved and not stepped:
            return
        if changes == self._budget_tried and self.clock() < self._budget_retry_at:
            return
        self._budget_tried = changes
        if self.budget_file.save(self.controller.budget()):
            self._budget_saved = changes
            self._budget_offset = offset
        else:
            self._budget_retry_at = self.clock() + BUDGET_RETRY_S

    def _retry_budget_now(self) -> None:
        """At close: one more try at a budget save that is still owed (no retry pacing)."""
        self._budget_retry_at = float("-inf")
        self._keep_budget()

    def pump(self, timeout: float = 0.0, limit: int | None = None) -> int:
        """Handle every queued event, or the first `limit` (waiting up to `timeout` for the
        first); returns the count."""
        n = 0
        try:
            event = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return 0
        while True:
            self.handle(event)
            n += 1
            if limit is not None and n >= limit:
                return n
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return n

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self.templates.refresh()
        self.faces.warm_up()
        self._stop.clear()
        self.board.keypad.start()
        self._thread = threading.Thread(target=self._run, name="door-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.last_loop_at = time.monotonic()
            try:
                if self.pump(timeout=TICK_S, limit=PUMP_LIMIT) == 0:
                    self.handle(Tick())
                # every turn, not only idle ones (both pace themselves): a stream of events
                # (keys, a chattering sensor) must not keep the stored lockdown or a
                # schedule window's end from the door, nor held records from the disk
                self._poll_policies()
                self.recorder.housekeeping()
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
            left = self.recorder.drain(2.0)
            if left:
                log.error("event=held_lost_at_stop count=%d", left)
            self.recorder.close()
            self.faces.close()  # waits for the watcher and face jobs (none left in dlib)
            self.camera.close()
        finally:
            try:
                self._retry_budget_now()
            finally:
                self.board.close()  # relay locked first inside

    # ---- the simulated door and the admin panel -------------------------------------------
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
            "lockdown": c.lockdown,
            "fire_alarm": c.fire_active,
            "held": c.held_reason or None,
            "schedule_window": c.schedule_window,
            "waiting_first_person": c.schedule_waiting_first_person,
        }
