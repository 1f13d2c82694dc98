"""The door's health worker: heartbeats, camera and modem loss, snapshot retention.

It runs on its own thread beside the door loop and hands every result to the loop as a
ServiceRecord, so that all recording stays on the loop's one thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from appliance.core import Record, ServiceRecord

from .settings import health_settings
from .watch import DeviceWatch, Heartbeat, camera_probe, modem_probe

if TYPE_CHECKING:
    from appliance.door import Door

log = logging.getLogger(__name__)


class HealthWorker:
    """Heartbeat events, camera-loss alerts and snapshot retention, off the door's loop.

    Results go to the door loop as ServiceRecord events, so all recording stays on one thread.
    The camera is probed only while the door is idle, so a probe never steals a frame from a
    face check.
    """

    def __init__(self, door: Door, clock: Callable[[], float] = time.monotonic) -> None:
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
