"""The door panel's controls answer without a 500; files are served only from their own folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from appliance.store.models_admin import AuditEntry
from web_admin import create_app

from .conftest import csrf_of, login

JPEG = b"\xff\xd8\xff\xe0" + b"0" * 64


@pytest.fixture
def panel(admin_config, db, accounts, face_engine) -> Iterator:
    """A logged-in test client of an app with a simulated door running beside it."""
    from gpiozero.pins.mock import MockFactory

    from appliance.door import Door
    from appliance.hardware.camera import ReplayCamera

    # a doorbell wired, so that the panel has its button too
    cfg = admin_config.with_overrides(hardware={"pin_factory": "mock", "pins": {"doorbell": 26}})
    door = Door(cfg, db, factory=MockFactory(), face_engine=face_engine, camera=ReplayCamera([]))
    door.start()
    app = create_app(config=cfg, db=db, door=door, test_config={"BOOTSTRAP_ADMIN": False})
    c = app.test_client()
    assert login(c).status_code == 302
    yield c, door
    door.close()


def test_every_panel_action_answers_and_is_audited(panel, db) -> None:
    from web_admin.device import ACTIONS

    c, door = panel
    token = csrf_of(c.get("/device/").text)
    for name in ACTIONS:
        r = c.post("/device/action", data={"csrf_token": token, "action": name})
        assert r.status_code == 302, (name, r.status_code, r.text[:300])
    with db.session() as s:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "panel_action")))
    assert [r.detail["control"] for r in rows] == list(ACTIONS)
    assert all(r.target == door.device_id for r in rows)


def test_unknown_panel_action_is_a_400_naming_it(panel) -> None:
    c, _ = panel
    token = csrf_of(c.get("/device/").text)
    r = c.post("/device/action", data={"csrf_token": token, "action": "explode"})
    assert r.status_code == 400 and "explode" in r.text


def test_enrollment_photo_with_a_relative_data_dir(tmp_path, monkeypatch, face_engine) -> None:
    from appliance.config import Config
    from appliance.store.central import open_local_replica
    from web_admin.accounts import create_account

    from .conftest import ADMIN_PW

    monkeypatch.chdir(tmp_path)
    admin_config = Config.convert(
        {"device": {"data_dir": "var"}, "hardware": {"pin_factory": "mock"}}
    )
    assert not admin_config.data_dir.is_absolute()
    db = open_local_replica(admin_config)
    try:
        create_account(db, "admin", ADMIN_PW, "admin")
        photo = tmp_path / "var" / "enroll" / "4" / "7.jpg"
        photo.parent.mkdir(parents=True)
        photo.write_bytes(JPEG)
        app = create_app(config=admin_config, db=db, test_config={"BOOTSTRAP_ADMIN": False})
        c = app.test_client()
        assert login(c).status_code == 302
        with c.get("/users/4/photos/7.jpg") as r:
            assert r.status_code == 200 and r.data == JPEG
        assert c.get("/users/4/photos/8.jpg").status_code == 404
    finally:
        db.close()


@pytest.fixture
def files(admin_config: object, data_dir: Path) -> dict[str, Path]:
    enroll = data_dir / "enroll" / "4" / "4.jpg"
    snap = data_dir / "snapshots" / "2026" / "01" / "02" / "a.jpg"
    mail = data_dir / "mailbox" / "m-1.eml"
    other = data_dir / "secret.jpg"
    for p in (enroll, snap, mail, other):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(JPEG if p.suffix == ".jpg" else b"Subject: hi\n\nbody\n")
    return {"enroll": enroll, "snap": snap, "mail": mail}


@pytest.mark.parametrize(
    "url",
    [
        "/snapshots/..%2fenroll/4/4.jpg",
        "/snapshots/%2e%2e%2fenroll%2f4%2f4.jpg",
        "/snapshots/..%2F..%2Fvar%2Fenroll%2F4%2F4.jpg",
        "/snapshots/2026/..%2f..%2f..%2fsecret.jpg",
        "/snapshots/%2e%2e/secret.jpg",
        "/snapshots/..%5csecret.jpg",
        "/snapshots/%2fetc%2fpasswd",
        "/users/4/photos/..%2f..%2fsecret.jpg",
        "/mailbox/..%2fsecret.jpg",
        "/mailbox/..%2fmailbox%2fm-1.eml",
        "/mailbox/%2e%2e%2fsnapshots/photo/0.jpg",
    ],
)
def test_encoded_traversal_is_a_404(client, files, url: str) -> None:
    with client.get(url, follow_redirects=True) as r:  # werkzeug merges "//" with a 308
        assert r.status_code == 404


def test_files_in_their_own_folder_are_served(client, files) -> None:
    for url in ("/snapshots/2026/01/02/a.jpg", "/users/4/photos/4.jpg"):
        with client.get(url) as r:
            assert r.status_code == 200 and r.data == JPEG
    assert client.get("/mailbox/m-1.eml").status_code == 200


def test_viewer_gets_a_read_only_panel(panel, app, db) -> None:
    from .conftest import VIEWER_PW

    c, door = panel
    admin_page = c.get("/device/").text
    assert 'id="panel"' in admin_page and "panel-readonly" not in admin_page
    assert '<fieldset class="panel-controls" >' in admin_page
    v = c.application.test_client()
    assert login(v, "viewer", VIEWER_PW).status_code == 302
    page = v.get("/device/").text
    assert "panel-readonly" in page
    assert '<fieldset class="panel-controls" disabled>' in page
    # every panel control is inside the disabled fieldset
    inside = page.split('<fieldset class="panel-controls" disabled>')[1].split("</fieldset>")[0]
    assert inside.count("<button") == page.count("<button", page.index('id="panel"'))


def test_hidden_attribute_wins_in_the_stylesheet() -> None:
    css = (Path(__file__).resolve().parents[2] / "web_admin/static/app.css").read_text()
    first_rule = css.split("*/", 1)[1].strip().splitlines()[0]
    assert first_rule.replace(" ", "") == "[hidden]{display:none!important;}"


@pytest.mark.parametrize("pin", ["١٢٣٤", "１２３４", "12３4", "²²²²"])
def test_non_ascii_digit_pins_are_refused_clearly(pin: str) -> None:
    from appliance.security import PinError, validate_pin

    assert pin.isdigit() or pin.isnumeric()
    with pytest.raises(PinError, match="only the digits 0-9"):
        validate_pin(pin)


@pytest.mark.parametrize(
    ("password", "why"),
    [("aaaaaaaaaa", "too easy"), ("password123", "too easy"), ("qwertyuiop", "too easy"),
     ("iloveyou12", "too easy"), ("Password1234", "too easy"),
     ("xadminx-horse-staple", "username")],
)  # fmt: skip
def test_weak_admin_passwords_are_refused(db, password: str, why: str) -> None:
    from web_admin.accounts import AccountError, create_account

    with pytest.raises(AccountError, match=why) as info:
        create_account(db, "admin", password, "admin")
    assert password not in str(info.value)


def test_good_admin_password_is_accepted(db) -> None:
    from web_admin.accounts import create_account

    assert create_account(db, "ops", "orbit walnut tunnel 58", "admin")


def test_the_panel_doorbell_rings_the_door_and_is_absent_when_none_is_wired(
    panel, admin_config, db, accounts, face_engine
) -> None:
    from gpiozero.pins.mock import MockFactory

    from appliance.door import Door
    from appliance.hardware.camera import ReplayCamera
    from tests.support.waiting import eventually

    c, door = panel
    page = c.get("/device/").text
    assert 'id="act-doorbell"' in page
    r = c.post("/device/action", data={"csrf_token": csrf_of(page), "action": "doorbell"})
    assert r.status_code == 302
    eventually(lambda: any(e.kind == "doorbell" and e.snapshot for e in door.recent),
               what="a doorbell event with its snapshot")  # fmt: skip
    bare = Door(admin_config, db, factory=MockFactory(), face_engine=face_engine,
                camera=ReplayCamera([]))  # fmt: skip
    try:
        app = create_app(config=admin_config, db=db, door=bare,
                         test_config={"BOOTSTRAP_ADMIN": False})  # fmt: skip
        c2 = app.test_client()
        assert login(c2).status_code == 302
        page = c2.get("/device/").text
        assert 'id="act-doorbell"' not in page
        r = c2.post("/device/action", data={"csrf_token": csrf_of(page), "action": "doorbell"})
        assert r.status_code == 400 and "hardware.pins.doorbell" in r.text
    finally:
        bare.close()
