"""Promise 10: a central database that accepts and never answers cannot hold the door up."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.store.central import open_central, open_local_replica
from appliance.store.sync import SyncWorker
from tests.support.waiting import eventually

from .doubles import BlackHole, make_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hole() -> Iterator[BlackHole]:
    h = BlackHole().start()
    yield h
    h.stop()


def test_a_sync_round_against_a_black_hole_ends_within_connect_plus_io_timeout(
    tmp_path: Path, hole: BlackHole
) -> None:
    """One round (pull, push) against a listener that never answers ends after at most
    connect_timeout_s + io_timeout_s (plus slack), reporting the failure; it does not wait the
    timeouts out once per step."""
    config = make_config(tmp_path / "var", database={"connect_timeout_s": 1, "io_timeout_s": 3})
    central = open_central(config, f"mysql+pymysql://door@127.0.0.1:{hole.port}/doorward")
    replica = open_local_replica(config)
    try:
        t0 = time.monotonic()
        report = SyncWorker(config, central, replica).run_once()
        took = time.monotonic() - t0
    finally:
        central.close()
        replica.close()
    assert not report.ok and "pull" in (report.error or "")
    assert took <= 1 + 3 + 0.8, f"round took {took:.1f}s"
    print(f"sync_round_s={took:.2f}")


def test_sigterm_with_a_black_holed_central_exits_well_inside_timeoutstopsec(
    tmp_path: Path, hole: BlackHole
) -> None:
    """`doorward run` with its central database black-holed (default timeouts: a sync round
    blocks ~30 s) stops on SIGTERM in well under the unit's TimeoutStopSec=20, exit 0."""
    data_dir = tmp_path / "var"
    cfg = tmp_path / "doorward.toml"
    cfg.write_text(
        f'[device]\ndata_dir = "{data_dir}"\n[hardware]\npin_factory = "mock"\n'
        f'[database]\nurl = "mysql+pymysql://door@127.0.0.1:{hole.port}/doorward"\n'
        "[admin]\nenabled = false\n[alerts.mailbox]\nenabled = false\n"
    )
    env = {**os.environ, "DOORWARD_PEPPER": "p", "PYTHONUNBUFFERED": "1"}
    env.pop("DOORWARD_DATABASE_URL", None)
    log = tmp_path / "door.log"
    with open(log, "w") as out:
        child = subprocess.Popen(
            [str(REPO / ".venv/bin/doorward"), "--config", str(cfg), "run",
             "--no-terminal-keypad"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    try:

        def started() -> bool:
            assert child.poll() is None, log.read_text()
            return "doorward: door" in log.read_text()

        eventually(started, 120, what="doorward run starts")
        # the signal must find a sync round blocked in the black hole, not before it began
        eventually(lambda: hole.accepted > 0, 60, what="the sync round connecting")
        t0 = time.monotonic()
        child.send_signal(signal.SIGTERM)
        try:
            code = child.wait(30)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - t0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert code == 0, log.read_text()[-4000:]
    assert took < 10.0, f"stop took {took:.1f}s\n" + log.read_text()[-4000:]
    print(f"shutdown_s={took:.2f}")
