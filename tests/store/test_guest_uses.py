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
