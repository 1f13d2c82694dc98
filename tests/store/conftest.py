"""Fixtures for sync tests: a private database on the real MariaDB, a cuttable relay, doors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mariadb_scratch import MYSQL_HOST, MYSQL_PORT, admin_connection, scratch_database, url_of

PEPPER = "test-pepper-not-secret"


@pytest.fixture(scope="session")
def mysql_up() -> None:
    admin_connection().close()


@pytest.fixture
def central_db_name(mysql_up: None) -> Iterator[str]:
    """A database of its own on the real server (parallel runs never collide), dropped after."""
    with scratch_database() as name:
        yield name


@pytest.fixture
def central_url(central_db_name: str) -> str:
    return url_of(central_db_name)


@pytest.fixture
def relay(mysql_up: None) -> Iterator:
    """A loopback relay to MariaDB that the test can cut and restore (a network outage)."""
    from tests.support.netproxy import TcpRelay

    r = TcpRelay(MYSQL_HOST, MYSQL_PORT).start()
    yield r
    r.cut()


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., object]:
    from appliance.config import Config

    def make(device_id: str = "door-1", **sync: object):
        data = tmp_path / device_id
        return Config.convert(
            {
                "device": {"id": device_id, "name": f"Door {device_id}", "data_dir": str(data)},
                "hardware": {"pin_factory": "mock"},
                "database": {"connect_timeout_s": 2, "io_timeout_s": 10},
                "sync": {"interval_s": 0.2, "batch_size": 500, **sync},
            }
        )

    return make


@pytest.fixture
def hasher():
    from appliance.security import PinHasher

    return PinHasher(PEPPER)


@dataclass
class Site:
    """One central database and one door with its replica and sync worker."""

    config: object
    central: object
    replica: object
    worker: object

    def close(self) -> None:
        self.worker.stop()
        self.central.close()
        self.replica.close()


@pytest.fixture
def site(make_config, central_url: str) -> Iterator[Site]:
    from appliance.store.central import open_central, open_local_replica
    from appliance.store.sync import SyncWorker

    config = make_config()
    central = open_central(config, central_url, migrate=True)
    replica = open_local_replica(config)
    s = Site(config, central, replica, SyncWorker(config, central, replica))
    yield s
    s.close()
