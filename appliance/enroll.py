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
from appliance.store.limits import MAX_TEMPLATES
from appliance.store.models import FaceTemplate, User

log = logging.getLogger(__name__)

MIN_PHOTOS = 1
MAX_PHOTOS = MAX_TEMPLATES  # 1 to 5 photos per user, everywhere: CLI, admin page, store
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


def check_photo_count(new: int, existing: int = 0) -> None:
    """1 to MAX_PHOTOS photos per user, counting the ones the user already has."""
    if new < MIN_PHOTOS:
        raise EnrollError("at least one photo is needed")
    if new + existing > MAX_PHOTOS:
        have = f" and already has {existing}" if existing else ""
        raise EnrollError(
            f"{new} new photo(s) given{have}: a user has {MIN_PHOTOS} to {MAX_PHOTOS} photos"
            + ("; remove one first" if existing else "")
        )


@dataclass(frozen=True)
class Gallery:
    """Every stored template with its owner, for the one-person checks and the margins."""

    vectors: np.ndarray  # (n, 128) float64
    user_ids: np.ndarray  # (n,) int64
    names: dict[int, tuple[int, str]]  # user id -> (number, name)

    def of(self, user_id: int) -> np.ndarray:
        return self.vectors[self.user_ids == user_id]

    def without(self, user_id: int | None) -> Gallery:
        if user_id is None:
            return self
        keep = self.user_ids != user_id
        return Gallery(self.vectors[keep], self.user_ids[keep], self.names)

    def label(self, user_id: int) -> str:
        number, name = self.names.get(user_id, (user_id, "?"))
        return f"user {number} {name}"


def load_gallery(db: Database) -> Gallery:
    with db.session() as s:
        rows = s.execute(select(FaceTemplate.user_id, FaceTemplate.encoding)).all()
        names = {u.id: (u.number, u.name) for u in s.scalars(select(User))}
    if not rows:
        return Gallery(np.empty((0, 128)), np.empty(0, dtype=np.int64), names)
    vectors = np.stack([np.frombuffer(enc, dtype="<f4").astype(np.float64) for _, enc in rows])
    return Gallery(vectors, np.array([uid for uid, _ in rows], dtype=np.int64), names)


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of a (n, 128) and b (m, 128): (n, m)."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(d2, 0.0, None))


def check_one_person(
    new: Sequence[tuple[str, np.ndarray]],
    *,
    threshold: float,
    existing: Sequence[tuple[str, np.ndarray]] = (),
    others: Gallery | None = None,
) -> None:
    """One user is one person. Raises EnrollError naming the photos and distances when
    - two of the user's photos (new ones, or a new one and an existing template) are further
      apart than `threshold`: they are not the same face as far as the door can tell;
    - a new photo is closer to another enrolled user than to the user's own other photos (or,
      for a user's only photo, within `threshold` of another user: that person would open
      the door with this user's code).
    `others` is the gallery of every other user (without this user's own templates)."""
    labels = [n for n, _ in existing] + [n for n, _ in new]
    vecs = np.array([v for _, v in existing] + [v for _, v in new], dtype=np.float64)
    vecs = vecs.reshape(-1, 128)
    first_new = len(existing)
    d = _dist(vecs, vecs)
    apart = []
    for i in range(first_new, len(labels)):
        for j in range(i):
            if d[i, j] > threshold:
                apart.append(f"{labels[j]} ~ {labels[i]}: {d[i, j]:.3f}")
    if apart:
        raise EnrollError(
            "these photos do not show one person (distance above the threshold "
            f"{threshold:.2f}): " + "; ".join(apart) + ". Enroll each person as their own user."
        )
    if others is None or not len(others.vectors):
        return
    to_others = _dist(vecs[first_new:], others.vectors)
    for k, i in enumerate(range(first_new, len(labels))):
        j = int(np.argmin(to_others[k]))
        other_d, who = float(to_others[k, j]), others.label(int(others.user_ids[j]))
        own = np.delete(d[i], i)
        if own.size:
            own_d = float(own.min())
            if other_d < own_d:
                raise EnrollError(
                    f"{labels[i]} is closer to {who} (distance {other_d:.3f}) than to this "
                    f"user's other photos ({own_d:.3f}); a photo must show the user, not "
                    "someone else"
                )
        elif other_d <= threshold:
            raise EnrollError(
                f"{labels[i]} matches {who} (distance {other_d:.3f}, threshold "
                f"{threshold:.2f}): that person would pass this user's face check. Use a "
                "photo of this user (or add more photos of them)"
            )


def security_margins(gallery: Gallery, user_ids: Sequence[int]) -> dict[int, tuple[float, int]]:
    """For each of `user_ids` that has templates: (distance to the nearest template of another
    user, that user's id). Users alone in the gallery get no entry."""
    out: dict[int, tuple[float, int]] = {}
    for uid in user_ids:
        mine = gallery.of(uid)
        rest = gallery.without(uid)
        if not len(mine) or not len(rest.vectors):
            continue
        d = _dist(mine, rest.vectors).min(axis=0)
        j = int(np.argmin(d))
        out[uid] = (float(d[j]), int(rest.user_ids[j]))
    return out


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
    check_photo_count(len(photos))
    images = []
    for photo in photos:
        try:
            images.append((str(photo), load_image(photo)))
        except FaceError as exc:
            raise EnrollError(str(exc)) from None
    templates = encode_images(face_engine, images, progress=progress)
    check_templates(db, face_engine, templates)
    return create_user(db, hasher, templates=templates, role=role, **fields)


def check_templates(
    db: Database, face_engine: object, templates: Sequence[FaceTemplate], user_id: int | None = None
) -> None:
    """The one-person rules (check_one_person) for new templates of a new user, or of user
    `user_id` (whose stored templates count as its other photos), against everyone else."""
    threshold = float(face_engine.config.threshold)  # type: ignore[attr-defined]
    gallery = load_gallery(db)
    existing = []
    if user_id is not None:
        existing = [(f"stored photo {i}", v) for i, v in enumerate(gallery.of(user_id), 1)]
    check_one_person(
        [(t.source or f"photo {i}", t.vector()) for i, t in enumerate(templates, 1)],
        threshold=threshold,
        existing=existing,
        others=gallery.without(user_id),
    )


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
    """Store a validated user with its encoded templates (1 to MAX_PHOTOS) in one transaction."""
    check_photo_count(len(templates))
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
    check_photo_count(len(images))
    templates = encode_images(face_engine, images, progress=progress)
    check_templates(db, face_engine, templates)
    return create_user(db, hasher, templates=templates, **fields)
