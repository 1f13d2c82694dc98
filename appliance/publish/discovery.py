"""Owns Home Assistant MQTT discovery: one device-based discovery message for the door, the
state Home Assistant reads, the access/doorbell event payloads, and their removal.

Device-based discovery (Home Assistant 2024.11+): one retained message on
`<discovery_prefix>/device/<object id>/config` with the device (`device`), the origin
(`origin`), the shared availability and every entity under `components`, each with its
`platform` and `unique_id`. An empty retained message on that topic removes the device.

Duress is never announced: a grant after a duress code is published as a plain grant, and
the `duress` event itself is not published at all.
"""

from __future__ import annotations

import re
from typing import Any


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("doorward")
    except PackageNotFoundError:
        return "0"


ORIGIN = {"name": "Doorward", "sw_version": _version()}

# our event kinds -> the event types of the HA `event` entity "Access"; duress is absent
ACCESS_EVENT_TYPES = {
    "granted": "granted",
    "code_wrong": "denied",
    "denied_face": "denied",
    "denied_no_face": "denied",
    "denied_liveness": "denied",
    "forced": "forced",
    "held_open": "held_open",
    "lockout": "lockout",
    "unknown_person": "unknown_person",
}
EVENT_TYPES = sorted(set(ACCESS_EVENT_TYPES.values()))
SILENT_KINDS = frozenset({"duress"})  # never published, anywhere on the broker


def object_id(device_id: str) -> str:
    """The discovery topic's object id: only [a-zA-Z0-9_-] (a device id may contain '.')."""
    return "doorward_" + re.sub(r"[^A-Za-z0-9_-]", "_", device_id)


def discovery_topic(discovery_prefix: str, device_id: str) -> str:
    return f"{discovery_prefix.rstrip('/')}/device/{object_id(device_id)}/config"


def lock_state(state: dict[str, Any]) -> str:
    """LOCKED, UNLOCKED, or JAMMED when the door contact contradicts the relay (the relay is
    locked but the door stands open)."""
    if not state.get("locked", True):
        return "UNLOCKED"
    return "JAMMED" if state.get("door_open") else "LOCKED"


