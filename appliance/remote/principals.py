"""Owns the list of who may command the door remotely (admin page and CLI share it)."""

from __future__ import annotations

import re

from sqlalchemy import select

from appliance.store.db import Database
from appliance.store.models_remote import RemotePrincipal

from .codes import new_label
from .control import normalise_number

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PHONE_RE = re.compile(r"^\+[0-9]{6,20}$")


class PrincipalError(ValueError):
    """Bad input for a principal; the message names the field."""


def add_principal(
    db: Database, *, kind: str, name: str, phone: str | None = None, may_unlock: bool = False
) -> RemotePrincipal:
    """Add an MQTT integration (kind "integration") or an SMS owner (kind "owner", with an
    international number). Returns the stored row (its label derives the secrets)."""
    if kind not in ("integration", "owner"):
        raise PrincipalError(f"kind: must be integration or owner, not {kind!r}")
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise PrincipalError("name: 1-64 letters, digits, . _ - (no spaces)")
    number = None
    if kind == "owner":
        number = normalise_number(phone or "")
        if not PHONE_RE.match(number):
            raise PrincipalError(
                "phone: an international number starting with + and 6-20 digits, "
                "as the modem reports the sender (e.g. +447700900123)"
            )
    elif phone:
        raise PrincipalError("phone: only an SMS owner has a phone number")
    with db.session() as s:
        if s.scalar(select(RemotePrincipal).where(RemotePrincipal.name == name)) is not None:
            raise PrincipalError(f"name: {name!r} already exists")
        if number and s.scalar(select(RemotePrincipal).where(RemotePrincipal.phone == number)):
            raise PrincipalError(f"phone: {number} is already an owner number")
        row = RemotePrincipal(
            kind=kind, name=name, phone=number, label=new_label(), may_unlock=may_unlock,
            active=True,
        )  # fmt: skip
        s.add(row)
        s.flush()
        s.expunge(row)
    return row


def list_principals(db: Database) -> list[RemotePrincipal]:
    with db.session() as s:
        rows = list(s.scalars(select(RemotePrincipal).order_by(RemotePrincipal.kind,
                                                               RemotePrincipal.name)))  # fmt: skip
        s.expunge_all()
    return rows


def get_principal(db: Database, principal_id: int) -> RemotePrincipal | None:
    with db.session() as s:
        row = s.get(RemotePrincipal, principal_id)
        if row is not None:
            s.expunge(row)
    return row


def update_principal(
    db: Database, principal_id: int, *, may_unlock: bool | None = None,
    active: bool | None = None, new_secret: bool = False,
) -> RemotePrincipal:  # fmt: skip
    """Change what a principal may do; `new_secret` re-enrols it (the old code stops working)."""
    with db.session() as s:
        row = s.get(RemotePrincipal, principal_id)
        if row is None:
            raise PrincipalError(f"no remote principal {principal_id}")
        if may_unlock is not None:
            row.may_unlock = may_unlock
        if active is not None:
            row.active = active
        if new_secret:
            row.label = new_label()
            row.last_step = None
        s.flush()
        s.expunge(row)
    return row


def delete_principal(db: Database, principal_id: int) -> None:
    with db.session() as s:
        row = s.get(RemotePrincipal, principal_id)
        if row is None:
            raise PrincipalError(f"no remote principal {principal_id}")
        s.delete(row)
