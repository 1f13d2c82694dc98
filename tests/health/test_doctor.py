"""`doorward doctor` on the embedded default and on broken configs, against real loopback parts."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime

import numpy as np
import pytest

from appliance.cli import health as commands
from appliance.health.doctor import (
    CHECK_NAMES,
    check_clock,
    exit_code,
    render_json,
    render_table,
    run_doctor,
)
from appliance.store.db import Database, sqlite_url

SYNCED = {"NTPSynchronized": "yes", "NTP": "yes"}


def by_name(results):
    return {r.name: r for r in results}


def migrate_replica(config) -> None:
    db = Database.from_url(sqlite_url(config.replica_path))
    try:
        db.migrate()
    finally:
        db.close()


def test_embedded_default_after_migrate_passes(make_config, monkeypatch):
    monkeypatch.delenv("DOORWARD_DATABASE_URL", raising=False)
    monkeypatch.setenv("DOORWARD_PEPPER", "test-pepper")
    config = make_config()
    before = by_name(run_doctor(config, clock_status=lambda: SYNCED))
    assert before["replica"].status == "fail"
    assert "doorward migrate" in before["replica"].detail
    assert not config.replica_path.exists()  # the doctor looks, it does not create

    migrate_replica(config)
    results = run_doctor(config, clock_status=lambda: SYNCED)
    r = by_name(results)
    assert [x.name for x in results] == list(CHECK_NAMES)
    assert r["config"].status == "ok"
    assert r["pins"].status == "ok"
    assert r["replica"].status == "ok" and "quick_check ok" in r["replica"].detail
    assert r["camera"].status == "warn"  # replay camera without sources
    for name in ("modem", "smtp", "twilio", "database"):
        assert r[name].status == "skip"
    assert r["disk"].status == "ok"
    assert r["clock"].status == "ok"
    assert exit_code(results) == 0
    table = render_table(results)
    assert table.splitlines()[0].split() == ["CHECK", "STATUS", "MS", "DETAIL"]
    assert "0 fail" in table


def test_pepper_sources(make_config, tmp_path, monkeypatch):
    monkeypatch.delenv("DOORWARD_PEPPER", raising=False)
    config = make_config()
    r = by_name(run_doctor(config, only=["config"]))
    assert r["config"].status == "warn" and "will be created" in r["config"].detail
    local = config.data_dir / "pepper"
    local.parent.mkdir(parents=True)
    local.write_text("generated")
    local.chmod(0o644)
    r = by_name(run_doctor(config, only=["config"]))
    assert r["config"].status == "fail" and "chmod 600" in r["config"].detail
    local.chmod(0o600)
    assert by_name(run_doctor(config, only=["config"]))["config"].status == "ok"

    config = make_config(security={"pepper": {"file": str(tmp_path / "secrets/pepper")}})
    r = by_name(run_doctor(config, only=["config"]))
    assert r["config"].status == "fail" and "secrets/pepper" in r["config"].detail
    monkeypatch.setenv("DOORWARD_TEST_PEPPER", "x")
    config = make_config(security={"pepper": {"env": "DOORWARD_TEST_PEPPER"}})
    r = by_name(run_doctor(config, only=["config"]))
    assert r["config"].status == "ok" and "secrets_resolved=1" in r["config"].detail


def test_reserved_and_uart_pins_fail(make_config, tmp_path):
    config = make_config(
        hardware={"pins": {"buzzer": 2, "tamper": 14}},
        alerts={"gsm": {"port": "/dev/serial0", "to": ["+15550001"]}},
    )
    r = by_name(run_doctor(config, only=["pins"]))
    assert r["pins"].status == "fail"
    assert "buzzer: BCM 2 is reserved for I2C SDA" in r["pins"].detail
    assert "tamper: BCM 14 is the UART TXD" in r["pins"].detail


def test_replay_camera_reads_a_real_frame_and_missing_sources_fail(make_config, tmp_path):
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[:, :, 1] = 200
    assert cv2.imwrite(str(folder / "0001.png"), frame)
    r = by_name(run_doctor(make_config(camera={"sources": [str(folder)]}), only=["camera"]))
    assert r["camera"].status == "ok" and "160x120 frame" in r["camera"].detail

    bad = make_config(camera={"sources": [str(tmp_path / "nope.mp4")]})
    r = by_name(run_doctor(bad, only=["camera"]))
    assert r["camera"].status == "fail" and "nope.mp4 does not exist" in r["camera"].detail

    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    r = by_name(run_doctor(make_config(camera={"sources": [str(junk)]}), only=["camera"]))
    assert r["camera"].status == "fail" and "not a readable image" in r["camera"].detail


def test_missing_webcam_and_missing_picamera_fail(make_config):
    r = by_name(run_doctor(make_config(camera={"kind": "opencv", "device": 63}), only=["camera"]))
    assert r["camera"].status == "fail" and "63" in r["camera"].detail, r["camera"].detail
    r = by_name(run_doctor(make_config(camera={"kind": "picamera2"}), only=["camera"]))
    assert r["camera"].status == "fail"
    # one true thing: it never started, so it is not "opened but gave no frame"
    assert r["camera"].detail == (
        "picamera2 camera cannot start: camera.kind = 'picamera2' needs the python3-picamera2 "
        "package (Pi only)"
    ), r["camera"].detail


def test_modem_answers_at_over_a_pty(make_config, pty_modem):
    modem = pty_modem()
    config = make_config(alerts={"gsm": {"port": modem.port, "to": ["+15550001"]}})
    r = by_name(run_doctor(config, only=["modem"]))
    assert r["modem"].status == "ok", r["modem"].detail
    assert "rssi=18" in r["modem"].detail
    assert modem.commands[:2] == ["AT", "AT+CSQ"]


def test_modem_without_signal_warns_and_silent_or_missing_modem_fails(
    make_config, pty_modem, tmp_path
):
    no_signal = pty_modem(csq="99,99")
    config = make_config(alerts={"gsm": {"port": no_signal.port, "to": ["+1555"]}})
    assert by_name(run_doctor(config, only=["modem"]))["modem"].status == "warn"

    silent = pty_modem(silent=True)
    config = (
        make_config(alerts={"gsm": {"port": silent.port, "to": ["+1555"]}}, health={})
        if False
        else make_config(alerts={"gsm": {"port": silent.port, "to": ["+1555"]}})
    )
    r = by_name(run_doctor(config, only=["modem"]))
    assert r["modem"].status == "fail" and "did not answer AT" in r["modem"].detail

    gone = make_config(alerts={"gsm": {"port": str(tmp_path / "ttyUSB9"), "to": ["+1555"]}})
    r = by_name(run_doctor(gone, only=["modem"]))
    assert r["modem"].status == "fail" and "cannot open" in r["modem"].detail


def test_smtp_and_twilio_reachability(make_config, smtp_server, tcp_listener, closed_port):
    host, port = smtp_server
    th, tp = tcp_listener
    email = {
        "host": host,
        "port": port,
        "security": "none",
        "from": "door@x.org",
        "to": ["a@x.org"],
    }
    twilio = {
        "account_sid": "AC123",
        "from": "+15550000",
        "to": ["+15550001"],
        "api_base": f"http://{th}:{tp}",
        "token": {"env": "DOORWARD_TEST_TWILIO_TOKEN"},
    }
    r = by_name(
        run_doctor(make_config(alerts={"email": email, "twilio": twilio}), only=["smtp", "twilio"])
    )
    assert r["smtp"].status == "ok" and "says 220" in r["smtp"].detail
    assert r["twilio"].status == "ok" and f"{th}:{tp} reachable" in r["twilio"].detail

    email["port"] = closed_port
    twilio["api_base"] = f"http://127.0.0.1:{closed_port}"
    results = run_doctor(
        make_config(alerts={"email": email, "twilio": twilio}), only=["smtp", "twilio"]
    )
    r = by_name(results)
    assert r["smtp"].status == "fail" and f"127.0.0.1:{closed_port}" in r["smtp"].detail
    assert r["twilio"].status == "fail"
    assert exit_code(results) == 1


def test_a_non_smtp_server_is_reported(make_config, tcp_listener):
    host, port = tcp_listener  # accepts and closes: no 220 banner
    email = {
        "host": host,
        "port": port,
        "security": "starttls",
        "from": "d@x.org",
        "to": ["a@x.org"],
    }
    r = by_name(run_doctor(make_config(alerts={"email": email}), only=["smtp"]))
    assert r["smtp"].status == "fail" and "not an SMTP server" in r["smtp"].detail


def test_replica_not_at_head_fails(make_config):
    config = make_config()
    db = Database.from_url(sqlite_url(config.replica_path))
    with db.engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(text("CREATE TABLE unrelated (x INTEGER)"))
    db.close()
    r = by_name(run_doctor(config, only=["replica"]))
    assert r["replica"].status == "fail" and "no schema yet" in r["replica"].detail


@pytest.mark.mysql
def test_central_mysql_at_head_and_behind_and_wrong_password(make_config, mysql_db, monkeypatch):
    url = f"mysql+pymysql://root@127.0.0.1:3306/{mysql_db}"
    config = make_config(database={"url": url})
    r = by_name(run_doctor(config, only=["database"]))
    assert r["database"].status == "fail" and "no schema yet" in r["database"].detail

    db = Database.from_url(url)
    db.migrate()
    db.close()
    r = by_name(run_doctor(config, only=["database"]))
    assert r["database"].status == "ok", r["database"].detail
    assert "schema at head" in r["database"].detail

    monkeypatch.setenv("DOORWARD_TEST_DB_PASSWORD", "wrong-password")
    bad = make_config(
        database={
            "url": url.replace("root@", "nobody_here@"),
            "password": {"env": "DOORWARD_TEST_DB_PASSWORD"},
        }
    )
    r = by_name(run_doctor(bad, only=["database"]))
    assert r["database"].status == "fail" and "cannot connect" in r["database"].detail
    assert "wrong-password" not in r["database"].detail


def test_db_url_argument_overrides_config(make_config, closed_port):
    r = by_name(
        run_doctor(
            make_config(), db_url=f"mysql+pymysql://u@127.0.0.1:{closed_port}/x", only=["database"]
        )
    )
    assert r["database"].status == "fail" and "cannot connect" in r["database"].detail


def test_clock_checks():
    now = datetime(2026, 5, 1, tzinfo=UTC)
    assert "synchronized" in check_clock(None, now=now, status=lambda: SYNCED)
    from appliance.health.doctor import CheckFailed, CheckWarning

    with pytest.raises(CheckFailed, match="not set"):
        check_clock(None, now=datetime(1970, 1, 1, tzinfo=UTC), status=lambda: SYNCED)
    with pytest.raises(CheckFailed, match="set-ntp"):
        check_clock(None, now=now, status=lambda: {"NTPSynchronized": "no", "NTP": "no"})
    with pytest.raises(CheckWarning, match="not synchronized"):
        check_clock(None, now=now, status=lambda: {"NTPSynchronized": "no", "NTP": "yes"})


def test_disk_minimum_from_health_settings(make_config, monkeypatch):
    from appliance.health import doctor
    from appliance.health.settings import HealthConfig

    huge = HealthConfig(disk_min_free_mb=10**12, disk_warn_free_mb=10**12)
    monkeypatch.setattr(doctor, "health_settings", lambda _c: huge)
    r = by_name(run_doctor(make_config(), only=["disk"]))
    assert r["disk"].status == "fail" and "minimum" in r["disk"].detail


def _cli(config, *argv):
    parser = argparse.ArgumentParser(prog="doorward")
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    args.config = config
    args.db_url = None
    return args.func(args)


def test_cli_json_and_exit_codes(make_config, capsys, monkeypatch, closed_port):
    monkeypatch.setenv("DOORWARD_PEPPER", "p")
    config = make_config()
    migrate_replica(config)
    assert _cli(config, "doctor", "--json", "--only", "config,pins,replica") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True
    assert [c["name"] for c in out["checks"]] == ["config", "pins", "replica"]
    assert {"name", "status", "detail", "ms"} <= set(out["checks"][0])

    broken = make_config(
        alerts={
            "email": {
                "host": "127.0.0.1",
                "port": closed_port,
                "from": "d@x.org",
                "to": ["a@x.org"],
            }
        }
    )
    assert _cli(broken, "doctor", "--only", "smtp") == 1
    assert "FAIL" in capsys.readouterr().out
    assert _cli(broken, "doctor", "--only", "bogus") == 2
    assert "unknown check" in capsys.readouterr().err


def test_render_json_is_valid(make_config):
    results = run_doctor(make_config(), only=["pins"])
    assert json.loads(render_json(results))["checks"][0]["status"] == "ok"


def test_cli_prune_snapshots(make_config, capsys):
    config = make_config()
    snap = config.snapshot_dir / "2026/01/01/a.jpg"
    snap.parent.mkdir(parents=True)
    snap.write_bytes(b"x" * 10)
    old = 1_000_000_000
    os.utime(snap, (old, old))
    assert _cli(config, "prune-snapshots") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["deleted_age"] == 1 and not snap.exists()


def test_secrets_in_a_database_url_are_masked_everywhere_it_is_shown(make_config, closed_port):
    from appliance.store.db import safe_url

    url = (
        f"mysql+pymysql://door:urlsecret1@127.0.0.1:{closed_port}/x"
        "?password=qsecret2&ssl_key=/etc/k.pem&charset=utf8mb4&auth_token=tsecret3"
    )
    shown = safe_url(url)
    assert "urlsecret1" not in shown and "qsecret2" not in shown and "tsecret3" not in shown
    assert "charset=utf8mb4" in shown and "door:***@" in shown and "password=%2A%2A%2A" in shown
    assert "qsecret" not in safe_url("mysql+pymysql://u@h/x?PASSWORD=qsecret")
    assert "zz" not in safe_url("not a url zz://:")  # unparseable: not echoed at all

    r = by_name(run_doctor(make_config(), db_url=url, only=["database"]))
    assert r["database"].status == "fail"
    for secret in ("urlsecret1", "qsecret2", "tsecret3"):
        assert secret not in r["database"].detail


def test_stack_loads_and_runs_the_door_stack_from_the_venv(make_config):
    r = by_name(run_doctor(make_config(), only=["stack"]))["stack"]
    assert r.status == "ok", r.detail
    for part in ("numpy", "simplejpeg", "cv2", "dlib"):
        assert part in r.detail


def test_stack_fails_loudly_on_a_system_copy_and_a_missing_picamera2(make_config, monkeypatch):
    """A numpy-built package from apt shadowing the venv's, or no picamera2 where the config
    wants the Pi camera: the install stops here, naming the package and the way out."""
    import sys

    from appliance.health import doctor

    assert sys.prefix != sys.base_prefix  # the tests run in the project's venv, as a door does
    monkeypatch.setattr(doctor, "_origin", lambda m: "/usr/lib/python3/dist-packages")
    r = by_name(run_doctor(make_config(), only=["stack"]))["stack"]
    assert r.status == "fail" and "numpy, simplejpeg loaded from outside the venv" in r.detail
    assert "--ignore-installed" in r.detail
    monkeypatch.undo()
    config = make_config(camera={"kind": "picamera2"})
    r = by_name(run_doctor(config, only=["stack"]))["stack"]
    assert r.status == "fail" and "picamera2" in r.detail and "python3-picamera2" in r.detail


def test_stack_runs_the_encoder_and_names_a_damaged_model_file(make_config, monkeypatch, tmp_path):
    """The stack check parses the encoder's model file and runs one pass (numpy's BLAS on
    this CPU): a truncated file fails here, by name, not at the first visitor."""
    import shutil

    from appliance.vision.models import ENCODER, SHAPE_5, models_dir

    real = models_dir()
    shutil.copy(real / SHAPE_5, tmp_path / SHAPE_5)
    (tmp_path / ENCODER).write_bytes((real / ENCODER).read_bytes()[:100_000])
    monkeypatch.setattr("appliance.vision.models.models_dir", lambda: tmp_path)
    r = by_name(run_doctor(make_config(), only=["stack"]))["stack"]
    assert r.status == "fail" and ENCODER in r.detail and "ends early" in r.detail
