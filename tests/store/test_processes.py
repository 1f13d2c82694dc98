"""Real `doorward` processes: migrate, concurrent pushers, and a sync killed mid-push."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from appliance.store.models import AccessEvent
from tests.store.sync_helpers import queue_events
from tests.support.waiting import eventually

pytestmark = pytest.mark.mysql
REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, device_id: str, batch_size: int = 200) -> Path:
    path = tmp_path / f"{device_id}.toml"
    path.write_text(
        f'[device]\nid = "{device_id}"\ndata_dir = "{tmp_path / device_id}"\n'
        f'[hardware]\npin_factory = "mock"\n'
        f"[sync]\ninterval_s = 0.2\nbatch_size = {batch_size}\n",
        encoding="utf-8",
    )
    return path


def doorward(cfg: Path, url: str | None, *args: str) -> list[str]:
    cmd = [sys.executable, "-m", "appliance", "--config", str(cfg)]
    if url:
        cmd += ["--db", url]
    return cmd + list(args)


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARD_")}
    e["PYTHONPATH"] = str(REPO)
    return e


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env(), cwd=REPO)


def central_ids(url: str, device: str | None = None) -> list[str]:
    from appliance.store.db import Database

    db = Database.from_url(url)
    try:
        with db.session() as s:
            q = select(AccessEvent.id)
            if device:
                q = q.where(AccessEvent.device_id == device)
            return list(s.scalars(q))
    finally:
        db.close()


def test_cli_migrate_central_and_replica(tmp_path, central_url) -> None:
    cfg = write_config(tmp_path, "door-m")
    replica = tmp_path / "elsewhere" / "replica.db"
    res = run(doorward(cfg, central_url, "migrate", "--replica", str(replica)))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    heads = out["central"]["heads"]
    assert "0005_access_policies" in heads and "0006_alert_reached" in heads  # branch heads
    assert out["replica"]["heads"] == out["central"]["heads"]
    assert replica.is_file()
    assert "migrating central database" in res.stderr and "***" not in out["central"]["url"]
    # an unreachable server is a clear error, not a traceback
    bad = run(doorward(cfg, "mysql+pymysql://root@127.0.0.1:1/x", "migrate", "--central-only"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "doorward: error: central database" in bad.stderr and "Connection refused" in bad.stderr


def _replica(tmp_path: Path, device: str):
    from appliance.config import load_config
    from appliance.store.central import open_local_replica

    return open_local_replica(load_config(write_config(tmp_path, device)))


def test_two_appliance_processes_push_at_the_same_time(tmp_path, central_url) -> None:
    from appliance.config import load_config
    from appliance.store.central import open_central

    cfg_a, cfg_b = write_config(tmp_path, "door-a"), write_config(tmp_path, "door-b")
    open_central(load_config(cfg_a), central_url, migrate=True).close()
    ids: dict[str, list[str]] = {}
    for name in ("door-a", "door-b"):
        rep = _replica(tmp_path, name)
        ids[name] = queue_events(rep, name, 3000)
        rep.close()
    # door-a's service is started twice by mistake: three pushers, two on one replica
    cmds = [
        doorward(cfg_a, central_url, "sync", "--once"),
        doorward(cfg_b, central_url, "sync", "--once"),
        doorward(cfg_a, central_url, "sync", "--once"),
    ]
    procs = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
        for c in cmds
    ]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    reports = [json.loads(out) for out, _ in outs]
    assert reports[1]["pushed"] == 3000
    # the two door-a pushers split the work; where both sent the same event in the same
    # instant each may count it, but the central table below holds every event exactly once
    assert reports[0]["pushed"] + reports[2]["pushed"] >= 3000
    assert all(r["ok"] and r["pending"] == 0 for r in reports)
    for name in ("door-a", "door-b"):
        got = central_ids(central_url, name)
        assert len(got) == 3000 and set(got) == set(ids[name])
        rep = _replica(tmp_path, name)
        with rep.session() as s:
            assert s.scalar(select(func.count()).where(AccessEvent.synced_at.is_(None))) == 0
        rep.close()


def test_sync_killed_mid_push_then_restarted_lands_each_event_once(tmp_path, central_url) -> None:
    from appliance.config import load_config
    from appliance.store.central import open_central

    cfg = write_config(tmp_path, "door-k", batch_size=100)
    open_central(load_config(cfg), central_url, migrate=True).close()
    rep = _replica(tmp_path, "door-k")
    ids = queue_events(rep, "door-k", 10_000)
    rep.close()
    log = tmp_path / "sync.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            doorward(cfg, central_url, "sync"), stdout=subprocess.DEVNULL, stderr=err, env=env()
        )
    try:

        def pushing() -> bool:
            assert proc.poll() is None, log.read_text()
            return len(central_ids(central_url)) >= 1000

        eventually(pushing, 60, interval=0.02, what="the push under way")
        proc.send_signal(signal.SIGKILL)  # a power cut, in the middle of pushing
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    partial = len(central_ids(central_url))
    assert 0 < partial < 10_000
    res = run(doorward(cfg, central_url, "sync", "--once"))
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["pending"] == 0
    assert report["pushed"] + report["duplicates"] >= 10_000 - partial
    got = central_ids(central_url)
    assert len(got) == 10_000 and set(got) == set(ids)
