"""Owns enrolling a user: validate every photo first, then store user and templates at once."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

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
) -> EnrolledUser:
    from appliance.vision import FaceError, load_image

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
    validate_contact(email, phone)
    if not photos:
        raise EnrollError("at least one --photo is needed")
    with db.session() as s:
        if s.scalars(select(User.id).where(User.number == number)).first() is not None:
            raise EnrollError(f"user number {number} already exists")

    templates = []
    for i, photo in enumerate(photos, 1):
        if progress:
            progress(f"encoding photo {i}/{len(photos)}: {photo}")
        try:
            image = load_image(photo)
            result = face_engine.enroll(image)  # type: ignore[attr-defined]
        except FaceError as exc:
            raise EnrollError(f"{photo}: {exc}") from None
        templates.append(
            FaceTemplate(
                encoding=FaceTemplate.pack(result.encoding),
                quality=float(result.quality),
                source=Path(photo).name[:255],
            )
        )
    user = User(
        number=number,
        name=name.strip(),
        email=email,
        phone=phone,
        pin_hash=hasher.hash(pin),
        duress_pin_hash=hasher.hash(duress_pin) if duress_pin else None,
        templates=templates,
    )
    with db.session() as s:
        s.add(user)
    log.info("event=enrolled user=%d templates=%d", number, len(templates))
    return EnrolledUser(user.id, number, user.name, len(templates))
