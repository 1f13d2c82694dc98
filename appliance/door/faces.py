"""Face jobs: the camera and the face engine, off the door's loop thread.

A job reads frames, asks the engine, saves the snapshot, and posts its result back to the loop
as an event (FaceChecked, FaceIdentified); the state machine decides what follows. One job at a
time holds the camera. Any exception denies: a broken camera never unlocks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from appliance.core import CheckFace, Event, FaceChecked, FaceIdentified, IdentifyFace
from appliance.hardware.camera import Camera
from appliance.store.repository import TemplateCache
from appliance.store.snapshots import SnapshotStore

log = logging.getLogger(__name__)


class FaceJobs:
    def __init__(
        self,
        camera: Camera,
        face: Any,
        templates: TemplateCache,
        snapshots: SnapshotStore,
        post: Callable[[Event], None],
        *,
        liveness: bool | None = None,
        inline: bool = False,
    ) -> None:
        self.camera = camera
        self.face = face
        self.templates = templates
        self.snapshots = snapshots
        self.post = post
        self.liveness = liveness
        self.inline = inline  # scripted simulations run jobs on the caller's thread
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the models now, not while the first visitor waits."""
        warm_up = getattr(self.face, "warm_up", None)
        if warm_up is not None:
            warm_up(liveness=self.liveness)

    def start_check(self, cmd: CheckFace) -> None:
        self._run(lambda: self.post(self.check(cmd)), "face-check")

    def start_identify(self, cmd: IdentifyFace) -> None:
        self._run(lambda: self.post(self.identify(cmd)), "face-identify")

    def _run(self, job: Callable[[], None], name: str) -> None:
        if self.inline:
            job()
        else:
            threading.Thread(target=job, name=name, daemon=True).start()

    def identify(self, cmd: IdentifyFace) -> FaceIdentified:
        """1:N over every template: is the person lingering at the door anyone we know?"""
        from appliance.vision import nearest

        with self._lock:
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

    def check(self, cmd: CheckFace) -> FaceChecked:
        """1:1 against the user's templates (with liveness when configured)."""
        with self._lock:
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

    def capture_snapshot(self) -> str | None:
        """A photo for an event that wants one (forced door, tamper ...), or None."""
        try:
            return self.snapshots.save(self.camera.read())
        except Exception as exc:
            log.warning("event=snapshot_capture_failed error=%r", str(exc))
            return None
