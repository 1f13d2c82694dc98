"""Face jobs: the camera and the face engine, off the door's loop thread.

A job reads frames, asks the engine, saves the snapshot, and posts its result back to the loop
as an event (FaceChecked, FaceIdentified); the state machine decides what follows. One job at a
time holds the camera. Any exception denies: a broken camera never unlocks.

While the camera is awake and no job runs, a watcher follows the face of the person typing
their code (`FaceEngine.observe`: no encoder pass, which the unknown user does not need yet)
and, with liveness on, judges liveness on those frames. The face check then starts from
that evidence, bound to the user once the code names them (`FaceEngine.verify(watched=...)`),
instead of waiting at the door for frames that show a live face; and it looks for the face
first where the watcher last saw it (`verify(near=...)`). The check still decides on frames
it reads itself, after the code was entered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from appliance.core import CheckFace, Event, FaceChecked, FaceIdentified, IdentifyFace
from appliance.hardware.camera import Camera
from appliance.store.repository import TemplateCache
from appliance.store.snapshots import SnapshotStore

log = logging.getLogger(__name__)

WATCH_MAX_AGE_S = 10.0  # evidence older than this is started afresh (a slow or second visitor)
WATCH_JOIN_S = 2.0  # a check waits at most this long for the watcher's frame in hand
SIGHTING_MAX_AGE_S = 2.0  # where a face was longer ago than this is no hint where it is now
CLOSE_JOIN_S = 5.0  # at the door's stop: how long the watcher and running face jobs may take


class Watcher:
    """One watching thread: frames at the camera's rate, until stopped. Keeps where the face
    was last seen (`sighting`) and, with liveness, feeds the frames to a LivenessCheck."""

    def __init__(
        self,
        camera: Camera,
        face: Any,
        read_lock: threading.Lock,
        fps: float,
        live: bool = True,
    ) -> None:
        self.camera = camera
        self.face = face
        self.read_lock = read_lock
        self.interval = 1.0 / fps
        self.stopped = threading.Event()
        self.live = live
        self.check = face.liveness_check() if live else None
        self.sighting: Any = None  # vision.Sighting of the last usable face seen
        self.frames = 0
        self._since = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="face-watch", daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def take(self) -> dict[str, Any]:
        """Stop watching and hand over the evidence as `verify` keyword arguments: the
        liveness check (`watched`) and where the face was last seen (`near`, if recently).
        Nothing if the watcher could not finish its frame in time: the check then starts
        from nothing."""
        self.stopped.set()
        self._thread.join(WATCH_JOIN_S)
        if self._thread.is_alive():
            return {}
        evidence: dict[str, Any] = {}
        if self.check is not None:
            evidence["watched"] = self.check
        seen = self.sighting
        if seen is not None and time.monotonic() - seen.at <= SIGHTING_MAX_AGE_S:
            evidence["near"] = seen
        return evidence

    def _run(self) -> None:
        due = time.monotonic()
        while not self.stopped.is_set():
            try:
                with self.read_lock:
                    if self.stopped.is_set():  # never restart a camera put to sleep
                        return
                    frame = self.camera.read()
                now = time.monotonic()
                if self.live and now - self._since > WATCH_MAX_AGE_S:
                    self.check, self._since = self.face.liveness_check(), now
                seen = self.face.observe(self.check, frame)
                if seen is not None:
                    self.sighting = seen
                self.frames += 1
            except Exception as exc:  # the check that follows reports a camera fault itself
                log.warning("event=face_watch_stopped error=%r", str(exc))
                return
            due = max(due + self.interval, time.monotonic() - self.interval)
            self.stopped.wait(max(0.0, due - time.monotonic()))


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
        fps: float = 10.0,
    ) -> None:
        self.camera = camera
        self.face = face
        self.templates = templates
        self.snapshots = snapshots
        self.post = post
        self.liveness = liveness
        self.inline = inline  # scripted simulations run jobs on the caller's thread
        self.fps = fps
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()  # a watcher's camera read; held only for one read
        self._watch_mutex = threading.Lock()
        self._watcher: Watcher | None = None
        self._awake = False
        self._closed = False
        self._jobs: set[threading.Thread] = set()  # face jobs running on their own threads

    # ---- watching while the code is typed ---------------------------------------------------
    def _live(self) -> bool:
        live = self.liveness
        if live is None:
            live = bool(getattr(getattr(self.face, "config", None), "liveness", False))
        return live

    def _watches(self) -> bool:
        return not self.inline and hasattr(self.face, "observe")

    def watch(self) -> None:
        """The camera is awake (motion, a key): follow the face (and judge liveness) until a
        job needs the camera."""
        with self._watch_mutex:
            if self._closed:
                return
            self._awake = True
            if not self._watches() or (self._watcher is not None and self._watcher.is_alive()):
                return
            self._watcher = Watcher(
                self.camera, self.face, self._read_lock, self.fps, self._live()
            ).start()

    @property
    def watching(self) -> Watcher | None:
        """The running watcher, if any (for the status page and tests)."""
        with self._watch_mutex:
            w = self._watcher
        return w if w is not None and w.is_alive() else None

    def stop_watching(self) -> None:
        """The camera goes to sleep: stop without waiting for more than the frame being read."""
        with self._watch_mutex:
            self._awake = False
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            with self._read_lock:
                watcher.stopped.set()

    def close(self, timeout: float = CLOSE_JOIN_S) -> list[str]:
        """At the door's stop: stop watching, start nothing more, and wait (at most `timeout`
        in all) for the watcher and the running face jobs to end. A thread still inside dlib
        when the interpreter finalises is unwound through dlib's C++ frames, which aborts the
        process (SIGABRT after the relay was locked: systemd would see a crash). Returns the
        names of the threads that outlived the wait (logged)."""
        with self._watch_mutex:
            self._closed = True
            self._awake = False
            watcher, self._watcher = self._watcher, None
            threads = list(self._jobs)
        if watcher is not None:
            watcher.stopped.set()
            threads.insert(0, watcher.thread)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        left = [t.name for t in threads if t.is_alive()]
        if left:
            log.error("event=face_threads_outlived_stop threads=%s", ",".join(left))
        return left

    def _take_watched(self) -> dict[str, Any]:
        with self._watch_mutex:
            watcher, self._watcher = self._watcher, None
        if watcher is None:
            return {}
        evidence = watcher.take()
        log.debug("event=face_watched frames=%d near=%s", watcher.frames, "near" in evidence)
        return evidence

    def _rewatch(self) -> None:
        """After a job: watch again if the camera is still awake (a second try)."""
        with self._watch_mutex:
            awake = self._awake
        if awake:
            self.watch()

    def warm_up(self) -> None:
        """Load the models now, not while the first visitor waits."""
        warm_up = getattr(self.face, "warm_up", None)
        if warm_up is not None:
            warm_up(liveness=self.liveness)

    def start_check(self, cmd: CheckFace) -> None:
        self._run(lambda: self._then_rewatch(lambda: self.post(self.check(cmd))), "face-check")

    def start_identify(self, cmd: IdentifyFace) -> None:
        self._run(
            lambda: self._then_rewatch(lambda: self.post(self.identify(cmd))), "face-identify"
        )

    def _then_rewatch(self, job: Callable[[], None]) -> None:
        try:
            job()
        finally:
            self._rewatch()

    def _run(self, job: Callable[[], None], name: str) -> None:
        if self.inline:
            job()
            return
        t = threading.Thread(target=self._job, args=(job,), name=name, daemon=True)
        with self._watch_mutex:
            if self._closed:  # the door is stopping: no new job (its loop has ended)
                return
            self._jobs.add(t)
            t.start()  # under the mutex: close never finds a job it cannot join yet

    def _job(self, job: Callable[[], None]) -> None:
        try:
            job()
        finally:
            with self._watch_mutex:
                self._jobs.discard(threading.current_thread())

    def identify(self, cmd: IdentifyFace) -> FaceIdentified:
        """1:N over every template: is the person lingering at the door anyone we know?"""
        from appliance.vision import nearest

        self._take_watched()  # the camera is this job's now
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
        """1:1 against the user's templates (with liveness when configured), starting from
        what the watcher saw while the code was typed."""
        evidence = self._take_watched()
        with self._lock:
            try:
                templates = self.templates.for_user(cmd.user_id)
                decision = self.face.verify(
                    self.camera, templates, liveness=self.liveness, **evidence
                )
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
