"""The door as remote control sees it (appliance.remote.control.DoorPort): every command goes
through the door's own paths, never to the relay directly.

- an unlock is a `RemoteUnlock` event on the door loop: the state machine gives the keypad
  grant's pulse (relay first, then the `granted` record with who and from where);
- lockdown is `door.set_lockdown(on, by=, source=)` / `door.lockdown_active`;
- a snapshot is taken now and recorded as a `snapshot` event (published like any other);
- audit records are written by the loop thread like heartbeats (ServiceRecord).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from appliance.core import Record, RemoteUnlock, ServiceRecord

log = logging.getLogger(__name__)


class RemoteDoor:
    def __init__(self, door: Any, extra_state: Callable[[], dict[str, Any]] | None = None):
        self.door = door
        self.device_id: str = door.device_id
        self.extra_state = extra_state

    @property
    def lockdown_active(self) -> bool:
        return bool(self.door.lockdown_active)

    def remote_unlock(self, *, by: str, source: str, method: str) -> None:
        self.door.post(RemoteUnlock(by=by, source=source, method=method))

    def set_lockdown(self, on: bool, *, by: str, source: str) -> None:
        self.door.set_lockdown(on, by=by, source=source)

    def snapshot_now(self, *, by: str, source: str) -> str | None:
        path = self.door.faces.capture_snapshot()
        self.door.post(ServiceRecord(Record("snapshot", snapshot=path,
                                            detail={"by": by, "source": source})))  # fmt: skip
        return path

    def audit(self, kind: str, *, reason: str | None, detail: dict[str, Any]) -> None:
        self.door.post(ServiceRecord(Record(kind, reason=reason, detail=detail)))

    def status(self) -> dict[str, Any]:
        st = dict(self.door.status())
        st.pop("entered", None)  # how many keys someone is typing is nobody's business
        st["tamper"] = bool(self.door.board.tamper_alarm)
        st["lockdown"] = self.lockdown_active
        if self.extra_state is not None:
            try:
                st.update(self.extra_state())
            except Exception:
                log.exception("event=extra_state_failed")
        return st
