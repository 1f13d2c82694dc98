"""Promise 6: a lost or different pepper is refused with a message saying what to restore."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.config import ConfigError, load_config
from appliance.security import pepper_fingerprint, pin_hasher
from appliance.store.central import open_local_replica

from .doubles import add_user, make_config


def test_a_missing_pepper_file_is_not_replaced_while_pin_hashes_exist(tmp_path: Path) -> None:
    """With PIN hashes in the database, a deleted pepper file is an error naming the file and
    the fingerprint to restore, and no new pepper file appears."""
    config = make_config(tmp_path / "var")
    db = open_local_replica(config)
    try:
        hasher = pin_hasher(config, db)  # creates the pepper, records its fingerprint
        add_user(db, hasher, 1, "1234")
        pepper = (config.data_dir / "pepper").read_text()
        (config.data_dir / "pepper").unlink()
        with pytest.raises(ConfigError) as err:
            pin_hasher(config, db)
        assert str(config.data_dir / "pepper") in str(err.value)
        assert pepper_fingerprint(pepper) in str(err.value) and "Restore" in str(err.value)
        assert not (config.data_dir / "pepper").exists()
    finally:
        db.close()


def test_a_different_pepper_is_refused_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The door refuses to start (exit 2) with a pepper whose fingerprint differs from the one
    stored with the PIN hashes; the message names both fingerprints."""
    data_dir = tmp_path / "var"
    config = make_config(data_dir)
    db = open_local_replica(config)
    monkeypatch.setenv("DOORWARD_PEPPER", "the-right-one")
    add_user(db, pin_hasher(config, db), 1, "1234")
    db.close()
    monkeypatch.setenv("DOORWARD_PEPPER", "another-one")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[device]\ndata_dir = "{data_dir}"\n[hardware]\npin_factory = "mock"\n')
    assert main(["--config", str(cfg), "run", "--no-admin", "--no-terminal-keypad"]) == 2
    err = capsys.readouterr().err
    assert pepper_fingerprint("the-right-one") in err and pepper_fingerprint("another-one") in err
    assert "the-right-one" not in err and "another-one" not in err  # secrets never printed


def test_a_relative_data_dir_is_absolute_once_the_config_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """data_dir = "var" in /etc/x/doorward.toml means /etc/x/var, wherever doorward starts."""
    (tmp_path / "conf").mkdir()
    cfg = tmp_path / "conf" / "doorward.toml"
    cfg.write_text('[device]\ndata_dir = "var"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(cfg)
    assert config.data_dir == tmp_path / "conf" / "var"
    assert config.data_dir.is_absolute() and os.getcwd() == str(elsewhere)
