"""Guest-code use counts across doors, on the real MariaDB: uses sync up, other doors' totals
come down, and two doors spending the same code while cut off exceed its limit by at most
the number of doors - 1 (each may spend one use it has not confirmed); the admin listing
shows the overshoot per door."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from appliance.core import KeyPressed

PEPPER = "test-pepper-not-secret"  # the same as tests/store/conftest.py


@dataclass
class DoorSite:
    door: object
    replica: object
    worker: object
    via: object

    def type(self, keys: str) -> list[str]:
        """Type keys on this door's state machine; the kinds of the events recorded."""
        before = len(self.door.recent)
        for k in keys:
            self.door.handle(KeyPressed(k))
        return [e.kind for e in self.door.recent[before:]]

    def reasons(self, n: int = 1) -> list[str | None]:
        return [e.reason for e in self.door.recent[-n:]]


@pytest.fixture
def doors(make_config, central_url, tmp_path, monkeypatch) -> Iterator[tuple]:
    """Two doors, each with its replica and a sync worker reaching MariaDB through its own
    cuttable relay (a network outage per door)."""
    from appliance.door import Door
    from appliance.hardware.board import mock_factory
    from appliance.hardware.camera import ReplayCamera
    from appliance.store.central import open_central, open_local_replica
    from appliance.store.sync import SyncWorker
    from tests.support.netproxy import TcpRelay

    monkeypatch.setenv("DOORWARD_PEPPER", PEPPER)
    photo = tmp_path / "blank.jpg"
    import numpy as np
    import simplejpeg

    photo.write_bytes(simplejpeg.encode_jpeg(np.zeros((120, 160, 3), np.uint8)))
    central = open_central(make_config(), central_url, migrate=True)
    sites: list[DoorSite] = []
    relays = []
    for device in ("door-1", "door-2"):
        config = make_config(device)
        relay = TcpRelay("127.0.0.1", 3306).start()
        relays.append(relay)
        via = open_central(config, central_url.replace(":3306/", f":{relay.port}/"))
        replica = open_local_replica(config)
        # a guest code needs no face check: the face engine is never asked (object())
        door = Door(config, replica, factory=mock_factory(), camera=ReplayCamera([photo]),
                    face_engine=object(), synced=True)  # fmt: skip
        sites.append(DoorSite(door, replica, SyncWorker(config, via, replica), via))
    yield central, sites, relays
    for s, r in zip(sites, relays, strict=True):
        s.door.close()
        s.worker.stop()
        s.via.close()
        s.replica.close()
        r.cut()
    central.close()


def issue(central, *, uses: int, doors: list[str] | None) -> str:
    from appliance.security import PinHasher
    from appliance.store.guests import create_guest_code

    issued = create_guest_code(central, PinHasher(PEPPER), name="Guest", doors=doors,
                               max_uses=uses)  # fmt: skip
    return issued.keys


def listing(central) -> dict:
    from appliance.store.guests import list_codes

    (row,) = list_codes(central)
    return row


def test_two_doors_cut_off_spend_a_one_use_code_once_each_and_the_listing_shows_it(
    doors,
) -> None:
    central, (a, b), relays = doors
    keys = issue(central, uses=1, doors=["door-1", "door-2"])
    assert a.worker.run_once().ok and b.worker.run_once().ok  # both doors know the code
    for r in relays:
        r.cut()  # the network is gone for both
    assert a.type(keys) == ["guest_entry"]
    assert b.type(keys) == ["guest_entry"]  # door-2 cannot know door-1 spent it
    assert a.type(keys) == ["code_wrong"] and a.reasons() == ["guest_used_up"]
    assert not a.worker.run_once().ok  # a round through the cut relay fails, nothing changes
    for r in relays:
        r.restore()
    assert a.worker.run_once().ok and b.worker.run_once().ok
    row = listing(central)
    assert row["uses"] == 2 and row["over_limit"] == 1  # exceeded by 1 = doors - 1
    assert row["uses_by_door"] == {"door-1": 1, "door-2": 1}
    assert row["state"] == "used_up"
    assert b.type(keys) == ["code_wrong"] and b.reasons() == ["guest_used_up"]


