"""Owns the alerts benchmark: deny-to-delivery latency, door latency under a slow SMTP server,
and draining 1,000 queued alerts (loopback peers; `python -m bench.alerts`)."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.alerts.dispatcher import Dispatcher, build_dispatcher
from appliance.alerts.incidents import record_alert
from appliance.config import Config, parse_config
from appliance.security import PinHasher
from appliance.store.db import Database, sqlite_url
from appliance.store.models import AccessEvent, new_uuid, utcnow
from tests.support.loopback import SmtpServer, TwilioServer
from tests.support.waiting import eventually, free_port

TOKEN_ENV = "DOORWARD_BENCH_TWILIO_TOKEN"  # noqa: S105 (a variable name)


def _progress(msg: str) -> None:
    print(f"bench alerts: {msg}", file=sys.stderr, flush=True)


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _config(data_dir: Path, **alerts: Any) -> Config:
    return parse_config(
        {
            "device": {"id": "bench", "name": "Bench door", "data_dir": str(data_dir)},
            "alerts": {"probe_enabled": False, "hourly_cap": 1_000_000, **alerts},
        }
    )


def _email(port: int, timeout_s: float = 10.0) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "security": "none", "from": "d@bench.test",
            "to": ["o@bench.test"], "timeout_s": timeout_s}  # fmt: skip


def _db(data_dir: Path) -> Database:
    db = Database.from_url(sqlite_url(data_dir / "doorward.db"))
    db.migrate()
    return db


def _record_denial(db: Database, data_dir: Path, photo: bytes, kind: str = "denied_face") -> str:
    """What the door does on a denial: snapshot file, then event + alert in one transaction."""
    snap = f"snapshots/{new_uuid()}.jpg"
    (data_dir / snap).parent.mkdir(parents=True, exist_ok=True)
    (data_dir / snap).write_bytes(photo)
    with db.session() as s:
        event = AccessEvent(id=new_uuid(), device_id="bench", ts=utcnow(), kind=kind,
                            user_number=12, distance=0.71, snapshot_path=snap)  # fmt: skip
        s.add(event)
        s.flush()
        # window ~0: every sample is its own incident (grouping would fold the samples)
        return record_alert(s, event=event, kind=kind, device_id="bench", snapshot_path=snap,
                            window_s=1e-6).id  # fmt: skip


def _photo() -> bytes:
    """A camera-like 1280x720 JPEG (smooth shading plus sensor noise), ~100 KB."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:720, 0:1280]
    base = (96 + 60 * np.sin(x / 97.0) * np.cos(y / 53.0) + y / 12.0)[..., None]
    img = np.clip(base + rng.normal(0, 6, (720, 1280, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def bench_latency(samples: int = 40, notify: bool = True) -> dict[str, Any]:
    """Deny decision -> SMTP server holds the email / Twilio-shaped server holds the POST."""
    photo = _photo()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        smtp, twilio = SmtpServer().start(), TwilioServer().start()
        os.environ[TOKEN_ENV] = twilio.token
        config = _config(
            data_dir,
            email=_email(smtp.port),
            twilio={"account_sid": twilio.account_sid, "token": {"env": TOKEN_ENV},
                    "from": "+15550000001", "to": ["+15550000002"], "api_base": twilio.base},
        )  # fmt: skip
        db = _db(data_dir)
        d = build_dispatcher(config, db)
        d.start()
        to_email: list[float] = []
        to_sms: list[float] = []
        try:
            for i in range(samples):
                n_mail, n_sms = len(smtp.sink.arrived), len(twilio.posts)
                t0 = time.perf_counter()
                _record_denial(db, data_dir, photo)
                if notify:
                    d.notify()

                def both_arrived(n: int = n_mail, m: int = n_sms) -> bool:
                    return len(smtp.sink.arrived) > n and len(twilio.posts) > m

                eventually(both_arrived, 10, interval=0.001, what="the alert by email and SMS")
                to_email.append((smtp.sink.arrived[n_mail] - t0) * 1000)
                to_sms.append((twilio.posts[n_sms].at - t0) * 1000)
                if (i + 1) % 10 == 0:
                    _progress(f"latency notify={notify} {i + 1}/{samples}")
                time.sleep(0.05)
        finally:
            d.stop()
            db.close()
            smtp.stop()
            twilio.stop()
    return {
        "samples": samples,
        "email_ms_median": round(statistics.median(to_email), 1),
        "email_ms_p95": round(_pct(to_email, 0.95), 1),
        "sms_ms_median": round(statistics.median(to_sms), 1),
        "sms_ms_p95": round(_pct(to_sms, 0.95), 1),
    }


def bench_door_under_slow_smtp(samples: int = 30, delay_s: float = 5.0) -> dict[str, Any]:
    """The door's denial path (argon2id PIN check + event/alert commit) while the dispatcher
    delivers to a normal SMTP server, then to one that takes `delay_s` to answer."""
    hasher = PinHasher("bench-pepper")
    pin_hash = hasher.hash("123456")
    photo = _photo()

    def run(smtp_delay: float | None) -> list[float]:
        """smtp_delay None: no dispatcher at all (the baseline)."""
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            smtp = SmtpServer(delay_s=smtp_delay or 0.0).start()
            db = _db(data_dir)
            d = build_dispatcher(_config(data_dir, email=_email(smtp.port, 30.0)), db)
            if smtp_delay is not None:
                d.start()
            times: list[float] = []
            try:
                for _ in range(samples):
                    t0 = time.perf_counter()
                    hasher.verify(pin_hash, "654321")  # wrong PIN: the decision
                    _record_denial(db, data_dir, photo, kind="forced")
                    d.notify()
                    times.append((time.perf_counter() - t0) * 1000)
                    time.sleep(0.1)
            finally:
                smtp.stop()  # the in-flight delivery fails fast; the rest stays queued
                d.stop()
                db.close()
            return times

    baseline = run(None)
    _progress("door latency: no dispatcher done")
    normal = run(0.0)
    _progress("door latency: normal SMTP done")
    slow = run(delay_s)
    _progress(f"door latency: {delay_s:.0f} s SMTP done")
    return {
        "samples": samples,
        "smtp_delay_s": delay_s,
        "door_ms_median_no_dispatcher": round(statistics.median(baseline), 1),
        "door_ms_median_normal": round(statistics.median(normal), 1),
        "door_ms_median_slow_smtp": round(statistics.median(slow), 1),
        "door_ms_p95_normal": round(_pct(normal, 0.95), 1),
        "door_ms_p95_slow_smtp": round(_pct(slow, 0.95), 1),
        "ratio_slow_to_normal": round(statistics.median(slow) / statistics.median(normal), 3),
        "ratio_slow_to_no_dispatcher": round(
            statistics.median(slow) / statistics.median(baseline), 3
        ),
    }


def bench_drain(count: int = 1000) -> dict[str, Any]:
    """Queue `count` alerts while the SMTP server is down, bring it up, time until all are out."""
    photo = _photo()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        port = free_port()
        config = _config(data_dir, email=_email(port), mailbox={"enabled": False})
        db = _db(data_dir)
        for i in range(count):
            _record_denial(db, data_dir, photo, kind="held_open")
            if (i + 1) % 250 == 0:
                _progress(f"drain: queued {i + 1}/{count}")
        d = Dispatcher(config, db)
        d.run_once()  # every one fails once: the server is down
        smtp = SmtpServer(port=port).start()
        t0 = time.perf_counter()
        try:
            left = d.flush(timeout_s=600)
        finally:
            elapsed = time.perf_counter() - t0
            d.stop()
            db.close()
            smtp.stop()
        got = len(set(smtp.sink.message_ids()))
    return {
        "alerts": count,
        "delivered": got,
        "left": left,
        "drain_s": round(elapsed, 2),
        "per_s": round(got / elapsed, 1),
    }


def run_bench(quick: bool = False) -> dict[str, Any]:
    """All alert figures (for `make bench` and docs/BENCHMARKS.md); quick = fewer samples."""
    n = 10 if quick else 40
    _progress("deny -> delivery latency (dispatcher woken by the door)")
    latency = bench_latency(samples=n, notify=True)
    _progress("deny -> delivery latency (polling only, poll_interval_s=0.5)")
    polled = bench_latency(samples=n // 2, notify=False)
    _progress("door decision latency under a 5 s SMTP server")
    door = bench_door_under_slow_smtp(samples=10 if quick else 30)
    _progress("drain queued alerts after reconnection")
    drain = bench_drain(100 if quick else 1000)
    return {
        "photo_kb": round(len(_photo()) / 1024, 1),
        "latency": latency,
        "latency_polling": polled,
        "door": door,
        "drain": drain,
    }


def markdown(r: dict[str, Any], where: str) -> str:
    """The docs/BENCHMARKS.md body for the figures `r` of run_bench()."""
    lat, pol, door, drain = r["latency"], r["latency_polling"], r["door"], r["drain"]
    rows = [
        (f"Deny decision -> SMTP server holds the email (dispatcher woken by `notify()`), "
         f"n={lat['samples']}",
         f"median {lat['email_ms_median']} ms, p95 {lat['email_ms_p95']} ms"),
        (f"Deny decision -> SMS server holds the Twilio POST, n={lat['samples']}",
         f"median {lat['sms_ms_median']} ms, p95 {lat['sms_ms_p95']} ms"),
        (f"Same, polling only (`poll_interval_s` = 0.5, no `notify()`), n={pol['samples']}",
         f"email median {pol['email_ms_median']} ms, p95 {pol['email_ms_p95']} ms; "
         f"SMS median {pol['sms_ms_median']} ms, p95 {pol['sms_ms_p95']} ms"),
        (f"Door denial path, no dispatcher running (baseline), n={door['samples']}",
         f"median {door['door_ms_median_no_dispatcher']} ms"),
        ("Door denial path, dispatcher delivering to a normal SMTP server",
         f"median {door['door_ms_median_normal']} ms (p95 {door['door_ms_p95_normal']} ms)"),
        (f"Door denial path, SMTP server taking {door['smtp_delay_s']:.0f} s to answer",
         f"median {door['door_ms_median_slow_smtp']} ms "
         f"(p95 {door['door_ms_p95_slow_smtp']} ms)"),
        ("Ratio slow SMTP / normal SMTP", f"**{door['ratio_slow_to_normal']}**"),
        ("Ratio slow SMTP / no dispatcher", f"**{door['ratio_slow_to_no_dispatcher']}**"),
        (f"Drain {drain['alerts']:,} queued alerts after the SMTP server comes back",
         f"{drain['drain_s']} s ({drain['per_s']} alerts/s), "
         f"{drain['delivered']:,}/{drain['alerts']:,} delivered, {drain['left']} left"),
    ]  # fmt: skip
    table = "\n".join(["| What | Figure |", "|---|---|"] + [f"| {w} | {f} |" for w, f in rows])
    return f"""Command: `make bench` (or `.venv/bin/python -m bench --only alerts`;
`python -m bench.alerts` prints the same figures as JSON; `run_bench()` in `bench/alerts.py`
returns them).
It starts its own loopback peers: an aiosmtpd server and a Twilio-shaped HTTP server reached by
the official twilio client. Each part uses a fresh SQLite outbox (WAL, synchronous=FULL) in a
temp dir and a {r["photo_kb"]} KB camera-like 1280x720 JPEG snapshot per alert. {where}

{table}

How each figure is measured:
- "Deny decision" is the moment the door starts writing the denied event (snapshot file, then
  event + outbox row in one transaction); the clock stops when the aiosmtpd handler has the
  whole message (end of DATA) or the HTTP server has the POST.
- "Door denial path" is what the door thread does for a denial: an argon2id PIN verification
  (the real `PinHasher`) plus the event + outbox transaction with its snapshot file. The
  dispatcher runs in its own thread and never holds a transaction while talking to the network,
  so a slow SMTP server leaves the door at about 1.0x; the normal case is the busier one
  because deliveries really happen next to the door (CPU and the SQLite writer lock).
- Drain: the alerts are queued while the server is down, each fails once, then the server
  starts and `Dispatcher.flush()` runs until nothing is pending. One SMTP connection is kept
  across the backlog (NOOP-checked); per alert the cost is building the MIME message with the
  photo, the SMTP exchange with a server that shares the process (and the GIL), and one
  fsync'd SQLite commit per delivery.
- Polling alone adds up to `poll_interval_s`: the door service calls `dispatcher.notify()` after
  committing an alert (appliance/cli/main.py wires it), which never blocks.
"""


def alerts_section(ctx: Any) -> tuple[dict[str, Any], str]:
    """The `python -m bench` section."""
    quick = bool(getattr(ctx, "quick", False))
    r = run_bench(quick=quick)
    where = (
        f"Run by `make bench`, pinned to CPU {getattr(ctx, 'cpu', '?')} (one core for the "
        "door, the dispatcher and both servers); the ratios are taken within the same run."
    )
    flat = {f"alerts_{k}_{kk}": vv for k, v in r.items() if isinstance(v, dict)
            for kk, vv in v.items()}  # fmt: skip
    return flat, markdown(r, where)


if __name__ == "__main__":
    print(json.dumps(run_bench(quick="--quick" in sys.argv), indent=2))
