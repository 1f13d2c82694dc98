"""The global options of `doorward` mean one thing wherever they are written."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.cli import main
from appliance.cli.main import build_parser


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "c.toml", "run"],
        ["run", "--config", "c.toml"],
        ["--config", "other.toml", "run", "--config", "c.toml"],
    ],
)
def test_config_is_taken_before_or_after_the_command(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).config == "c.toml"


def test_an_option_before_the_command_is_kept_when_none_follows_it() -> None:
    args = build_parser().parse_args(["--db", "sqlite:///c.db", "--log-level", "DEBUG", "sync"])
    assert (args.db_url, args.log_level, args.replica_path) == ("sqlite:///c.db", "DEBUG", None)


@pytest.mark.parametrize("where", ["before", "after"])
def test_sync_writes_into_the_replica_named_by_replica(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """`doorward --db URL --replica PATH sync --once` once ignored --replica and wrote into
    var/doorward.db; the named file is the one synced, in either position."""
    monkeypatch.chdir(tmp_path)
    for var in ("DOORWARD_DATABASE_URL", "DOORWARD_REPLICA_PATH", "DOORWARD_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    central = f"sqlite:///{tmp_path / 'central.db'}"
    replica = tmp_path / "door" / "replica.db"
    replica.parent.mkdir()
    opts = ["--db", central, "--replica", str(replica)]
    assert main(["--db", central, "migrate", "--central-only"]) == 0, capsys.readouterr().err
    argv = [*opts, "sync", "--once"] if where == "before" else ["sync", "--once", *opts]
    assert main(argv) == 0, capsys.readouterr().err
    assert replica.is_file() and replica.stat().st_size > 0
    assert not (tmp_path / "var" / "doorward.db").exists()


def test_first_run_hints_say_what_a_newcomer_must_do_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On simulated hardware with no users and an empty replay camera, `doorward run` says
    how to enroll and how to show the camera a face (a right code otherwise ends in an
    intruder alert); with both done it says nothing. (In a fresh folder: the default data_dir
    is ./var, and a checkout where `make run` ran has an admin password hint there.)"""
    monkeypatch.chdir(tmp_path)
    from appliance.cli.main import first_run_hints
    from appliance.config import Config

    empty = Config()
    hints = first_run_hints(empty, 0, "http://127.0.0.1:8080/")
    assert len(hints) == 2
    assert "doorward enroll" in hints[0] and "http://127.0.0.1:8080/users/new" in hints[0]
    assert "no face seen" in hints[1] and "doorward run --camera" in hints[1]
    assert "camera PATH" in hints[1]
    ready = Config.convert({"camera": {"sources": ["me.jpg"]}})
    assert first_run_hints(ready, 1, None) == []


def test_first_run_hint_says_where_the_one_time_admin_password_is(tmp_path: Path) -> None:
    from appliance.cli.main import first_run_hints
    from appliance.config import Config

    config = Config.convert({"device": {"data_dir": str(tmp_path)}})
    assert not any("one-time" in h for h in first_run_hints(config, 1, "http://h:1/"))
    (tmp_path / "initial-admin-password").write_text("x")
    (hint,) = [h for h in first_run_hints(config, 1, "http://h:1/") if "one-time" in h]
    assert "as 'admin'" in hint and str(tmp_path / "initial-admin-password") in hint
    assert "doorward admin-user passwd admin" in hint


def test_run_camera_needs_the_replay_camera(tmp_path: Path, capsys) -> None:
    """`doorward run --camera` with a Pi camera configured says what to change, and starts
    nothing."""
    photo = tmp_path / "me.jpg"
    photo.write_bytes(b"x")
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[device]\ndata_dir = "{tmp_path}"\n[hardware]\npin_factory = "mock"\n'
        '[camera]\nkind = "picamera2"\n'
    )
    assert main(["run", "--config", str(cfg), "--camera", str(photo)]) != 0
    err = capsys.readouterr().err
    assert "--camera" in err and "'picamera2'" in err and 'kind = "replay"' in err
