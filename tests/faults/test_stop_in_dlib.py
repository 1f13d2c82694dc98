"""Promise 3: the door process ends with exit 0 when it is stopped while its face watcher is
inside dlib. A thread still in dlib when the interpreter finalises is unwound through dlib's
C++ frames and the process aborts (SIGABRT, "terminate called without an active exception"),
after the relay was locked but as a crash to systemd. Door.close waits for the watcher and
the face jobs first (`FaceJobs.close`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from appliance.door.faces import FaceJobs

REPO = Path(__file__).resolve().parents[2]

# Builds the door the embedded default builds (real FaceEngine, replay camera, simulated
# pins), wakes the camera with a key, waits until the watcher has judged frames, stops the
# door and lets the interpreter finalise. The frame is a large one with no face: every frame
# runs the detector's three passes, so the watcher is almost always inside dlib.
DRIVER = textwrap.dedent(
    """
    import sys
    from appliance.config import Config
    from appliance.door import Door
    from appliance.store.central import open_local_replica
    from tests.support.waiting import eventually

    config = Config.convert({
        "device": {"data_dir": sys.argv[1]},
        "hardware": {"pin_factory": "mock"},
        "camera": {"kind": "replay", "sources": [sys.argv[2]]},
        "vision": {"liveness": False},
        "admin": {"enabled": False},
        "alerts": {"mailbox": {"enabled": False}},
    })
    db = open_local_replica(config)
    door = Door(config, db)
    door.start()
    door.press_keys("1")  # a key wakes the camera: the watcher follows the doorstep
    watching = lambda: (w := door.faces.watching) is not None and w.frames >= 2
    eventually(watching, 60, interval=0.01, what="the watcher judging frames")
    door.close()
    db.close()
    print("closed", flush=True)
    """
)


def test_a_door_stopped_while_its_watcher_is_in_dlib_exits_cleanly(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    frame = tmp_path / "doorstep.jpg"  # no face: texture the detector scans in full
    Image.fromarray(rng.integers(0, 255, (1944, 2592, 3), dtype=np.uint8)).save(frame)
    env = {"DOORWARD_PEPPER": "p", "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    for attempt in range(3):
        run = subprocess.run(
            [sys.executable, "-c", DRIVER, str(tmp_path / f"var{attempt}"), str(frame)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert run.returncode == 0, (run.returncode, run.stderr[-3000:])
        assert run.stdout.strip() == "closed"
        assert "face_threads_outlived_stop" not in run.stderr


class _Blocking:
    """A face engine whose `observe` holds the watcher until released (as dlib holds it
    through a detection)."""

    config = None

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()

    def liveness_check(self) -> None:
        return None

    def observe(self, check: object, frame: object) -> None:
        self.inside.set()
        self.release.wait(10)


class _Camera:
    def read(self) -> np.ndarray:
        return np.zeros((4, 4, 3), np.uint8)


def test_close_waits_for_the_watcher_inside_the_engine_and_starts_nothing_after() -> None:
    engine = _Blocking()
    jobs = FaceJobs(_Camera(), engine, None, None, lambda e: None, liveness=False)  # type: ignore[arg-type]
    jobs.watch()
    assert engine.inside.wait(5)
    watcher = jobs.watching
    assert watcher is not None
    closer = threading.Thread(target=jobs.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive()  # still waiting: the watcher is inside the engine
    engine.release.set()
    closer.join(5)
    assert not closer.is_alive() and not watcher.is_alive()
    jobs.watch()  # a key after the stop: no new watcher
    assert jobs.watching is None


def test_close_gives_up_after_its_timeout_and_names_the_thread() -> None:
    engine = _Blocking()
    jobs = FaceJobs(_Camera(), engine, None, None, lambda e: None, liveness=False)  # type: ignore[arg-type]
    jobs.watch()
    assert engine.inside.wait(5)
    try:
        assert jobs.close(timeout=0.2) == ["face-watch"]
    finally:
        engine.release.set()
