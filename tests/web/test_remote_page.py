"""The admin page's Remote settings: who may command the door, may-unlock, the TOTP
enrolment QR code; the same CSRF and role rules as every other page."""

from __future__ import annotations

import base64
import re

import pyotp
from sqlalchemy import select

from appliance.remote.codes import current_code, totp_secret
from appliance.store.models_admin import AuditEntry
from appliance.store.models_remote import RemotePrincipal

from .conftest import csrf_of, login


def _add(client, token, **form):
    return client.post("/remote", data={"csrf_token": token, **form})


def test_an_admin_adds_an_owner_and_gets_the_enrolment_qr_once(client, db) -> None:
    token = csrf_of(client.get("/remote").text)
    r = _add(client, token, kind="owner", name="ada", phone="+44 7700 900123", may_unlock="on")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    with db.session() as s:
        row = s.scalar(select(RemotePrincipal).where(RemotePrincipal.name == "ada"))
        assert row is not None and row.phone == "+447700900123" and row.may_unlock
        label = row.label
    # the QR code is an SVG data URI (the CSP allows data: images, no inline script)
    qr = re.search(r'id="totp-qr" src="data:image/svg\+xml;base64,([^"]+)"', r.text)
    assert qr is not None and b"<svg" in base64.b64decode(qr.group(1))
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', r.text).group(1)  # type: ignore[union-attr]
    # what the authenticator app computes from it is what the door accepts

    app_code = pyotp.TOTP(secret).now()
    hasher = client.application.extensions["doorward"]["hasher"]
    assert totp_secret(hasher, label) == secret and current_code(hasher, label) == app_code
    assert "UNLOCK 123456" in r.text
    # the list page never shows the secret again
    listing = client.get("/remote").text
    assert "ada" in listing and secret not in listing and "totp-qr" not in listing
    with db.session() as s:
        actions = [a.action for a in s.scalars(select(AuditEntry))]
    assert "remote_add" in actions


def test_bad_input_names_the_field_and_stores_nothing(client, db) -> None:
    token = csrf_of(client.get("/remote").text)
    r = _add(client, token, kind="owner", name="ada", phone="07700 900123")
    assert r.status_code == 400 and "phone: an international number" in r.text
    r = _add(client, token, kind="integration", name="home assistant")
    assert r.status_code == 400 and "name: 1-64 letters" in r.text
    with db.session() as s:
        assert s.scalar(select(RemotePrincipal)) is None


def test_may_unlock_disable_new_secret_and_delete(client, db) -> None:
    token = csrf_of(client.get("/remote").text)
    first = _add(client, token, kind="integration", name="home-assistant")
    old = re.search(r'id="totp-secret">([A-Z2-7]+)<', first.text).group(1)  # type: ignore[union-attr]
    with db.session() as s:
        pid = s.scalar(select(RemotePrincipal.id))
    r = client.post(f"/remote/{pid}/update", data={"csrf_token": token, "may_unlock": "on",
                                                   "active": "on"})  # fmt: skip
    assert r.status_code == 302
    r = client.post(f"/remote/{pid}/secret", data={"csrf_token": token})
    new = re.search(r'id="totp-secret">([A-Z2-7]+)<', r.text).group(1)  # type: ignore[union-attr]
    assert new != old and 'id="hmac-key"' in r.text
    client.post(f"/remote/{pid}/update", data={"csrf_token": token})  # both unticked
    with db.session() as s:
        row = s.get(RemotePrincipal, pid)
        assert row is not None and not row.may_unlock and not row.active
    assert client.post(f"/remote/{pid}/delete", data={"csrf_token": token}).status_code == 302
    with db.session() as s:
        assert s.get(RemotePrincipal, pid) is None


def test_csrf_and_roles(app, client, db) -> None:
    r = client.post("/remote", data={"kind": "integration", "name": "x"})  # no token
    assert r.status_code == 400
    viewer = app.test_client()
    assert login(viewer, "viewer", "reader garden lamp 7").status_code == 302
    page = viewer.get("/remote")
    assert page.status_code == 200 and "Add and enrol" not in page.text
    r = viewer.post("/remote", data={"csrf_token": csrf_of(page.text), "kind": "integration",
                                     "name": "x"})  # fmt: skip
    assert r.status_code == 403
    with db.session() as s:
        assert s.scalar(select(RemotePrincipal)) is None
    anon = app.test_client()
    assert anon.get("/remote").status_code == 302  # to the login page
