"""Events timeline: filtering by door (device id), alone and with other filters, and in the CSV."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from appliance.store.models import AccessEvent, Device


def _events(db) -> None:
    day = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
    rows = [
        ("front-door", "granted", 1),
        ("front-door", "denied_face", 2),
        ("front-door", "granted", 3),
        ("garage", "granted", 1),
        ("garage", "denied_pin", 4),
        ("back-door", "granted", 5),
    ]
    with db.session() as s:
        s.add(Device(id="front-door", name="Front door"))
        s.add(Device(id="shed", name="Shed"))  # registered, no events yet
        for i, (door, kind, user) in enumerate(rows):
            s.add(AccessEvent(device_id=door, kind=kind, user_number=user,
                              ts=day.replace(minute=i)))  # fmt: skip


def _doors_shown(html: str) -> list[str]:
    """The door of each event, by its name where it has one (front-door is "Front door")."""
    return re.findall(r'<div class="muted">[^<]*UTC · ([\w -]+?)(?: · |</div>)', html)


def test_timeline_filters_by_door(client, db) -> None:
    _events(db)
    everything = client.get("/events").text
    assert sorted(_doors_shown(everything)) == sorted(
        ["Front door"] * 3 + ["garage"] * 2 + ["back-door"]
    )
    assert _doors_shown(client.get("/events?door=front-door").text) == ["Front door"] * 3
    assert _doors_shown(client.get("/events?door=garage").text) == ["garage"] * 2
    page = client.get("/events?door=front-door&kind=granted").text
    assert _doors_shown(page) == ["Front door"] * 2
    assert _doors_shown(client.get("/events?door=garage&user=1").text) == ["garage"]
    page = client.get("/events?door=nowhere").text
    assert _doors_shown(page) == [] and "No events match these filters." in page
    # the door choice lists every door with events or registered, by name where known
    page = client.get("/events?door=garage").text
    assert '<option value="front-door" >Front door (front-door)</option>' in page
    assert '<option value="garage" selected>garage</option>' in page
    assert '<option value="shed" >Shed (shed)</option>' in page
    assert '<option value="back-door" >back-door</option>' in page
    # the CSV link keeps the door, and the CSV itself is filtered by it
    assert 'href="/events.csv?door=garage"' in page
    lines = client.get("/events.csv?door=garage").text.strip().splitlines()
    assert len(lines) == 3 and all(",garage," in line for line in lines[1:])
