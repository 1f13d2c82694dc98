"""The door watches while a code is typed: FaceJobs judges liveness on the camera's frames
from the wake until the face check, which then starts from that evidence."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.config import VisionConfig
from appliance.core import CheckFace, SleepCamera, WakeCamera
from appliance.door.commands import CommandRunner
from appliance.door.faces import FaceJobs
from appliance.vision import FaceEngine
from bench.attacks import clip_frames
from tests.support.waiting import eventually

pytestmark = pytest.mark.faces

CLIPS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "clips"


class ClipCamera:
    """A streaming camera over a clip's frames (thread-safe); reads after stop() are noted:
    a sleeping camera must not be woken by the watcher."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = frames
        self.reads = 0
        self.running = True
        self.read_while_stopped = 0
        self._mutex = threading.Lock()

    def start(self) -> None:
        self.running = True

    def read(self) -> np.ndarray:
        with self._mutex:
            if not self.running:
                self.read_while_stopped += 1
            frame = self.frames[min(self.reads, len(self.frames) - 1)]
            self.reads += 1
            return frame

    def stop(self) -> None:
        self.running = False

    def close(self) -> None:
        pass


class Engine(FaceEngine):
    """The real engine, keeping its last decision and what the check was handed."""

    last: Any = None
    handed: dict[str, Any] | None = None
    reads_before: int = -1  # the camera's reads when the check began

    def verify(self, *a: Any, **k: Any) -> Any:
        self.handed = k
        self.reads_before = a[0].reads
        self.last = super().verify(*a, **k)
        return self.last


class Templates:
    def __init__(self, tmpl: np.ndarray) -> None:
        self.tmpl = tmpl

    def for_user(self, user_id: int) -> np.ndarray:
        return self.tmpl


class Snapshots:
    def save(self, frame: np.ndarray) -> str:
        return "snapshot.jpg"


@pytest.fixture(scope="module")
def d18() -> list[np.ndarray]:
    return clip_frames(CLIPS / "driving_d18.mp4", 10.0)


def _jobs(frames: list[np.ndarray], tmpl_frame: np.ndarray) -> tuple[FaceJobs, ClipCamera]:
    engine = Engine(VisionConfig())
    tmpl = engine.enroll(tmpl_frame).encoding[None, :]
    cam = ClipCamera(frames)
    jobs = FaceJobs(cam, engine, Templates(tmpl), Snapshots(), lambda e: None, fps=50.0)  # type: ignore[arg-type]
    return jobs, cam


def test_the_check_starts_from_what_was_watched_while_typing(d18) -> None:
    jobs, cam = _jobs(d18[10:], d18[0])
    jobs.watch()
    watcher = jobs.watching
    assert watcher is not None
    eventually(lambda: watcher.frames >= 12, timeout=60)
    posted: list[Any] = []
    jobs.post = posted.append
    jobs.start_check(CheckFace(attempt=1, user_id=1, user_number=1))  # the job's own thread
    (result,) = eventually(lambda: posted, timeout=60)
    assert result.matched and result.reason == "match"
    decision = jobs.face.last
    assert decision.detail["watched"] >= 12
    assert decision.frames_seen == 1  # the code's end: one frame to match, liveness done
    eventually(lambda: jobs.watching, what="watching again (camera awake: a second try)")
    jobs.stop_watching()


def test_a_camera_put_to_sleep_is_not_read_again(d18) -> None:
    jobs, cam = _jobs(d18, d18[0])
    runner = CommandRunner(board=None, faces=jobs, recorder=None)  # type: ignore[arg-type]
    runner(WakeCamera())
    watcher = jobs.watching
    assert watcher is not None
    eventually(lambda: watcher.frames >= 2, timeout=60)
    runner(SleepCamera())
    assert watcher.stopped.is_set() and jobs.watching is None
    watcher._thread.join(10)
    assert not watcher.is_alive()
    assert cam.read_while_stopped == 0 and not cam.running


def test_without_liveness_the_watcher_only_follows_the_face(d18) -> None:
    """No liveness evidence is gathered, but the check is told where the face was and looks
    there first; it still decides on the frame it reads itself, after the code."""
    jobs, cam = _jobs(d18[10:], d18[0])
    jobs.liveness = False
    jobs.watch()
    watcher = jobs.watching
    assert watcher is not None and watcher.check is None
    eventually(lambda: watcher.frames >= 3 and watcher.sighting is not None, timeout=60)
    posted: list[Any] = []
    jobs.post = posted.append
    jobs.start_check(CheckFace(attempt=1, user_id=1, user_number=1))
    (result,) = eventually(lambda: posted, timeout=60)
    assert result.matched and result.reason == "match"
    assert jobs.face.handed is not None and "watched" not in jobs.face.handed
    assert jobs.face.handed["near"].box == watcher.sighting.box
    decision = jobs.face.last
    assert decision.detail["tracked"] == 1 and decision.frames_seen == 1
    assert decision.frame is cam.frames[min(jobs.face.reads_before, len(cam.frames) - 1)]
    jobs.stop_watching()


def test_an_old_sighting_is_no_hint(d18) -> None:
    from appliance.door import faces as faces_mod
    from appliance.vision import Sighting

    jobs, _ = _jobs(d18[10:], d18[0])
    jobs.liveness = False
    jobs.watch()
    watcher = jobs.watching
    assert watcher is not None
    eventually(lambda: watcher.sighting is not None, timeout=60)
    watcher.stopped.set()
    watcher._thread.join(10)
    assert "near" in watcher.take()
    seen = watcher.sighting
    watcher.sighting = Sighting(seen.box, seen.enhanced, seen.at - faces_mod.SIGHTING_MAX_AGE_S)
    assert watcher.take() == {}


def test_no_watching_in_scripted_simulations(d18) -> None:
    jobs, _ = _jobs(d18, d18[0])
    jobs.liveness, jobs.inline = None, True
    jobs.watch()
    assert jobs.watching is None
