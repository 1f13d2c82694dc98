"""Fixtures for the admin page: an app on a fresh database, accounts, a logged-in client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ADMIN_PW = "correct horse battery"
VIEWER_PW = "reader garden lamp 7"


@pytest.fixture
def admin_config(data_dir: Path):
    from appliance.config import Config

    return Config.convert(
        {
            "device": {"data_dir": str(data_dir)},
            "hardware": {"pin_factory": "mock"},
            "admin": {
                "max_upload_mb": 2,
                "login_max_failures": 3,
                "login_lockout_s": 600,
                "login_ip_limit": 8,
            },
        }
    )


@pytest.fixture
def accounts(db):
    from web_admin.accounts import create_account

    create_account(db, "admin", ADMIN_PW, "admin")
    create_account(db, "viewer", VIEWER_PW, "viewer")
    return {"admin": ADMIN_PW, "viewer": VIEWER_PW}


@pytest.fixture
def app(admin_config, db, accounts, face_engine):
    from web_admin import create_app

    app = create_app(
        config=admin_config, db=db, test_config={"TESTING": True, "BOOTSTRAP_ADMIN": False}
    )
    app.extensions["doorward"]["face"] = face_engine  # share the loaded models across tests
    return app


def csrf_of(html: str, last: bool = False) -> str:
    found = re.findall(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found[-1] if last else found[0]


def login(client, username: str = "admin", password: str = ADMIN_PW):
    page = client.get("/login")
    return client.post(
        "/login",
        data={
            "csrf_token": csrf_of(page.text, last=True),
            "username": username,
            "password": password,
        },
    )


@pytest.fixture
def client(app) -> Iterator:
    c = app.test_client()
    r = login(c)
    assert r.status_code == 302, r.text
    yield c


@pytest.fixture
def token(client) -> str:
    return csrf_of(client.get("/users/").text)