def discovery_payload(
    *,
    device_id: str,
    name: str,
    base: str,
    integration: str,
    with_sync: bool,
    code_format: str = r"^\d{6}$",
) -> dict[str, Any]:
    """The device discovery message. `base` is `<topic_prefix>/<device id>`; `integration`
    the remote-control principal name Home Assistant's commands carry."""
    oid = object_id(device_id)
    state = f"{base}/state"
    command = f"{base}/command"

    def uid(key: str) -> str:
        return f"{oid}_{key}"

    def command_payload(action: str, code: bool = False) -> str:
        extra = ', "code": "{{ code }}"' if code else ""
        return f'{{"action": "{action}", "integration": "{integration}"{extra}}}'

    components: dict[str, dict[str, Any]] = {
        "lock": {
            "platform": "lock",
            "unique_id": uid("lock"),
            "name": None,  # the device's own name: "Front door"
            "state_topic": state,
            "value_template": "{{ value_json.lock }}",
            "command_topic": command,
            # HA renders value (LOCK/UNLOCK) and the code typed in its lock dialog
            "command_template": (
                '{"action": "{{ value | lower }}", "integration": "'
                + integration
                + '", "code": "{{ code }}"}'
            ),
            "code_format": code_format,
            "payload_lock": "LOCK",
            "payload_unlock": "UNLOCK",
            "state_locked": "LOCKED",
            "state_unlocked": "UNLOCKED",
            "state_jammed": "JAMMED",
            "optimistic": False,
            "retain": False,
            "qos": 1,
        },
        "door": {
            "platform": "binary_sensor",
            "unique_id": uid("door"),
            "name": "Door",
            "device_class": "door",
            "state_topic": state,
            "value_template": "{{ 'ON' if value_json.door_open else 'OFF' }}",
        },
        "tamper": {
            "platform": "binary_sensor",
            "unique_id": uid("tamper"),
            "name": "Tamper",
            "device_class": "tamper",
            "state_topic": state,
            "value_template": "{{ 'ON' if value_json.tamper else 'OFF' }}",
        },
        "lockdown": {
            "platform": "binary_sensor",
            "unique_id": uid("lockdown"),
            "name": "Lockdown",
            "icon": "mdi:shield-lock",
            "state_topic": state,
            "value_template": "{{ 'ON' if value_json.lockdown else 'OFF' }}",
        },
        "lockdown_on": {
            "platform": "button",
            "unique_id": uid("lockdown_on"),
            "name": "Lockdown on",
            "icon": "mdi:shield-lock",
            "command_topic": command,
            "payload_press": command_payload("lockdown_on"),
            "retain": False,
            "qos": 1,
        },
        "snapshot_now": {
            "platform": "button",
            "unique_id": uid("snapshot_now"),
            "name": "Take snapshot",
            "icon": "mdi:camera",
            "command_topic": command,
            "payload_press": command_payload("snapshot"),
            "retain": False,
            "qos": 1,
        },
        "access": {
            "platform": "event",
            "unique_id": uid("access"),
            "name": "Access",
            "state_topic": f"{base}/ha/access",
            "event_types": EVENT_TYPES,
        },
        "doorbell": {
            "platform": "event",
            "unique_id": uid("doorbell"),
            "name": "Doorbell",
            "device_class": "doorbell",
            "state_topic": f"{base}/ha/doorbell",
            "event_types": ["ring"],
        },
        "snapshot": {
            "platform": "image",
            "unique_id": uid("snapshot"),
            "name": "Latest snapshot",
            "image_topic": f"{base}/snapshot",
            "content_type": "image/jpeg",
        },
        "alerts_pending": {
            "platform": "sensor",
            "unique_id": uid("alerts_pending"),
            "name": "Alerts waiting",
            "state_topic": state,
            "value_template": "{{ value_json.alerts_pending }}",
            "state_class": "measurement",
            "entity_category": "diagnostic",
            "icon": "mdi:email-alert",
        },
    }
    if with_sync:
        components["sync_lag"] = {
            "platform": "sensor",
            "unique_id": uid("sync_lag"),
            "name": "Sync lag",
            "device_class": "duration",
            "unit_of_measurement": "s",
            "state_topic": state,
            "value_template": "{{ value_json.sync_lag_s }}",
            "state_class": "measurement",
            "entity_category": "diagnostic",
        }
    return {
        "device": {
            "identifiers": [oid],
            "name": name,
            "manufacturer": "Doorward",
            "model": "Doorward door (Raspberry Pi)",
            "sw_version": ORIGIN["sw_version"],
            "serial_number": device_id,
        },
        "origin": dict(ORIGIN),
        "availability_topic": f"{base}/availability",
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
        "components": components,
    }


def access_event(event: dict[str, Any], user_name: str | None) -> dict[str, Any] | None:
    """The `event` entity payload for a recorded event (None when it is not announced)."""
    kind = event.get("event")
    etype = ACCESS_EVENT_TYPES.get(str(kind))
    if etype is None:
        return None
    detail = event.get("detail") or {}
    method = "keypad+face"
    if event.get("reason") == "remote":
        method = str(detail.get("method", "remote"))
    out: dict[str, Any] = {
        "event_type": etype,
        "kind": kind,
        "time": event.get("ts"),
        "user_number": event.get("user_number"),
        "user_name": user_name,
        "method": method if etype == "granted" else None,
        "distance": event.get("distance"),
        "reason": event.get("reason"),
    }
    if etype == "granted" and method != "keypad+face":
        out["by"] = detail.get("by")
    return out


def scrub(event: dict[str, Any]) -> dict[str, Any] | None:
    """The event as it may leave the door: None for a silent kind; a grant's `duress` flag
    removed (the grant after a duress code looks like any other grant)."""
    if event.get("event") in SILENT_KINDS:
        return None
    detail = event.get("detail")
    if isinstance(detail, dict) and "duress" in detail:
        event = {**event, "detail": {k: v for k, v in detail.items() if k != "duress"}}
    return event
