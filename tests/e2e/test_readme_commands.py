"""Every command in the README's ```sh blocks works as written: `make` targets exist (a dry run),
and the `doorward` commands run for real, in order, from a folder laid out like the repository
(`.venv`, `tests/` and `docs/` linked), with none of the door's environment variables set."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.faces, pytest.mark.slow]


def readme_commands() -> list[str]:
    """The commands of every ```sh block, backslash continuations joined, comments dropped."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def test_the_readme_has_the_walkthrough_commands() -> None:
    cmds = readme_commands()
    assert {"make run", "make test", "make bench", "make check"} <= set(cmds), cmds
    assert any(c.startswith(".venv/bin/doorward enroll") for c in cmds)
    assert any(c.startswith(".venv/bin/doorward simulate") for c in cmds)
    assert any(c.startswith(".venv/bin/doorward run") for c in cmds)
    unknown = [c for c in cmds if not c.startswith(("make ", ".venv/bin/doorward "))]
    assert unknown == [], "a README command this test does not know how to run"


def test_every_make_target_in_the_readme_exists() -> None:
    for cmd in readme_commands():
        if cmd.startswith("make "):
            r = subprocess.run(["make", "-n", *shlex.split(cmd)[1:]], cwd=REPO,
                               capture_output=True, text=True)  # fmt: skip
            assert r.returncode == 0, (cmd, r.stderr)


def _scratch(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    work = tmp_path / "clone"
    work.mkdir()
    (work / ".venv").symlink_to(REPO / ".venv")
    (work / "tests").symlink_to(REPO / "tests")
    (work / "docs").symlink_to(REPO / "docs")  # docs/examples (the holiday calendar)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARD_")}
    return work, env


def _run_door(cmd: list[str], work: Path, env: dict[str, str]) -> str:
    """`doorward run` as written: it must come up (door running, admin page served) and stop
    cleanly on SIGTERM, as systemd and Ctrl-C stop it."""
    log = work / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)  # fmt: skip
        try:
            up = lambda: "admin page on http://" in log.read_text() or proc.poll() is not None  # noqa: E731
            eventually(up, timeout=120, what="doorward run to start")
            assert proc.poll() is None, log.read_text()[-3000:]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    return log.read_text()


def test_every_doorward_command_in_the_readme_runs_as_written(tmp_path: Path, need) -> None:
    work, env = _scratch(tmp_path)
    # `run` serves the admin page on 127.0.0.1:8080, as the README says: it must be free
    port_free = _port_is_free(8080)
    need(port_free, "port 8080 is taken (the README's `doorward run` serves the admin page there)")
    ran = []
    for cmd in readme_commands():
        if not cmd.startswith(".venv/bin/doorward "):
            continue
        argv = shlex.split(cmd)
        if argv[1] == "run":
            out = _run_door(argv, work, env)
            assert "door 'door-1' running" in out, out[-2000:]
        else:
            r = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True,
                               timeout=300)  # fmt: skip
            assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-2000:])
            if argv[1] == "simulate":
                assert '"granted": true' in r.stdout.splitlines()[-1], r.stdout
            if argv[1] == "verify":
                assert '"decision": "granted"' in r.stdout, r.stdout
        ran.append(argv[1])
    assert ran[:3] == ["enroll", "simulate", "verify"] and "run" in ran, ran
    assert (work / "var" / "initial-admin-password").is_file()  # where the README says it is


def _port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_python_module_form_is_the_same_command() -> None:
    r = subprocess.run([sys.executable, "-m", "appliance", "--help"], capture_output=True,
                       text=True, cwd=REPO)  # fmt: skip
    assert r.returncode == 0 and "enroll" in r.stdout and "simulate" in r.stdout
