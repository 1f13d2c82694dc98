"""The fleet playbook: syntax check, a check-mode run and a real run of two doors on localhost."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from appliance.config import load_config
from tests.provisioning.prov_helpers import REPO, need_tool

ANSIBLE = REPO / "provisioning/ansible"
pytestmark = pytest.mark.slow


def _inventory(tmp_path: Path) -> Path:
    pepper = tmp_path / "fleet-pepper"
    pepper.write_text("one-pepper-for-the-fleet\n")
    pw = tmp_path / "pw"
    pw.mkdir(exist_ok=True)
    (pw / "door_gate_2.password").write_text("s3cret\n")
    common = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_become": False,
        "doorward_install_flags": ["--no-apt", "--no-users", "--no-venv", "--no-systemd"],
        "doorward_pepper_file": str(pepper),
        "doorward_db_passwords_dir": str(pw),
        "doorward_repo": str(REPO),
    }
    hosts = {
        "door-a": {
            **common,
            "doorward_root": str(tmp_path / "a"),
            "doorward_device_id": "front",
            "doorward_door_name": "Front door",
        },
        "door-b": {
            **common,
            "doorward_root": str(tmp_path / "b"),
            "doorward_device_id": "gate-2",
            "doorward_door_name": "Garden gate",
            "doorward_pins": {"relay": 26, "buzzer": 18},
            "doorward_database_host": "db.example.lan",
        },
    }
    inv = tmp_path / "inventory.json"
    inv.write_text(json.dumps({"all": {"children": {"doors": {"hosts": hosts}}}}))
    return inv


def _play(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    exe = need_tool("ansible-playbook")
    env = {
        **os.environ,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
    }
    return subprocess.run(
        [exe, "-i", str(_inventory(tmp_path)), str(ANSIBLE / "site.yml"), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )


def test_syntax_check_with_the_example_inventory():
    exe = need_tool("ansible-playbook")
    result = subprocess.run(
        [
            exe,
            "-i",
            str(ANSIBLE / "inventory.example.yml"),
            str(ANSIBLE / "site.yml"),
            "--syntax-check",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_mode_changes_nothing(tmp_path):
    result = _play(tmp_path, "--check", "--diff")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "door-a" in result.stdout and "door-b" in result.stdout
    assert "failed=0" in result.stdout
    assert not (tmp_path / "a/etc/doorward/doorward.toml").exists()


def test_two_doors_in_one_run(tmp_path):
    result = _play(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    a = load_config(tmp_path / "a/etc/doorward/doorward.toml")
    b = load_config(tmp_path / "b/etc/doorward/doorward.toml")
    assert (a.device.id, a.device.name) == ("front", "Front door")
    assert (b.device.id, b.device.name) == ("gate-2", "Garden gate")
    assert a.hardware.pins.relay == 17 and b.hardware.pins.relay == 26
    assert b.hardware.pins.buzzer == 18
    assert a.database.url is None
    assert b.database.url == "mysql+pymysql://door_gate_2@db.example.lan:3306/doorward"
    for door in ("a", "b"):
        secrets = tmp_path / door / "etc/doorward/secrets"
        assert (secrets / "pepper").read_text() == "one-pepper-for-the-fleet\n"
        assert (secrets / "pepper").stat().st_mode & 0o777 == 0o600
        assert (tmp_path / door / "etc/systemd/system/doorward.service").exists()
        assert (tmp_path / door / "etc/systemd/system/doorward-admin.service").exists()
        assert (tmp_path / door / "etc/doorward/tls/cert.pem").exists()
    assert (tmp_path / "b/etc/doorward/secrets/db_password").read_text() == "s3cret\n"
    # a second run is harmless: it succeeds and leaves the pepper as it was
    again = _play(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "a/etc/doorward/secrets/pepper").read_text() == "one-pepper-for-the-fleet\n"


def test_clashing_pins_stop_that_door(tmp_path):
    inv = _inventory(tmp_path)
    data = json.loads(inv.read_text())
    data["all"]["children"]["doors"]["hosts"]["door-b"]["doorward_pins"] = {"relay": 4}
    inv.write_text(json.dumps(data))
    exe = need_tool("ansible-playbook")
    result = subprocess.run(
        [exe, "-i", str(inv), str(ANSIBLE / "site.yml"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={
            **os.environ,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "t"),
            "ANSIBLE_HOME": str(tmp_path / "h"),
        },
    )
    assert result.returncode != 0
    assert "share a BCM pin" in result.stdout
