"""Access policies end to end: `doorward guest/lockdown/schedule` then `doorward simulate` on
real photos, through the real state machine, MockFactory pins, the replay camera, the face
pipeline and the database (the embedded default, and a central SQLite file with a replica
that is never synced again after the codes were issued)."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from appliance.cli import main

from .test_visits import visit

pytestmark = pytest.mark.faces


@pytest.fixture
def door(tmp_path: Path, faces_dir: Path):
    data = tmp_path / "var"
    cfg = tmp_path / "doorward.toml"
    cfg.write_text(
        f'[device]\nid = "front"\ndata_dir = "{data}"\n[access]\nrelay_pulse_s = 4.0\n'
        "[vision]\nliveness = false\n",
        encoding="utf-8",
    )
    people = faces_dir / "people"
    for number, pin, role, photos in ((7, "2468", "resident", ("obama1.jpg", "obama3.jpg")),):
        args = ["--config", str(cfg), "enroll", "--number", str(number), "--name", "U",
                "--pin", pin, "--role", role]  # fmt: skip
        for p in photos:
            args += ["--photo", str(people / "obama" / p)]
        assert main(args) == 0
    return cfg, data, people


def cli(cfg: Path, capsys: pytest.CaptureFixture[str], *args: str) -> object:
    capsys.readouterr()
    assert main(["--config", str(cfg), *args]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def stranger(people: Path) -> str:
    return str(people / "biden" / "biden1.jpg")


def test_a_two_use_guest_code_opens_twice_and_is_refused_the_third_time(door, capsys) -> None:
    cfg, data, people = door
    issued = cli(cfg, capsys, "guest", "add", "--name", "Plumber", "--uses", "2")
    assert isinstance(issued, dict) and issued["keys"].startswith("0*") and issued["id"]
    for _ in range(2):
        events, summary = visit(cfg, capsys, "--keys", issued["keys"], "--camera",
                                stranger(people))  # fmt: skip
        assert summary["guest_entry"] is True and summary["relay_pulses"] == 1
        assert summary["pulse_s"] == [4.0] and summary["alerts_queued"] == 1
        entry = next(e for e in events if e["event"] == "guest_entry")
        assert entry["detail"]["name"] == "Plumber" and entry["snapshot"]
        assert (data / entry["snapshot"]).is_file()  # always a snapshot (no face check)
    events, summary = visit(cfg, capsys, "--keys", issued["keys"], "--camera", stranger(people))
    assert summary["guest_entry"] is False and summary["relay_pulses"] == 0
    assert [e["reason"] for e in events if e["event"] == "code_wrong"] == ["guest_used_up"]
    listed = cli(cfg, capsys, "guest", "list")
    assert isinstance(listed, list)
    row = next(r for r in listed if r["id"] == issued["id"])
    assert row["uses"] == 2 and row["state"] == "used_up" and row["over_limit"] == 0
    assert "keys" not in row and "code_hash" not in row  # shown once, never listed
    with sqlite3.connect(data / "doorward.db") as conn:
        kinds = [k for (k,) in conn.execute("SELECT kind FROM outbox ORDER BY created_at")]
    assert kinds.count("guest_entry") == 2


def test_a_revoked_guest_code_is_refused(door, capsys) -> None:
    cfg, _data, people = door
    issued = cli(cfg, capsys, "guest", "add", "--name", "Cleaner")
    cli(cfg, capsys, "guest", "revoke", str(issued["id"]))
    events, summary = visit(cfg, capsys, "--keys", issued["keys"], "--camera", stranger(people))
    assert summary["relay_pulses"] == 0
    assert [e["reason"] for e in events if e["event"] == "code_wrong"] == ["guest_revoked"]


def test_guest_add_refuses_bad_values_naming_the_option(door, capsys) -> None:
    cfg, _data, _people = door
    for args, option in (
        (["--uses", "0"], "--uses"),
        (["--until", "yesterday"], "--until"),
        (["--from", "2030-01-02", "--until", "2030-01-01"], "--until"),
        (["--offline", "--uses", "2"], "--uses"),
        (["--offline", "--until", (date.today() + timedelta(days=60)).isoformat()], "--until"),
        (["--days", "mon-fri"], "--start"),
    ):
        capsys.readouterr()
        try:
            rc = main(["--config", str(cfg), "guest", "add", "--name", "X", *args])
        except SystemExit as exc:  # argparse's own refusals
            rc = exc.code
        assert rc == 2, args
        assert option in capsys.readouterr().err, args


def test_schedule_and_guest_commands_name_what_was_wrong_and_store_nothing(
    door, capsys, tmp_path: Path
) -> None:
    """The domain's refusals reach the owner as `doorward: error: ...` (exit 2) naming the
    argument, and the schedule is as it was."""
    cfg, _data, _people = door
    before = cli(cfg, capsys, "schedule", "list")
    not_ics = tmp_path / "holidays.ics"
    not_ics.write_text("this is not a calendar\n", encoding="utf-8")
    for args, named in (
        (["guest", "revoke", "999"], "999"),
        (["schedule", "remove", "999"], "999"),
        (["schedule", "add", "--days", "mon-fri", "--start", "25:00", "--end", "18:00"], "--start"),
        (["schedule", "import-ics", str(not_ics)], f"{not_ics}: .ics: not an iCalendar file"),
    ):
        capsys.readouterr()
        assert main(["--config", str(cfg), *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("doorward: error: ") and named in err, (args, err)
    assert cli(cfg, capsys, "schedule", "list") == before


def test_an_offline_code_works_on_a_door_that_never_synced_since_and_stops_after_revocation(
    tmp_path: Path, faces_dir: Path, capsys
) -> None:
    """A central SQLite database and a door replica: the door syncs once, then the code is
    issued centrally and used with no sync at all; its revocation reaches the door with the
    next sync round."""
    central = tmp_path / "central.db"
    data = tmp_path / "var"
    cfg = tmp_path / "doorward.toml"
    cfg.write_text(
        f'[device]\nid = "front"\ndata_dir = "{data}"\n'
        f'[database]\nurl = "sqlite:///{central}"\nreplica_path = "{data / "replica.db"}"\n'
        "[access]\nrelay_pulse_s = 4.0\n[vision]\nliveness = false\n",
        encoding="utf-8",
    )
    people = faces_dir / "people"
    cam = str(people / "biden" / "biden1.jpg")
    assert main(["--config", str(cfg), "migrate"]) == 0
    visit(cfg, capsys, "--keys", "#", "--camera", cam)  # first sync: the replica exists
    issued = cli(cfg, capsys, "guest", "add", "--name", "Courier", "--offline", "--door",
                 "front")  # fmt: skip
    assert issued["keys"].startswith("00*") and len(issued["keys"]) == 3 + 10 + 1
    with sqlite3.connect(data / "replica.db") as conn:
        assert conn.execute("SELECT count(*) FROM guest_codes").fetchone() == (0,)
    events, summary = visit(cfg, capsys, "--no-sync", "--keys", issued["keys"], "--camera", cam)
    assert summary["guest_entry"] is True and summary["relay_pulses"] == 1
    assert next(e for e in events if e["event"] == "guest_entry")["detail"]["serial"] == 0
    # outside its window (tomorrow) it is refused, still without any sync
    tomorrow = (datetime.now().astimezone() + timedelta(days=1)).isoformat()
    events, summary = visit(cfg, capsys, "--no-sync", "--at", tomorrow, "--keys",
                            issued["keys"], "--camera", cam)  # fmt: skip
    assert summary["relay_pulses"] == 0
    assert [e["reason"] for e in events if e["event"] == "code_wrong"] == ["guest_expired"]
    # another door's code is wrong here
    other = cli(cfg, capsys, "guest", "add", "--name", "X", "--offline", "--door", "back")
    events, summary = visit(cfg, capsys, "--no-sync", "--keys", other["keys"], "--camera", cam)
    assert summary["relay_pulses"] == 0
    # revoked centrally: refused once a sync round has carried the revocation
    cli(cfg, capsys, "guest", "revoke", str(issued["id"]))
    events, summary = visit(cfg, capsys, "--no-sync", "--keys", issued["keys"], "--camera", cam)
    assert summary["guest_entry"] is True  # not synced yet: the door cannot know
    events, summary = visit(cfg, capsys, "--keys", issued["keys"], "--camera", cam)
    assert summary["relay_pulses"] == 0
    assert [e["reason"] for e in events if e["event"] == "code_wrong"] == ["guest_revoked"]


def test_a_single_door_guest_code_keeps_its_limit_with_no_network(
    tmp_path: Path, faces_dir: Path, capsys
) -> None:
    central = tmp_path / "central.db"
    data = tmp_path / "var"
    cfg = tmp_path / "doorward.toml"
    cfg.write_text(
        f'[device]\nid = "front"\ndata_dir = "{data}"\n'
        f'[database]\nurl = "sqlite:///{central}"\nreplica_path = "{data / "replica.db"}"\n'
        "[vision]\nliveness = false\n",
        encoding="utf-8",
    )
    cam = str(faces_dir / "people" / "biden" / "biden1.jpg")
    assert main(["--config", str(cfg), "migrate"]) == 0
    issued = cli(cfg, capsys, "guest", "add", "--name", "P", "--uses", "2", "--door", "front")
    visit(cfg, capsys, "--keys", "#", "--camera", cam)  # the code reaches the door
    opened = []
    for _ in range(3):
        _events, summary = visit(cfg, capsys, "--no-sync", "--keys", issued["keys"],
                                 "--camera", cam)  # fmt: skip
        opened.append(summary["guest_entry"])
    assert opened == [True, True, False]


def test_lockdown_refuses_a_users_right_code_and_an_admin_still_enters(door, capsys) -> None:
    cfg, data, people = door
    obama, kit = people / "obama", people / "kit_harington"
    # the administrator is another person (one person per user: #14)
    assert main(["--config", str(cfg), "enroll", "--number", "9", "--name", "Boss", "--pin",
                 "9753", "--role", "admin", "--photo", str(kit / "kit1.jpg")]) == 0  # fmt: skip
    state = cli(cfg, capsys, "lockdown", "on", "--by", "tester")
    assert state["on"] is True and state["by"] == "tester"
    events, summary = visit(cfg, capsys, "--keys", "7*2468#", "--camera", str(obama / "obama2.jpg"))
    assert summary["granted"] is False and summary["relay_pulses"] == 0
    assert summary["lockdown"] is True
    refused = next(e for e in events if e["event"] == "lockdown_refused")
    assert refused["user_number"] == 7 and refused["alert_id"]
    events, summary = visit(cfg, capsys, "--keys", "9*9753#", "--camera", str(kit / "kit2.jpg"))
    assert summary["granted"] is True and summary["relay_pulses"] == 1
    assert cli(cfg, capsys, "lockdown", "status")["on"] is True
    cli(cfg, capsys, "lockdown", "off")
    events, summary = visit(cfg, capsys, "--keys", "7*2468#", "--camera", str(obama / "obama2.jpg"))
    assert summary["granted"] is True


def test_the_fire_input_holds_the_lock_released(door, capsys) -> None:
    cfg, _data, people = door
    events, summary = visit(cfg, capsys, "--fire", "--keys", "7*2468#", "--camera",
                            str(people / "obama" / "obama2.jpg"))  # fmt: skip
    kinds = [e["event"] for e in events]
    assert "fire_alarm" in kinds and summary["held"] == "fire"
    granted = next(e for e in events if e["event"] == "granted")
    assert granted["detail"]["fire"] is True
    # held, not pulsed: one relay period, from the alarm to the end of the visit (when the
    # simulation stops the door), longer than the 4 s pulse
    assert summary["relay_pulses"] == 1 and summary["pulse_s"][0] > 4.0 + 1.0


def test_the_schedules_held_unlock_starts_only_after_the_first_authorised_entry(
    door, capsys
) -> None:
    cfg, _data, people = door
    cli(cfg, capsys, "schedule", "add", "--days", "all", "--start", "00:00", "--end", "24:00",
        "--first-person-in")  # fmt: skip
    # nobody in yet: a visit without a code leaves the door locked
    events, summary = visit(cfg, capsys, "--keys", "#", "--camera", stranger(people))
    assert summary["relay_pulses"] == 0 and summary["held"] is None
    events, summary = visit(cfg, capsys, "--keys", "7*2468#", "--camera",
                            str(people / "obama" / "obama2.jpg"))  # fmt: skip
    assert summary["held"] == "schedule" and summary["relay_pulses"] == 1
    assert summary["pulse_s"][0] > 4.0  # held past the pulse, until the simulation stopped
    granted = next(e for e in events if e["event"] == "granted")
    assert granted["detail"]["first_person_in"] is True
    assert "schedule_unlocked" in [e["event"] for e in events]


def test_a_holiday_from_an_ics_file_keeps_the_door_locked(door, capsys, tmp_path: Path) -> None:
    cfg, _data, people = door
    cli(cfg, capsys, "schedule", "add", "--days", "all", "--start", "00:00", "--end", "24:00")
    today = date.today()
    ics = tmp_path / "holidays.ics"
    ics.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:1@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:{today:%Y%m%d}\r\n"
        f"DTEND;VALUE=DATE:{today + timedelta(days=2):%Y%m%d}\r\nSUMMARY:Closed\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n",
        encoding="utf-8",
    )
    assert cli(cfg, capsys, "schedule", "import-ics", str(ics))["added"] == 2
    noon = datetime.combine(today, datetime.min.time()).replace(hour=12).astimezone()
    _events, summary = visit(cfg, capsys, "--at", noon.isoformat(), "--keys", "#",
                             "--camera", stranger(people))  # fmt: skip
    assert summary["held"] is None and summary["relay_pulses"] == 0
    after = noon + timedelta(days=3)
    _events, summary = visit(cfg, capsys, "--at", after.isoformat(), "--keys", "#",
                             "--camera", stranger(people))  # fmt: skip
    assert summary["held"] == "schedule"
