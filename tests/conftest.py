"""Shared fixtures: real photos, a temporary data dir and database, a simulated door."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ci_gate import require
from tests.mariadb_scratch import scratch_database

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def need():
    """`need(condition, reason)`: skip on a developer machine, fail in CI."""
    return require


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    path = Path(os.environ.get("FACES_DIR") or REPO / "tests" / "fixtures" / "faces")
    require(
        (path / "people").is_dir(),
        f"real face photos not found at {path} (tests/fixtures/faces ships with the repository;"
        " FACES_DIR overrides it)",
    )
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "var"
    d.mkdir()
    return d


@pytest.fixture
def config(data_dir: Path):
    from appliance.config import Config

    return Config.convert(
        {"device": {"data_dir": str(data_dir)}, "hardware": {"pin_factory": "mock"}}
    )


@pytest.fixture
def db(config) -> Iterator:
    from appliance.store.central import open_local_replica

    database = open_local_replica(config)
    yield database
    database.close()


@pytest.fixture(scope="session")
def face_engine():
    from appliance.config import VisionConfig
    from appliance.vision import FaceEngine

    return FaceEngine(VisionConfig())


@pytest.fixture
def mysql_db() -> Iterator[str]:
    """A fresh MariaDB database for this test; its name. Fails under CI when MariaDB is down."""
    with scratch_database("doorward_prov") as name:
        yield name
