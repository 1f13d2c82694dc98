"""A door double for remote-control tests: records what remote control asked of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakeDoor:
    device_id: str = "door-t"
    lockdown: bool = False
    unlocks: list[dict[str, str]] = field(default_factory=list)
    audits: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)
    lockdowns: list[tuple[bool, str, str]] = field(default_factory=list)

    @property
    def lockdown_active(self) -> bool:
        return self.lockdown

    def remote_unlock(self, *, by: str, source: str, method: str) -> None:
        self.unlocks.append({"by": by, "source": source, "method": method})

    def set_lockdown(self, on: bool, *, by: str, source: str) -> None:
        self.lockdown = on
        self.lockdowns.append((on, by, source))

    def snapshot_now(self, *, by: str, source: str) -> str | None:
        return "snapshots/2026/12/02/x.jpg"

    def status(self) -> dict[str, Any]:
        return {"device_id": self.device_id, "locked": True, "door_open": False}

    def audit(self, kind: str, *, reason: str | None, detail: dict[str, Any]) -> None:
        self.audits.append((kind, reason, detail))
