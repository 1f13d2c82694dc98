"""Owns enrolling a user: validate every photo first, then store user and templates at once."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import select

from appliance.config import LONGEST_CODE
from appliance.security import PinHasher, validate_pin
from appliance.store.db import Database
from appliance.store.models import FaceTemplate, User

log = logging.getLogger(__name__)

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_RE = re.compile(r"^\+?[0-9 ()-]{6,20}$")


class EnrollError(ValueError):
    """Enrollment refused; the message names the field or the photo."""


@dataclass(frozen=True)
class EnrolledUser:
    id: int
    number: int
    name: str
    templates: int


def validate_contact(email: str | None, phone: str | None) -> None:
    if email is not None and not EMAIL_RE.match(email):
        raise EnrollError(f"email {email!r} is not an email address")
    if phone is not None and not PHONE_RE.match(phone):
        raise EnrollError(f"phone {phone!r} is not a phone number (digits, +, spaces)")


def enroll_user(
    db: Database,
    face_engine: object,
    hasher: PinHasher,
    *,
    number: int,
    name: str,
    pin: str,
    photos: Sequence[Path],
    duress_pin: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    progress: Callable[[str], None] | None = None,
    max_code_length: int = LONGEST_CODE,
    role: str = "resident",
) -> EnrolledUser:
    """Enroll from photo files: every field and every photo is checked before anything is
    stored; an error names the field or the file."""
    from appliance.vision import FaceError, load_image

    fields = dict(
        number=number, name=name, pin=pin, duress_pin=duress_pin, email=email, phone=phone
    )
    validate_user_fields(db, **fields, max_code_length=max_code_length)
    if not photos:
        raise EnrollError("at least one --photo is needed")
    images = []
    for photo in photos:
        try:
            images.append((str(photo), load_image(photo)))
        except FaceError as exc:
            raise EnrollError(str(exc)) from None
    templates = encode_images(face_engine, images, progress=progress)
    return create_user(db, hasher, templates=templates, role=role, **fields)


# ---- in-memory images (the admin page's uploads and camera captures) -------------------------
def validate_user_fields(
    db: Database,
    *,
    number: int,
    name: str,
    pin: str,
    duress_pin: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    max_code_length: int = LONGEST_CODE,
) -> None:
    """The checks enroll_user makes before any photo: raises EnrollError naming the field."""
    if not 1 <= number <= 999_999_999:
        raise EnrollError(f"user number must be 1 to 999999999, got {number}")
    if not name.strip():
        raise EnrollError("name must not be empty")
    try:
        validate_pin(pin)
        if duress_pin is not None:
            validate_pin(duress_pin, "duress PIN")
    except ValueError as exc:
        raise EnrollError(str(exc)) from None
    if duress_pin is not None and duress_pin == pin:
        raise EnrollError("duress PIN must differ from the PIN")
    check_code_length(number, pin, max_code_length)
    if duress_pin is not None:
        check_code_length(number, duress_pin, max_code_length, "duress PIN")
    validate_contact(email, phone)
    with db.session() as s:
        if s.scalars(select(User.id).where(User.number == number)).first() is not None:
            raise EnrollError(f"user number {number} already exists")


def check_code_length(number: int, pin: str, max_code_length: int, what: str = "PIN") -> None:
    """The keypad must take the whole code `<number>*<pin>` (access.max_code_length keys)."""
    keys = len(str(number)) + 1 + len(pin)
    if keys > max_code_length:
        raise EnrollError(
            f"user number {number} with a {len(pin)}-digit {what} is a code of {keys} keys; "
            f"the keypad takes at most {max_code_length} (access.max_code_length)"
        )


def check_pin_change(
    hasher: PinHasher,
    *,
    pin: str | None,
    duress_pin: str | None,
    pin_hash: str | None,
    duress_pin_hash: str | None,
) -> None:
    """An edit may set a new PIN, a new duress PIN, or both: neither may equal the other, new
    or kept (a PIN equal to the duress PIN silently disables duress). Raises EnrollError."""
    if pin and duress_pin and pin == duress_pin:
        raise EnrollError("duress PIN must differ from the PIN")
    if pin and not duress_pin and duress_pin_hash and hasher.verify(duress_pin_hash, pin):
        raise EnrollError("PIN must differ from the user's duress PIN")
    if duress_pin and not pin and pin_hash and hasher.verify(pin_hash, duress_pin):
        raise EnrollError("duress PIN must differ from the user's PIN")


def encode_images(
    face_engine: object,
    images: Sequence[tuple[str, np.ndarray]],
    *,
    progress: Callable[[str], None] | None = None,
) -> list[FaceTemplate]:
    """One unsaved FaceTemplate per (name, RGB image); EnrollError names the first bad photo."""
    from appliance.vision import FaceError

    if not images:
        raise EnrollError("at least one photo is needed")
    templates = []
    for i, (label, image) in enumerate(images, 1):
        if progress:
            progress(f"encoding photo {i}/{len(images)}: {label}")
        try:
            result = face_engine.enroll(image, name=label)  # type: ignore[attr-defined]
        except FaceError as exc:
            raise EnrollError(str(exc)) from None
        templates.append(
            FaceTemplate(
                encoding=FaceTemplate.pack(result.encoding),
                quality=float(result.quality),
                source=label[:255],
            )
        )
    return templates


def create_user(
    db: Database,
    hasher: PinHasher,
    *,
    number: int,
    name: str,
    pin: str,
    templates: Sequence[FaceTemplate],
    duress_pin: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    role: str = "resident",
    active: bool = True,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> EnrolledUser:
    """Store a validated user with its encoded templates in one transaction."""
    from sqlalchemy.exc import IntegrityError

    user = User(
        number=number,
        name=name.strip(),
        email=email,
        phone=phone,
        pin_hash=hasher.hash(pin),
        duress_pin_hash=hasher.hash(duress_pin) if duress_pin else None,
        role=role,
        active=active,
        valid_from=valid_from,
        valid_until=valid_until,
        templates=list(templates),
    )
    try:
        with db.session() as s:
            s.add(user)
    except IntegrityError:
        raise EnrollError(f"user number {number} already exists") from None
    log.info("event=enrolled user=%d templates=%d", number, len(templates))
    return EnrolledUser(user.id, number, user.name, len(templates))


def enroll_images(
    db: Database,
    face_engine: object,
    hasher: PinHasher,
    *,
    number: int,
    name: str,
    pin: str,
    images: Sequence[tuple[str, np.ndarray]],
    duress_pin: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    progress: Callable[[str], None] | None = None,
    max_code_length: int = LONGEST_CODE,
) -> EnrolledUser:
    """Like enroll_user for images already in memory, as (label, RGB uint8 array) pairs."""
    fields = dict(
        number=number, name=name, pin=pin, duress_pin=duress_pin, email=email, phone=phone
    )
    validate_user_fields(db, **fields, max_code_length=max_code_length)
    templates = encode_images(face_engine, images, progress=progress)
    return create_user(db, hasher, templates=templates, **fields)
