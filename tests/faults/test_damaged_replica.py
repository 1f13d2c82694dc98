"""Promise 2: the door never starts silently on a damaged replica (empty, truncated, corrupt)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.store.central import DamagedReplica, open_local_replica, replica_problem

from .doubles import make_config


def _good_replica(data_dir: Path) -> Path:
    config = make_config(data_dir)
    db = open_local_replica(config)
    db.close()
    for suffix in ("-wal", "-shm"):  # checkpointed on close: the main file is the database
        Path(f"{config.replica_path}{suffix}").unlink(missing_ok=True)
    return config.replica_path


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _truncated(p: Path) -> None:
    os.truncate(p, p.stat().st_size // 2 + 100)


def _garbage_page(p: Path) -> None:
    data = bytearray(p.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    start = page * (len(data) // page // 2)  # a page in the middle of the file
    data[start : start + page] = os.urandom(page)
    p.write_bytes(bytes(data))


def _bad_header(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[:16] = b"not a database!!"
    p.write_bytes(bytes(data))


DAMAGE = {"empty": _empty, "truncated": _truncated, "garbage_page": _garbage_page,
          "bad_header": _bad_header}  # fmt: skip


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_start_up_on_a_damaged_replica_is_one_clear_error(
    tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`doorward run` on an empty, truncated, page-corrupted or header-corrupted replica exits 2
    with one line naming the file and the way out; the file is left as it was (no fresh,
    empty database in its place)."""
    data_dir = tmp_path / "var"
    path = _good_replica(data_dir)
    DAMAGE[damage](path)
    before = path.read_bytes()
    assert replica_problem(path) is not None
    cfg = tmp_path / "doorward.toml"
    cfg.write_text(f'[device]\ndata_dir = "{data_dir}"\n[hardware]\npin_factory = "mock"\n')
    code = main(["--config", str(cfg), "run", "--no-admin", "--no-terminal-keypad"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert str(path) in err[0] and "Restore" in err[0]
    assert path.read_bytes() == before


def test_a_sound_replica_passes_quick_check(tmp_path: Path) -> None:
    """The check does not cry wolf: a freshly migrated replica is sound."""
    assert replica_problem(_good_replica(tmp_path / "var")) is None


def test_with_a_central_database_a_damaged_replica_is_rebuilt_from_it(tmp_path: Path) -> None:
    """With a central database configured, the damaged file is moved aside (kept for its
    unsynced events), an empty replica is created and one sync round refills its users."""
    from appliance.security import PinHasher
    from appliance.store.central import open_central
    from appliance.store.sync import SyncWorker

    from .doubles import add_user, rows

    config = make_config(tmp_path / "var")
    central_url = f"sqlite:///{tmp_path / 'central.db'}"
    central = open_central(config, central_url, migrate=True)
    add_user(central, PinHasher("p"), 7, "1234")
    path = _good_replica(config.data_dir)
    _garbage_page(path)
    with pytest.raises(DamagedReplica, match=str(path)):
        open_local_replica(config)
    db = open_local_replica(config, central=central_url)
    try:
        assert db.rebuilt_from is not None and db.rebuilt_from.exists()
        report = SyncWorker(config, central, db).run_once()
        assert report.ok, report.error
    finally:
        db.close()
        central.close()
    assert rows(path, "SELECT number FROM users") == [(7,)]
    assert replica_problem(path) is None
