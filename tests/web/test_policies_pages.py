"""The guest-code, schedule and lockdown pages (Flask test client on a real database)."""

from __future__ import annotations

import re

from .conftest import csrf_of, login


def _keys(html: str) -> str:
    m = re.search(r'id="issued-keys" class="code">([0-9*#]+)<', html)
    assert m, html[-2000:]
    return m.group(1)


def test_a_guest_code_is_shown_once_stored_hashed_and_revocable(client, db) -> None:
    from sqlalchemy import select

    from appliance.store.models_policies import GuestCode

    page = client.get("/policies/guests")
    r = client.post("/policies/guests", data={"csrf_token": csrf_of(page.text), "name": "Plumber",
                                              "uses": "2", "kind": "code"})  # fmt: skip
    assert r.status_code == 200
    keys = _keys(r.text)
    assert re.fullmatch(r"0\*\d{10}#", keys)
    with db.session() as s:
        row = s.scalars(select(GuestCode)).one()
        assert row.max_uses == 2 and row.code_hash.startswith("$argon2id$")
        assert keys[2:12] not in row.code_hash
    again = client.get("/policies/guests")
    assert keys not in again.text and "Plumber" in again.text  # never shown a second time
    r = client.post(f"/policies/guests/{row.id}/revoke", data={"csrf_token": csrf_of(again.text)})
    assert r.status_code == 302
    assert "revoked" in client.get("/policies/guests").text


def test_bad_guest_values_are_refused_naming_the_field_and_nothing_is_stored(client, db) -> None:
    from sqlalchemy import func, select

    from appliance.store.models_policies import GuestCode

    token = csrf_of(client.get("/policies/guests").text)
    for data, word in (
        ({"name": "", "kind": "code"}, "--name"),
        ({"name": "X", "uses": "zero", "kind": "code"}, "uses"),
        ({"name": "X", "uses": "0", "kind": "code"}, "--uses"),
        ({"name": "X", "from": "2030-01-02", "until": "2030-01-01", "kind": "offline"}, "--until"),
        ({"name": "X", "days": "funday", "kind": "code"}, "funday"),
    ):
        r = client.post("/policies/guests", data={"csrf_token": token, **data})
        assert r.status_code == 400 and word in r.text, (data, r.text[-1500:])
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(GuestCode)) == 0


def test_an_offline_code_from_the_page_verifies_with_the_doors_key(client, app) -> None:
    from datetime import date

    from appliance.core import offline as oc
    from appliance.store.guests import offline_key
    from web_admin.common import pin_hasher

    token = csrf_of(client.get("/policies/guests").text)
    r = client.post("/policies/guests", data={"csrf_token": token, "name": "Courier",
                                              "kind": "offline"})  # fmt: skip
    keys = _keys(r.text)
    assert keys.startswith("00*") and len(keys) == 14
    with app.app_context():
        key = offline_key(pin_hasher(), app.extensions["doorward"]["config"].device.id)
    assert oc.verify(key, keys[3:13], date.today()).reason == "ok"


def test_lockdown_from_the_page_is_stored_for_the_door(client, db) -> None:
    from appliance.store.lockdown import read_lockdown

    page = client.get("/policies/schedule")
    r = client.post("/policies/lockdown", data={"csrf_token": csrf_of(page.text), "on": "1"})
    assert r.status_code == 302
    state = read_lockdown(db)
    assert state["on"] is True and state["by"] == "admin" and state["source"] == "admin"
    assert "ON" in client.get("/policies/schedule").text


def test_schedule_windows_and_an_ics_import_from_the_page(client, db) -> None:
    import io

    from appliance.store.schedules import list_schedule

    token = csrf_of(client.get("/policies/schedule").text)
    r = client.post("/policies/schedule/windows", data={"csrf_token": token, "days": "mon-fri",
                    "start": "08:00", "end": "18:00", "first_person_in": "1"})  # fmt: skip
    assert r.status_code == 302
    ics = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:a@t\r\n"
           b"DTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20261225\r\nSUMMARY:Xmas\r\n"
           b"END:VEVENT\r\nEND:VCALENDAR\r\n")  # fmt: skip
    upload = {"csrf_token": token, "ics": (io.BytesIO(ics), "h.ics")}
    r = client.post("/policies/schedule/holidays", data=upload, content_type="multipart/form-data")
    assert r.status_code == 302
    sched = list_schedule(db)
    assert [(w["days"], w["start"], w["end"], w["first_person_in"]) for w in sched["windows"]] == [
        ("mon,tue,wed,thu,fri", "08:00", "18:00", True)
    ]
    assert [(h["day"], h["name"]) for h in sched["holidays"]] == [("2026-12-25", "Xmas")]
    bad = client.post("/policies/schedule/windows", data={"csrf_token": token, "days": "mon",
                      "start": "25:00", "end": "18:00"}, follow_redirects=True)  # fmt: skip
    assert "start" in bad.text and "not a time" in bad.text


def test_a_viewer_cannot_issue_or_revoke(app) -> None:
    from .conftest import VIEWER_PW

    c = app.test_client()
    assert login(c, "viewer", VIEWER_PW).status_code == 302
    page = c.get("/policies/guests")
    assert page.status_code == 200 and 'id="guest-form"' not in page.text
    r = c.post("/policies/guests", data={"csrf_token": csrf_of(page.text), "name": "X"})
    assert r.status_code == 403
    r = c.post("/policies/lockdown", data={"csrf_token": csrf_of(page.text), "on": "1"})
    assert r.status_code == 403
