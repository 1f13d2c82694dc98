"""The embedded default keeps its data private: nothing under the data dir is readable by
group or others, even when the shell's umask is the usual 022."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _bad_modes(root: Path) -> list[str]:
    bad = []
    for p in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(p.lstat().st_mode)
        if mode & 0o077:
            bad.append(f"{oct(mode)} {p.relative_to(root.parent)}")
    return bad


@pytest.mark.faces
def test_embedded_default_files_are_private(tmp_path: Path, faces_dir: Path) -> None:
    people = faces_dir / "people"
    doorward = [sys.executable, "-m", "appliance"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run(*args: str) -> None:
        r = subprocess.run([*doorward, *args], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300, preexec_fn=lambda: os.umask(0o022))  # fmt: skip
        assert r.returncode == 0, r.stderr[-1500:]

    run("enroll", "--number", "1", "--name", "Ada", "--pin", "2468",
        "--photo", str(people / "rose_leslie/rose1.jpg"))  # fmt: skip
    run("simulate", "--keys", "1*2468#", "--camera", str(people / "biden/biden1.jpg"))
    var = tmp_path / "var"
    assert (var / "doorward.db").is_file() and any((var / "snapshots").rglob("*.jpg"))
    assert _bad_modes(var) == []


def test_private_dir_tightens_an_existing_world_readable_dir(tmp_path: Path) -> None:
    from appliance.security import private_dir

    d = tmp_path / "var"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    private_dir(d)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE(private_dir(tmp_path / "new" / "deep").stat().st_mode) == 0o700


def test_mailbox_files_are_owner_only(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from appliance.alerts.channels.mailbox import MailboxChannel
    from appliance.alerts.message import AlertMessage

    old = os.umask(0o022)
    try:
        box = tmp_path / "mailbox"
        ch = MailboxChannel(box)
        msg = AlertMessage(id="a-1", kind="denied_face", time=datetime.now(UTC),
                           device_id="door-1", door="Front door",
                           photo_jpeg=b"\xff\xd8\xff")  # fmt: skip
        ch.send(msg)
    finally:
        os.umask(old)
    assert _bad_modes(box) == []
