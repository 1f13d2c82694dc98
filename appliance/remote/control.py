"""Owns remote commands, whatever carried them (MQTT, SMS): who may ask, the one-time code,
the rate limit, the door call and the audit record. Transports only parse and answer.

Rules:
- the principal must be known and active (an MQTT integration by name, an SMS owner by number);
- unlock needs `may_unlock` and a one-time code; lockdown off needs a code; over SMS every
  command needs one (a spoofed sender alone can do nothing);
- attempts are rate-limited per principal and failed codes block it for a while;
- during a lockdown an unlock is refused;
- every command, accepted or refused, is recorded as an access event with who and from where
  (an unlock as the `granted` record of the door's own grant path).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select

from appliance.store.db import Database
from appliance.store.models_remote import RemotePrincipal

from .codes import CodeBook, Throttle

log = logging.getLogger(__name__)

ACTIONS = ("unlock", "lockdown_on", "lockdown_off", "snapshot", "status")
# refused records of one principal (or unknown sender) at most this often while throttled
REFUSAL_AUDIT_EVERY_S = 60.0


class DoorPort(Protocol):
    """What remote control needs of the door (appliance.service.Door implements it)."""

    device_id: str

    @property
    def lockdown_active(self) -> bool: ...

    def remote_unlock(self, *, by: str, source: str, method: str) -> None: ...

    def set_lockdown(self, on: bool, *, by: str, source: str) -> None: ...

    def snapshot_now(self, *, by: str, source: str) -> str | None: ...

    def status(self) -> dict[str, Any]: ...

    def audit(self, kind: str, *, reason: str | None, detail: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Request:
    action: str
    transport: str  # "mqtt" | "sms"
    principal: str  # an integration's name, or the SMS sender's number
    source: str  # "mqtt:<topic>" | "sms:<number>"
    code: str | None = None  # TOTP
    ts: object = None  # signed command: unix time, nonce, hex HMAC
    nonce: object = None
    sig: object = None


@dataclass(frozen=True)
class Reply:
    ok: bool
    text: str
    reason: str | None = None
    answer: bool = True  # False: say nothing back (unknown SMS sender)


def normalise_number(number: str) -> str:
    """'+44 7700-900123' -> '+447700900123' (digits and one leading +)."""
    number = number.strip()
    plus = number.startswith("+")
    digits = re.sub(r"\D", "", number)
    return ("+" if plus else "") + digits


class RemoteControl:
    def __init__(
        self,
        door: DoorPort,
        db: Database,
        codes: CodeBook,
        *,
        throttle: Throttle | None = None,
        clock: Callable[[], float] = time.monotonic,
        describe_snapshot: Callable[[str | None], str] | None = None,
    ) -> None:
        self.door = door
        self.db = db
        self.codes = codes
        self.clock = clock
        self.throttle = throttle or Throttle(clock=clock)
        self._refusal_audited: dict[str, float] = {}
        self.describe_snapshot = describe_snapshot or (
            lambda path: f"saved on the door as {path}" if path else "no photo (camera failed)"
        )

    # ---- lookup ---------------------------------------------------------------------------
    def _principal(self, req: Request) -> RemotePrincipal | None:
        with self.db.session() as s:
            if req.transport == "sms":
                q = select(RemotePrincipal).where(
                    RemotePrincipal.kind == "owner",
                    RemotePrincipal.phone == normalise_number(req.principal),
                )
            else:
                q = select(RemotePrincipal).where(
                    RemotePrincipal.kind == "integration", RemotePrincipal.name == req.principal
                )
            p = s.scalar(q)
            if p is not None:
                s.expunge(p)
        return p if p is not None and p.active else None

    # ---- the one entry point --------------------------------------------------------------
    def handle(self, req: Request) -> Reply:
        if req.action not in ACTIONS:
            return self._refuse(req, None, "unknown_command", answer=False)
        principal = self._principal(req)
        if principal is None:
            # an unknown integration or a number not on the owner list: nothing is done and,
            # over SMS, nothing is sent back (a spoofed number must not make the door text);
            # a flood of them is throttled like anyone else (one audit record a minute)
            answer = req.transport != "sms"
            if not self.throttle.allow(f"unknown:{req.transport}"):
                return self._refuse(req, None, "rate_limited", answer=answer,
                                    audit_key=f"unknown:{req.transport}")  # fmt: skip
            return self._refuse(req, None, "unknown_principal", answer=answer)
        key = f"{principal.kind}:{principal.id}"
        if not self.throttle.allow(key):
            return self._refuse(req, principal, "rate_limited")
        if req.action == "unlock" and not principal.may_unlock:
            return self._refuse(req, principal, "not_allowed_to_unlock")
        needs_code = req.transport == "sms" or req.action in ("unlock", "lockdown_off")
        if needs_code:
            if req.sig is not None:
                why = self.codes.use_signed(principal, req.action, req.ts, req.nonce, req.sig)
            elif req.code is not None:
                why = self.codes.use_totp(principal, req.code)
            else:
                why = "code_required"
            if why is not None:
                self.throttle.failed(key)
                return self._refuse(req, principal, why)
        return self._act(req, principal)

    def refuse(self, req: Request, reason: str) -> Reply:
        """Refuse a request the transport already found unusable (retained, malformed)."""
        return self._refuse(req, None, reason)

    def _act(self, req: Request, principal: RemotePrincipal) -> Reply:
        by, source, door = principal.name, req.source, self.door
        detail: dict[str, Any] = {"command": req.action, "by": by, "source": source,
                                  "via": req.transport}  # fmt: skip
        if req.action == "unlock":
            if door.lockdown_active:
                return self._refuse(req, principal, "lockdown_active")
            door.remote_unlock(by=by, source=source, method=req.transport)
            log.warning("event=remote_unlock by=%s source=%s", by, source)
            return Reply(True, "UNLOCK: one pulse given")  # the granted record audits it
        if req.action in ("lockdown_on", "lockdown_off"):
            on = req.action == "lockdown_on"
            door.set_lockdown(on, by=by, source=source)
            door.audit("remote_command", reason=req.action, detail=detail)
            return Reply(True, f"LOCKDOWN {'ON' if on else 'OFF'}: done")
        if req.action == "snapshot":
            path = door.snapshot_now(by=by, source=source)
            detail["snapshot"] = path
            door.audit("remote_command", reason=req.action, detail=detail)
            return Reply(True, f"SNAPSHOT: {self.describe_snapshot(path)}")
        st = door.status()
        door.audit("remote_command", reason=req.action, detail=detail)
        return Reply(True, status_text(st, door.lockdown_active))

    def _refuse(
        self, req: Request, principal: RemotePrincipal | None, reason: str, *,
        answer: bool = True, audit_key: str | None = None,
    ) -> Reply:  # fmt: skip
        who: str = principal.name if principal is not None else req.principal
        log.warning("event=remote_refused command=%s by=%r source=%s reason=%s",
                    req.action, who, req.source, reason)  # fmt: skip
        key = audit_key or f"{req.transport}:{who}"
        now = self.clock()
        throttled = reason == "rate_limited"
        last = self._refusal_audited.get(key)
        if not throttled or last is None or now - last >= REFUSAL_AUDIT_EVERY_S:
            if throttled:
                self._refusal_audited[key] = now
            self.door.audit(
                "remote_refused",
                reason=reason,
                detail={"command": req.action[:32], "by": str(who)[:64], "source": req.source[:96],
                        "via": req.transport, "known": principal is not None},
            )  # fmt: skip
        return Reply(False, f"{req.action.upper().replace('_', ' ')}: refused ({reason})", reason,
                     answer)  # fmt: skip


def status_text(st: dict[str, Any], lockdown: bool) -> str:
    lock = "locked" if st.get("locked") else "UNLOCKED"
    door = "door open" if st.get("door_open") else "door closed"
    parts = [f"STATUS {st.get('device_id', '')}: {lock}, {door}",
             f"lockdown {'ON' if lockdown else 'off'}"]  # fmt: skip
    if st.get("lockout_remaining_s"):
        parts.append(f"keypad locked out {st['lockout_remaining_s']:.0f}s")
    if "alerts_pending" in st:
        parts.append(f"alerts pending {st['alerts_pending']}")
    return ", ".join(parts)
