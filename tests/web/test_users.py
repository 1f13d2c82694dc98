"""Users: enroll from real photos, list/search, family warning, PIN reset, deactivate, delete."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import select

from appliance.core import Verdict
from appliance.store.models import AccessEvent, FaceTemplate, User
from appliance.store.models_admin import AuditEntry
from appliance.store.repository import ReplicaCredentials
from appliance.store.snapshots import SnapshotStore

pytestmark = pytest.mark.faces


def _enroll(client, token, number, name, photos, **extra):
    files = [(io.BytesIO(Path(p).read_bytes()), Path(p).name) for p in photos]
    data = {"csrf_token": token, "number": str(number), "name": name, "pin": "1234",
            "role": "resident", "active": "1", "photos": files, **extra}  # fmt: skip
    r = client.post("/users/new", data=data, content_type="multipart/form-data",
                    follow_redirects=True)  # fmt: skip
    stream = r.request.environ.get("wsgi.input")
    if stream is not None:  # a big body is spooled to a temporary file by the test client;
        stream.close()  # a refused (400) upload leaves it open, a redirect does not
    return r


def test_enroll_list_search_and_family_warning(client, token, db, faces_dir, admin_config) -> None:
    import stat

    people = faces_dir / "people"
    r = _enroll(
        client, token, 1, "Barack", [people / "obama/obama1.jpg", people / "obama/obama2.jpg"]
    )
    assert r.status_code == 200 and "enrolled with 2 photo(s)" in r.text
    with db.session() as s:
        u = s.scalars(select(User).where(User.number == 1)).one()
        assert u.pin_hash.startswith("$argon2id$") and "1234" not in u.pin_hash
        tids = list(s.scalars(select(FaceTemplate.id).where(FaceTemplate.user_id == u.id)))
    assert len(tids) == 2
    # enrollment photos are stored re-encoded as JPEG
    with client.get(f"/users/{u.id}/photos/{tids[0]}.jpg") as photo:
        assert photo.status_code == 200 and photo.data[:2] == b"\xff\xd8"
    # ... readable by the owner only (0600 files in 0700 folders), whatever the umask
    enroll_dir = admin_config.data_dir / "enroll"
    for p in [enroll_dir, *enroll_dir.rglob("*")]:
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, (oct(p.stat().st_mode), p)
    # the same person under another number is refused (one person, one user), with the distance
    r = _enroll(client, token, 2, "Lookalike", [people / "obama/obama4.jpg"])
    assert r.status_code == 400 and "obama4.jpg matches user 1 Barack (distance 0." in r.text
    r = _enroll(client, token, 3, "Joe", [people / "biden/biden1.jpg"])
    assert "enrolled with 1 photo(s)" in r.text and "close to user" not in r.text
    listing = client.get("/users/?q=barack").text
    assert "Barack" in listing and "Joe" not in listing
    assert "Joe" in client.get("/users/?q=3").text
    with db.session() as s:
        actions = list(
            s.scalars(select(AuditEntry.action).where(AuditEntry.action == "user_enrolled"))
        )
    assert len(actions) == 2


def _templates(db, number: int) -> int:
    with db.session() as s:
        uid = s.scalars(select(User.id).where(User.number == number)).one_or_none()
        if uid is None:
            return -1
        return s.query(FaceTemplate).filter_by(user_id=uid).count()


def test_two_people_as_one_user_are_refused_and_nothing_is_stored(client, token, db, faces_dir):
    people = faces_dir / "people"
    r = _enroll(client, token, 1, "Two", [people / "biden/biden1.jpg", people / "obama/obama1.jpg"])
    assert r.status_code == 400
    assert "do not show one person" in r.text and "biden1.jpg ~ obama1.jpg: 0." in r.text
    assert _templates(db, 1) == -1


def test_someone_elses_photo_cannot_be_added_to_a_user(client, token, db, faces_dir) -> None:
    people = faces_dir / "people"
    r = _enroll(
        client, token, 1, "Barack", [people / "obama/obama1.jpg", people / "obama/obama2.jpg"]
    )
    assert r.status_code == 200
    with db.session() as s:
        uid = s.scalars(select(User.id).where(User.number == 1)).one()
    biden = people / "biden/biden1.jpg"
    r = client.post(f"/users/{uid}/photos", data={"csrf_token": token,
                    "photos": [(io.BytesIO(biden.read_bytes()), "biden1.jpg")]},
                    content_type="multipart/form-data", follow_redirects=True)  # fmt: skip
    assert "do not show one person" in r.text and "~ biden1.jpg: 0." in r.text
    assert _templates(db, 1) == 2
    # a third photo of the same person is taken; four more would make 7
    obama3 = people / "obama/obama3.jpg"
    r = client.post(f"/users/{uid}/photos", data={"csrf_token": token,
                    "photos": [(io.BytesIO(obama3.read_bytes()), "obama3.jpg")]},
                    content_type="multipart/form-data", follow_redirects=True)  # fmt: skip
    assert "1 photo(s) added" in r.text and _templates(db, 1) == 3
    small = people / "obama/obama_small.jpg"
    four = [(io.BytesIO(small.read_bytes()), f"o{i}.jpg") for i in range(4)]
    r = client.post(f"/users/{uid}/photos", data={"csrf_token": token, "photos": four},
                    content_type="multipart/form-data", follow_redirects=True)  # fmt: skip
    assert "at most 2" in r.text and _templates(db, 1) == 3


def test_the_last_photo_of_a_user_cannot_be_removed(client, token, db, faces_dir) -> None:
    _enroll(client, token, 1, "Joe", [faces_dir / "people/biden/biden1.jpg"])
    with db.session() as s:
        uid = s.scalars(select(User.id).where(User.number == 1)).one()
        tid = s.scalars(select(FaceTemplate.id).where(FaceTemplate.user_id == uid)).one()
    r = client.post(f"/users/{uid}/photos/{tid}/delete", data={"csrf_token": token},
                    follow_redirects=True)  # fmt: skip
    assert "needs at least one photo" in r.text and _templates(db, 1) == 1


def test_users_page_shows_each_security_margin_and_flags_low_ones(
    app, client, token, db, faces_dir, admin_config
) -> None:
    import re

    import numpy as np

    people = faces_dir / "people"
    _enroll(client, token, 1, "Barack", [people / "obama/obama1.jpg", people / "obama/obama2.jpg"])
    _enroll(client, token, 2, "Joe", [people / "biden/biden1.jpg"])
    with db.session() as s:
        vec = {u.number: [t.vector() for t in u.templates] for u in s.scalars(select(User))}
    margin = min(float(np.linalg.norm(a - b)) for a in vec[1] for b in vec[2])
    page = client.get("/users/").text
    assert "Security margin" in page
    shown = re.findall(r'<td class="margin"[^>]*>(?:<span[^>]*>low )?([0-9.]+)', page)
    assert shown == [f"{margin:.2f}"] * 2  # both users: the same nearest pair
    assert margin > admin_config.admin.similar_face_distance and "k-warn" not in page
    # a safe value above the margin flags both users, on the list and on the edit page
    safe = admin_config.admin.replace(similar_face_distance=round(margin + 0.1, 2))
    app.extensions["doorward"]["config"] = admin_config.replace(admin=safe)
    page = client.get("/users/").text
    assert page.count(f"low {margin:.2f}") == 2
    with db.session() as s:
        uid = s.scalars(select(User.id).where(User.number == 2)).one()
    edit = client.get(f"/users/{uid}").text
    assert (
        f"Security margin: {margin:.2f} to user 1 Barack" in edit and "below the safe value" in edit
    )


def test_photo_problems_are_named(client, token, faces_dir) -> None:
    r = _enroll(client, token, 4, "Group", [faces_dir / "scenes/two_people.jpg"])
    assert r.status_code == 400 and "two_people.jpg" in r.text and "faces found" in r.text
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (200, 200), (120, 130, 140)).save(buf, "PNG")
    data = {"csrf_token": token, "number": "5", "name": "Wall", "pin": "1234",
            "photos": [(io.BytesIO(buf.getvalue()), "wall.png")]}  # fmt: skip
    r = client.post("/users/new", data=data, content_type="multipart/form-data")
    assert r.status_code == 400 and "wall.png: no face found" in r.text
    r = _enroll(client, token, 6, "Six", [faces_dir / "people/obama/obama_small.jpg"] * 6)
    assert r.status_code == 400 and "at most 5" in r.text


def test_edit_pin_deactivate_and_delete(client, token, db, admin_config, faces_dir) -> None:
    from appliance.security import pin_hasher

    _enroll(client, token, 12, "Kit", [faces_dir / "people/kit_harington/kit1.jpg"])
    with db.session() as s:
        uid = s.scalars(select(User.id).where(User.number == 12)).one()
    creds = ReplicaCredentials(db, pin_hasher(admin_config))
    assert creds.check(12, "1234").verdict is Verdict.OK
    r = client.post(f"/users/{uid}", data={"csrf_token": token, "number": "12", "name": "Kit H",
                    "pin": "9876", "role": "guest", "active": "1"})  # fmt: skip
    assert r.status_code == 302
    assert creds.check(12, "1234").verdict is Verdict.WRONG
    assert creds.check(12, "9876").verdict is Verdict.OK
    # deactivation takes effect at the door at once
    client.post(f"/users/{uid}/active", data={"csrf_token": token, "active": "0"})
    assert creds.check(12, "9876").verdict is Verdict.WRONG
    # a snapshot of one of the user's events is deleted with the user
    store = SnapshotStore(admin_config.data_dir)
    import numpy as np

    rel = store.save(np.zeros((48, 64, 3), np.uint8))
    with db.session() as s:
        s.add(AccessEvent(device_id="door-1", kind="granted", user_number=12, user_id=uid,
                          snapshot_path=rel))  # fmt: skip
    with client.get(f"/snapshots/{rel.removeprefix('snapshots/')}") as snap:
        assert snap.status_code == 200
    r = client.post(f"/users/{uid}/delete", data={"csrf_token": token, "confirm": "99"})
    assert r.status_code == 400  # wrong confirmation: nothing deleted
    with db.session() as s:
        assert s.get(User, uid) is not None
    r = client.post(f"/users/{uid}/delete", data={"csrf_token": token, "confirm": "12"})
    assert r.status_code == 302
    with db.session() as s:
        assert s.get(User, uid) is None
        assert s.query(FaceTemplate).filter_by(user_id=uid).count() == 0
        ev = s.scalars(select(AccessEvent).where(AccessEvent.user_id == uid)).one()
        assert ev.snapshot_path is None
        audit = [a for (a,) in s.execute(select(AuditEntry.action).order_by(AuditEntry.id))]
    assert not (admin_config.data_dir / rel).exists()
    assert {"user_changed", "user_deactivated", "user_deleted"} <= set(audit)


def test_events_filter_and_csv(client, db) -> None:
    with db.session() as s:
        s.add(AccessEvent(device_id="door-1", kind="granted", user_number=1, distance=0.31))
        s.add(AccessEvent(device_id="door-1", kind="denied_face", user_number=2, reason="=cmd()"))
        s.add(AccessEvent(device_id="door-2", kind="granted", user_number=3))
    page = client.get("/events?kind=granted&door=door-1").text
    assert page.count('class="event"') == 1
    csv_text = client.get("/events.csv?kind=denied_face").text
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("time_utc,device,kind") and len(lines) == 2
    assert "'=cmd()" in lines[1]  # spreadsheet formulas are neutralised
    assert client.get("/events?user=abc").status_code == 400
    svg = client.get("/").text
    assert "<svg" in svg and "grants" in svg and ": 2 grants" in svg


def test_an_edit_cannot_set_the_pin_to_the_duress_pin(
    client, token, db, admin_config, faces_dir
) -> None:
    """Changing only the PIN to the user's existing duress PIN (or the reverse) is refused:
    it would silently disable duress."""
    from appliance.security import pin_hasher

    _enroll(client, token, 14, "Ann", [faces_dir / "people/kit_harington/kit1.jpg"],
            duress_pin="5555")  # fmt: skip
    with db.session() as s:
        uid = s.scalars(select(User.id).where(User.number == 14)).one()
    base = {"csrf_token": token, "number": "14", "name": "Ann", "role": "resident", "active": "1"}
    r = client.post(f"/users/{uid}", data={**base, "pin": "5555"})
    assert r.status_code == 400 and b"must differ from the user" in r.data
    r = client.post(f"/users/{uid}", data={**base, "duress_pin": "1234"})
    assert r.status_code == 400 and b"must differ from the user" in r.data
    creds = ReplicaCredentials(db, pin_hasher(admin_config))
    assert creds.check(14, "1234").verdict is Verdict.OK
    assert creds.check(14, "5555").verdict is Verdict.DURESS


def test_csv_neutralises_every_text_column(client, db) -> None:
    import csv
    import io

    nasty = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=x", "\r=x"]
    with db.session() as s:
        for i, v in enumerate(nasty):
            s.add(AccessEvent(id=f"{v}{i}", device_id=v, kind=v, user_number=i, reason=v,
                              snapshot_path=v))  # fmt: skip
    rows = list(csv.reader(io.StringIO(client.get("/events.csv").text)))
    header, body = rows[0], rows[1:]
    assert len(body) == len(nasty)
    text_cols = [header.index(c) for c in ("device", "kind", "reason", "snapshot", "id")]
    for row in body:
        for col in text_cols:
            assert row[col].startswith("'"), (header[col], row[col])
            assert row[col][1:2] in ("=", "+", "-", "@", "\t", "\r"), row[col]