def test_a_door_cut_off_spends_at_most_one_unconfirmed_use_of_a_multi_door_code(doors) -> None:
    central, (a, b), relays = doors
    keys = issue(central, uses=3, doors=None)  # every door
    assert a.worker.run_once().ok and b.worker.run_once().ok
    relays[0].cut()
    assert a.type(keys) == ["guest_entry"]
    assert a.type(keys) == ["code_wrong"] and a.reasons() == ["guest_unconfirmed"]
    relays[0].restore()
    assert a.worker.run_once().ok  # the use is pushed and confirmed
    assert a.type(keys) == ["guest_entry"]  # 2 of 3
    assert a.worker.run_once().ok
    assert b.worker.run_once().ok  # door-2 learns door-1's 2 uses
    assert b.type(keys) == ["guest_entry"]  # 3 of 3
    assert b.worker.run_once().ok and a.worker.run_once().ok
    assert a.type(keys) == ["code_wrong"] and a.reasons() == ["guest_used_up"]
    row = listing(central)
    assert row["uses"] == 3 and row["over_limit"] == 0


def test_a_one_door_code_keeps_its_exact_limit_with_no_network(doors) -> None:
    central, (a, _b), relays = doors
    keys = issue(central, uses=2, doors=["door-1"])
    assert a.worker.run_once().ok
    relays[0].cut()
    assert [a.type(keys), a.type(keys), a.type(keys)] == [
        ["guest_entry"], ["guest_entry"], ["code_wrong"]
    ]  # fmt: skip
    relays[0].restore()
    assert a.worker.run_once().ok
    row = listing(central)
    assert row["uses"] == 2 and row["over_limit"] == 0


def _rebuild_replica(site):
    """What open_local_replica does for a damaged replica (or a new SD card): the door starts
    again on an empty replica, filled by its first sync round."""
    from appliance.store.central import open_local_replica

    site.replica.close()
    path = site.config.replica_path
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return open_local_replica(site.config)


def test_a_rebuilt_replica_still_counts_the_doors_own_earlier_uses(site, hasher) -> None:
    """The door's uses before its replica was rebuilt are in the central database only; they
    count (as uses the replica does not hold), exactly once, and a used-up code stays used up."""
    from sqlalchemy import select

    from appliance.core import Record
    from appliance.door.recorder import Recorder
    from appliance.store.guests import ReplicaGuests, create_guest_code
    from appliance.store.models_policies import GuestUseTotal
    from appliance.store.sync import SyncWorker

    once = create_guest_code(site.central, hasher, name="Cleaner", doors=["door-1"], max_uses=1)
    thrice = create_guest_code(site.central, hasher, name="Painter", doors=["door-1"],
                               max_uses=3)  # fmt: skip
    assert site.worker.run_once().ok
    guests = ReplicaGuests(site.replica, hasher, "door-1", synced=True)
    rec = Recorder(site.config, site.replica, capture_snapshot=lambda: None)
    for keys in (once.keys, thrice.keys, thrice.keys):
        check = guests.check_code(keys[2:-1])
        assert check.ok
        rec.record(Record("guest_entry", reason="guest_code", alert=True,
                          detail={"guest_id": check.guest_id}))  # fmt: skip
    assert site.worker.run_once().ok  # the three uses are in the central database
    assert guests.check_code(once.keys[2:-1]).reason == "used_up"

    fresh = _rebuild_replica(site)
    try:
        worker = SyncWorker(site.config, site.central, fresh)
        assert worker.run_once().ok
        guests = ReplicaGuests(fresh, hasher, "door-1", synced=True)
        assert guests.check_code(once.keys[2:-1]).reason == "used_up"
        check = guests.check_code(thrice.keys[2:-1])
        assert check.ok  # 2 of 3 used before the rebuild: one left
        rec = Recorder(site.config, fresh, capture_snapshot=lambda: None)
        rec.record(Record("guest_entry", reason="guest_code", alert=True,
                          detail={"guest_id": check.guest_id}))  # fmt: skip
        assert guests.check_code(thrice.keys[2:-1]).reason == "used_up"
        assert worker.run_once().ok  # the new use is pushed: held here, not counted again
        with fresh.session() as s:
            totals = select(GuestUseTotal.guest_code_id, GuestUseTotal.others)
            others = {gid: n for gid, n in s.execute(totals)}
        assert others == {once.code.id: 1, thrice.code.id: 2}
        assert guests.check_code(thrice.keys[2:-1]).reason == "used_up"
    finally:
        fresh.close()
