"""Door access rules on the user page: add/remove, validation, roles, audit, effect at the door."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from appliance.core import Verdict
from appliance.store.models import Device, User
from appliance.store.models_admin import AuditEntry
from appliance.store.models_sync import SyncTombstone, UserAccess
from appliance.store.repository import ReplicaCredentials
from web_admin.access import (
    AccessFormError,
    Rule,
    describe,
    describe_days,
    parse_rule,
    summarize,
)

from .conftest import VIEWER_PW, csrf_of, login

WEEKDAYS = ["0", "1", "2", "3", "4"]
# 2025-06-02 is a Monday; 2025-06-07 a Saturday (times are UTC; the door's tz is UTC here)
MON_08 = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
MON_06_59 = datetime(2025, 6, 2, 6, 59, tzinfo=UTC)
MON_19_00 = datetime(2025, 6, 2, 19, 0, tzinfo=UTC)
SAT_12 = datetime(2025, 6, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def hasher(admin_config):
    from appliance.security import pin_hasher

    return pin_hasher(admin_config)


@pytest.fixture
def user_id(db, hasher) -> int:
    with db.session() as s:
        s.add(Device(id="front-door", name="Front door"))
        s.add(Device(id="garage", name="Garage"))
        u = User(number=41, name="Ada", pin_hash=hasher.hash("2468"))
        s.add(u)
        s.flush()
        return u.id


def _rules(db) -> list[UserAccess]:
    with db.session() as s:
        return list(s.scalars(select(UserAccess).order_by(UserAccess.id)))


def _add(client, token, uid, **form):
    data = MultiDict([("csrf_token", token)])
    for key, value in form.items():
        for v in value if isinstance(value, list) else [value]:
            data.add(key, v)
    return client.post(f"/users/{uid}/access", data=data)


def _creds(db, hasher, device: str, when: datetime) -> ReplicaCredentials:
    return ReplicaCredentials(db, hasher, device_id=device, now=lambda: when, tz=UTC)


# ---- the form parser and the summaries ---------------------------------------------------------
def test_parse_rule_reads_door_days_and_times() -> None:
    doors = ["front-door"]
    form = MultiDict([("door", "front-door"), ("days", "0"), ("days", "4"), ("from", "07:30"),
                      ("until", "19:00")])  # fmt: skip
    assert parse_rule(form, doors) == Rule("front-door", 0b10001, 450, 1140)
    whole = parse_rule(MultiDict([("door", ""), ("days", "5")]), doors)
    assert whole == Rule(None, 0b100000, 0, 1440)  # blank times: the whole day
    night = parse_rule(MultiDict([("days", "4"), ("from", "22:00"), ("until", "06:00")]), doors)
    assert (night.start_minute, night.end_minute) == (1320, 360)  # overnight is allowed
    to_midnight = parse_rule(MultiDict([("days", "4"), ("from", "18:00"), ("until", "00:00")]), [])
    assert to_midnight.end_minute == 1440
    assert parse_rule(MultiDict([("days", "1"), ("until", "24:00")]), []).end_minute == 1440


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ([("door", "back-door"), ("days", "0")], "door: 'back-door' is not a known door"),
        ([("door", "")], "weekdays: tick at least one day"),
        ([("days", "7")], "weekdays: '7' is not a day"),
        ([("days", "x")], "weekdays: 'x' is not a day"),
        ([("days", "0"), ("from", "7pm")], "from: '7pm' is not a time of day (HH:MM)"),
        ([("days", "0"), ("from", "24:00")], "from: '24:00' is not a time of day (00:00 to 23:59)"),
        (
            [("days", "0"), ("until", "25:00")],
            "until: '25:00' is not a time of day (00:00 to 24:00)",
        ),
        ([("days", "0"), ("from", "07:61")], "from: '07:61' is not a time of day"),
        ([("days", "0"), ("from", "07:00"), ("until", "07:00")], "until: must differ from 'from'"),
    ],
)
def test_parse_rule_names_the_wrong_field(form, message) -> None:
    with pytest.raises(AccessFormError) as exc:
        parse_rule(MultiDict(form), ["front-door"])
    assert message in str(exc.value)


def test_summaries_in_words() -> None:
    assert summarize([]) == "all doors, any time"
    assert describe(Rule("front-door", 0b0011111, 420, 1140)) == "front-door Mon–Fri 07:00–19:00"
    assert describe(Rule(None, 0b1111111, 0, 1440)) == "every door, any time"
    assert describe(Rule("garage", 0b1100000, 0, 1440)) == "garage Sat, Sun"
    assert describe(Rule(None, 0b1111111, 1320, 360)) == "every door 22:00–06:00 (overnight)"
    assert describe_days(0b0011101) == "Mon, Wed–Fri"
    two = summarize([Rule("garage", 0b1, 0, 600), Rule("front-door", 0b0011111, 420, 1140)])
    assert two == "front-door Mon–Fri 07:00–19:00; garage Mon 00:00–10:00"


# ---- the page ----------------------------------------------------------------------------------
def test_add_and_remove_rules_through_the_page(client, token, db, user_id) -> None:
    page = client.get(f"/users/{user_id}").text
    assert 'id="access"' in page and "Door access" in page
    assert 'id="access-summary">all doors, any time<' in page
    assert '<option value="front-door"' in page and '<option value="garage"' in page
    assert "all doors, any time" in client.get("/users/").text

    r = _add(client, token, user_id, door="front-door", days=WEEKDAYS, **{"from": "07:00",
             "until": "19:00"})  # fmt: skip
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/users/{user_id}#access")
    (rule,) = _rules(db)
    assert (rule.user_id, rule.device_id, rule.weekdays) == (user_id, "front-door", 0b11111)
    assert (rule.start_minute, rule.end_minute) == (420, 1140)
    assert rule.version > 0  # stamped by the ORM flush hook: replicas will pull it
    listing = client.get("/users/").text
    assert "front-door Mon–Fri 07:00–19:00" in listing and "all doors, any time" not in listing

    r = _add(client, token, user_id, door="", days=["5", "6"])
    assert r.status_code == 302
    page = client.get(f"/users/{user_id}").text
    assert "every door Sat, Sun; front-door Mon–Fri 07:00–19:00" in page
    # the same rule twice is refused
    r = _add(client, token, user_id, door="", days=["5", "6"])
    assert r.status_code == 400 and "this rule exists already: every door Sat, Sun" in r.text
    assert len(_rules(db)) == 2

    first = _rules(db)[0].id
    r = client.post(f"/users/{user_id}/access/{first}/delete", data={"csrf_token": token})
    assert r.status_code == 302
    assert [x.device_id for x in _rules(db)] == [None]
    with db.session() as s:
        stone = s.scalars(select(SyncTombstone).where(SyncTombstone.row_id == first)).one()
        assert stone.table_name == "user_access"  # the replicas delete it too
    # a rule of another user (or none) is a 404, not someone else's deletion
    assert client.post(f"/users/{user_id}/access/999/delete",
                       data={"csrf_token": token}).status_code == 404  # fmt: skip
    last = _rules(db)[0].id
    r = client.post(f"/users/{user_id}/access/{last}/delete", data={"csrf_token": token},
                    follow_redirects=True)  # fmt: skip
    assert "may use every door at any time" in r.text
    assert _rules(db) == []
    with db.session() as s:
        q = select(AuditEntry.actor, AuditEntry.action, AuditEntry.target, AuditEntry.detail)
        audit = list(
            s.execute(q.where(AuditEntry.action.like("user_access%")).order_by(AuditEntry.id))
        )
    actions = [a[1] for a in audit]
    assert actions == ["user_access_added", "user_access_added", "user_access_removed",
                       "user_access_removed"]  # fmt: skip
    assert all(a[0] == "admin" and a[2] == "user 41" for a in audit)
    assert audit[0][3]["door"] == "front-door" and audit[0][3]["start"] == "07:00"
    assert audit[2][3]["was"] == "front-door Mon–Fri 07:00–19:00"


def test_bad_rules_are_refused_with_the_field_named(client, token, db, user_id) -> None:
    cases = [
        ({"door": "back-door", "days": ["0"]}, "door: &#39;back-door&#39; is not a known door"),
        ({"door": "front-door"}, "weekdays: tick at least one day"),
        ({"days": ["0"], "from": "7 o'clock"}, "from: "),
        ({"days": ["0"], "until": "26:00"}, "until: &#39;26:00&#39; is not a time of day"),
        ({"days": ["0"], "from": "08:00", "until": "08:00"}, "until: must differ"),
    ]
    for form, message in cases:
        r = _add(client, token, user_id, **form)
        assert r.status_code == 400, form
        assert 'id="access-error"' in r.text and message in r.text, (form, r.text[-3000:])
    # what was typed is kept in the form
    r = _add(client, token, user_id, door="garage", days=["2"], until="26:00")
    assert 'value="garage" selected' in r.text and 'value="2" checked' in r.text
    assert 'value="0" checked' not in r.text
    assert _rules(db) == []
    with db.session() as s:
        assert s.scalar(select(AuditEntry.id).where(AuditEntry.action.like("user_%"))) is None


def test_rule_limit_per_user(client, token, db, user_id) -> None:
    from web_admin.access import MAX_RULES_PER_USER

    for minute in range(MAX_RULES_PER_USER):
        r = _add(client, token, user_id, days=["0"], **{"from": f"{minute:02d}:00"})
        assert r.status_code == 302
    r = _add(client, token, user_id, days=["1"])
    assert r.status_code == 400 and f"{MAX_RULES_PER_USER} access rules already" in r.text
    assert len(_rules(db)) == MAX_RULES_PER_USER


def test_viewer_reads_rules_but_cannot_change_them(app, db, user_id) -> None:
    with db.session() as s:
        s.add(UserAccess(user_id=user_id, device_id="garage", weekdays=0b1, start_minute=60,
                         end_minute=120))  # fmt: skip
    c = app.test_client()
    assert login(c, "viewer", VIEWER_PW).status_code == 302
    page = c.get(f"/users/{user_id}").text
    assert "garage Mon 01:00–02:00" in page
    assert 'id="access-form"' not in page and "/access/" not in page
    token = csrf_of(page)
    rule_id = _rules(db)[0].id
    assert _add(c, token, user_id, days=["0"]).status_code == 403
    r = c.post(f"/users/{user_id}/access/{rule_id}/delete", data={"csrf_token": token})
    assert r.status_code == 403
    assert len(_rules(db)) == 1


def test_forms_need_the_csrf_token(client, db, user_id) -> None:
    r = client.post(f"/users/{user_id}/access", data={"days": "0"})
    assert r.status_code == 400 and "CSRF" in r.text
    assert _add(client, "forged", user_id, days=["0"]).status_code == 400
    assert _rules(db) == []


def test_unknown_user_is_404(client, token) -> None:
    assert _add(client, token, 9999, days=["0"]).status_code == 404


# ---- effect at the door ------------------------------------------------------------------------
def test_rule_written_through_the_page_governs_the_door(client, token, db, hasher, user_id) -> None:
    # no rules: every door at any time
    assert _creds(db, hasher, "garage", SAT_12).check(41, "2468").verdict is Verdict.OK
    r = _add(client, token, user_id, door="front-door", days=WEEKDAYS, **{"from": "07:00",
             "until": "19:00"})  # fmt: skip
    assert r.status_code == 302
    assert _creds(db, hasher, "front-door", MON_08).check(41, "2468").verdict is Verdict.OK
    for door, when in (
        ("front-door", MON_06_59),  # before the window
        ("front-door", MON_19_00),  # the end is exclusive
        ("front-door", SAT_12),  # not a listed weekday
        ("garage", MON_08),  # another door
    ):
        assert _creds(db, hasher, door, when).check(41, "2468").verdict is Verdict.WRONG, door

    # an overnight window on Friday reaches into Saturday morning
    r = _add(client, token, user_id, door="", days=["4"], **{"from": "22:00", "until": "06:00"})
    assert r.status_code == 302
    sat_early = datetime(2025, 6, 7, 5, 30, tzinfo=UTC)
    assert _creds(db, hasher, "garage", sat_early).check(41, "2468").verdict is Verdict.OK
    assert _creds(db, hasher, "garage", SAT_12).check(41, "2468").verdict is Verdict.WRONG

    # removing every rule gives back every door at any time
    for rule in _rules(db):
        client.post(f"/users/{user_id}/access/{rule.id}/delete", data={"csrf_token": token})
    assert _creds(db, hasher, "garage", SAT_12).check(41, "2468").verdict is Verdict.OK


def test_deleting_a_user_tombstones_their_rules(client, token, db, user_id) -> None:
    _add(client, token, user_id, door="garage", days=["0"])
    rule_id = _rules(db)[0].id
    r = client.post(f"/users/{user_id}/delete", data={"csrf_token": token, "confirm": "41"})
    assert r.status_code == 302
    assert _rules(db) == []
    with db.session() as s:
        tables = {
            (t.table_name, t.row_id) for t in s.scalars(select(SyncTombstone))
        }  # fmt: skip
    assert ("user_access", rule_id) in tables and ("users", user_id) in tables
