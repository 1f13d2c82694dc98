"""Owns the SD-card benchmark: bytes written to storage per 1,000 door events."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MIX = (
    # a day at a door: most events are motion and door movements, some decisions and alerts
    ("motion", False),
    ("code_wrong", False),
    ("granted", False),
    ("door_opened", False),
    ("door_closed", False),
    ("motion", False),
    ("exit", False),
    ("door_opened", False),
    ("door_closed", False),
    ("denied_face", True),
)


def _write_bytes() -> int:
    with open("/proc/self/io", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no write_bytes")


def measure(n_events: int, batched: bool) -> dict[str, float]:
    """Record `n_events` of MIX through the door's real Recorder on a fresh replica."""
    from appliance.config import Config
    from appliance.core import Record
    from appliance.door import Door
    from appliance.hardware.board import mock_factory
    from appliance.hardware.camera import ReplayCamera
    from appliance.store.central import open_local_replica

    with tempfile.TemporaryDirectory(prefix="doorward-sd-") as tmp:
        import cv2

        frame = Path(tmp) / "frame.jpg"
        cv2.imwrite(str(frame), np.full((480, 640, 3), 80, np.uint8))
        config = Config.convert(
            {"device": {"data_dir": str(Path(tmp) / "var")}, "hardware": {"pin_factory": "mock"}}
        )
        db = open_local_replica(config)
        door = Door(config, db, factory=mock_factory(), camera=ReplayCamera([frame]),
                    face_engine=object())  # fmt: skip
        if not batched:
            door.recorder.batched_kinds = frozenset()
        try:
            door.flush_batched()
            before, t0 = _write_bytes(), time.perf_counter()
            for i in range(n_events):
                kind, alert = MIX[i % len(MIX)]
                door.recorder.record(Record(kind, alert=alert, snapshot=None))
            door.flush_batched()
            with db.engine.connect() as conn:  # make the WAL's content land in the file
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            elapsed = time.perf_counter() - t0
            written = _write_bytes() - before
        finally:
            door.close()
            db.close()
    return {"bytes_per_1000": written * 1000 / n_events, "seconds": elapsed}


def sd_card_section(ctx: Any) -> tuple[dict[str, Any], str]:
    n = 500 if ctx.quick else 2000
    ctx.log(f"sd-card: {n} events unbatched ...")
    plain = measure(n, batched=False)
    ctx.log(f"sd-card: {n} events batched ...")
    batched = measure(n, batched=True)
    ratio = batched["bytes_per_1000"] / plain["bytes_per_1000"]
    figures = {
        "sd_bytes_per_1000_events": round(batched["bytes_per_1000"]),
        "sd_bytes_per_1000_events_unbatched": round(plain["bytes_per_1000"]),
        "sd_batched_ratio": round(ratio, 3),
    }
    body = f"""Command: `make bench` (or `.venv/bin/python -m bench --only sd_card`).

Bytes the door process wrote to storage (`write_bytes` in `/proc/self/io`, i.e. what reached
the block layer, WAL and checkpoint included) while recording {n} events through the real
`Door._record` into a fresh SQLite replica (WAL, `synchronous=FULL`). Event mix per 10:
2 motion, 1 wrong code, 1 grant, 2 door opened, 2 door closed, 1 exit, 1 denied face with its
outbox alert. No snapshot files (they add their JPEG size, ~50-150 KB, per snapshot event;
retention bounds them by age and total size, `[health] snapshot_max_*`).

| | bytes per 1,000 events | time for {n} events |
|---|---|---|
| every event its own fsync'd commit (baseline, same run) | {plain["bytes_per_1000"]:,.0f} \
| {plain["seconds"]:.2f} s |
| informational events batched (motion, door, exit, heartbeat ...) \
| {batched["bytes_per_1000"]:,.0f} | {batched["seconds"]:.2f} s |
| ratio batched / baseline | **{ratio:.2f}** | |

Decisions (grants, denials, wrong codes) and every event with an alert are still committed at
once; only informational events wait, for at most {10:.0f} s or 50 events, and are written before
any decision so the table stays in time order. A power cut loses at most those seconds of
motion and door-movement rows.
"""
    return figures, body
