"""The door process's memory with MQTT, Home Assistant discovery and remote commands on,
against the same door without them, measured in the same run (issue #16)."""

from __future__ import annotations

import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any

from .common import BenchContext, faces_dir, log


def _broker_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 1883), timeout=1):
            return True
    except OSError:
        return False


def remote_section(ctx: BenchContext) -> tuple[dict[str, Any], str]:
    import cv2

    from .face import NO_LIVENESS, _run_process_rss, _write_frame

    if not _broker_up():
        raise RuntimeError("bench remote: needs Mosquitto on 127.0.0.1:1883")
    people = sorted((faces_dir() / "people").iterdir())
    photos = sorted(p for p in people[0].iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    enroll, probe = photos[0], photos[1]
    tmp = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    bgr = cv2.imread(str(probe))
    if bgr is None:
        raise RuntimeError(f"bench remote: cannot read {probe}")
    frame = _write_frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), 1920, 1080, tmp / "frame.jpg")
    tag = uuid.uuid4().hex[:8]
    outward = (
        f'[mqtt]\nenabled = true\ntopic_prefix = "bench-{tag}"\n'
        f'discovery_prefix = "bench-ha-{tag}"\n'
    )
    log("bench remote: doorward run --no-admin without MQTT")
    base = _run_process_rss(enroll, frame, admin=False)
    log("bench remote: the same door with MQTT, Home Assistant and commands")
    on = _run_process_rss(enroll, frame, admin=False, toml=NO_LIVENESS + outward)
    figures = {
        "baseline_peak_mb": base["peak"],
        "remote_peak_mb": on["peak"],
        "delta_peak_mb": round(on["peak"] - base["peak"], 1),
        "baseline_resident_mb": base["resident"],
        "remote_resident_mb": on["resident"],
        "ratio_peak": round(on["peak"] / base["peak"], 3),
    }
    md = "\n".join([
        "Command: `make bench` (or `.venv/bin/python -m bench --only remote`; needs Mosquitto on",
        "127.0.0.1:1883).",
        "",
        "`doorward run` without the admin page, one code typed and granted (as in \"Face check\",",
        "memory), with and without `[mqtt] enabled` (events, state, Home Assistant discovery and",
        "its state poller, the command subscription and RemoteControl), both in this run.",
        "",
        "| process | peak RSS (MB) | resident after the visit (MB) |",
        "|---|---|---|",
        f"| door without MQTT (baseline) | {base['peak']} | {base['resident']} |",
        f"| door with MQTT + Home Assistant + commands | {on['peak']} | {on['resident']} |",
        "",
        f"Difference: **{figures['delta_peak_mb']:+} MB** peak ({figures['ratio_peak']}x the"
        " baseline). The absolute figures move with the machine (page cache, load): the",
        "difference within one run is what MQTT, Home Assistant and remote commands add. The SMS",
        "command reader adds no import of its own beyond pyserial, which the GSM channel loads.",
    ])  # fmt: skip
    return figures, md
