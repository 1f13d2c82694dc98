"""Owns the users pages: list/search, add with photo enrollment, edit, deactivate, delete."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from sqlalchemy import func, or_, select, update

from appliance.enroll import (
    MAX_PHOTOS,
    EnrollError,
    check_code_length,
    check_photo_count,
    check_pin_change,
    check_templates,
    create_user,
    encode_images,
    load_gallery,
    security_margins,
    validate_contact,
    validate_user_fields,
)
from appliance.security import validate_pin
from appliance.store.models import AccessEvent, FaceTemplate, User, utcnow
from appliance.store.models_sync import UserAccess
from appliance.store.snapshots import SnapshotStore

from .access import (
    DAY_NAMES,
    MAX_RULES_PER_USER,
    AccessFormError,
    describe,
    describe_days,
    describe_times,
    hhmm,
    known_doors,
    parse_rule,
    rules_of,
    summarize,
)
from .common import (
    PAGE_SIZE,
    audit,
    face_engine,
    file_in,
    get_config,
    get_db,
    get_door,
    page_arg,
    parse_local_dt,
    pin_hasher,
)
from .uploads import Limits, UploadError, encode_jpeg, iter_uploads

bp = Blueprint("users", __name__, url_prefix="/users")

USER_ROLES = ("resident", "guest", "service", "admin")  # admin: let in during a lockdown


class FormError(ValueError):
    pass


def _limits() -> Limits:
    a = get_config().admin
    return Limits(max_pixels=a.max_image_pixels, max_side=a.max_image_side)


def _photo_dir(user_id: int) -> Path:
    return get_config().data_dir / "enroll" / str(int(user_id))


def _get_user(user_id: int) -> User:
    with get_db().session() as s:
        user = s.get(User, user_id)
        if user is None:
            abort(404, f"no user with id {user_id}")
        user.templates  # noqa: B018 (load before the session ends)
        return user


def _similar(templates: list[FaceTemplate], exclude_user: int | None) -> list[dict[str, Any]]:
    """Other users whose stored faces are close to the new photos (family members)."""
    from appliance.vision import face_distances

    limit = get_config().admin.similar_face_distance
    by_user: dict[int, list[np.ndarray]] = {}
    with get_db().session() as s:
        rows = s.execute(select(FaceTemplate.user_id, FaceTemplate.encoding))
        for uid, enc in rows:
            if uid != exclude_user:
                by_user.setdefault(uid, []).append(np.frombuffer(enc, dtype="<f4").astype(float))
        names = {u.id: (u.number, u.name) for u in s.scalars(select(User))}
    hits = []
    for uid, encs in by_user.items():
        gallery = np.vstack(encs)
        best = min(float(face_distances(gallery, t.vector()).min()) for t in templates)
        if best < limit:
            number, name = names.get(uid, (None, "?"))
            hits.append({"user_id": uid, "number": number, "name": name, "distance": best})
    return sorted(hits, key=lambda h: h["distance"])


def _margins(user_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Each user's security margin: the distance from their templates to the nearest template
    of another user, that user, and whether it is below the safe value
    (admin.similar_face_distance)."""
    gallery = load_gallery(get_db())
    safe = get_config().admin.similar_face_distance
    out = {}
    for uid, (d, other) in security_margins(gallery, user_ids).items():
        number, name = gallery.names.get(other, (other, "?"))
        out[uid] = {"distance": d, "number": number, "name": name, "low": d < safe}
    return out


def _warn_similar(hits: list[dict[str, Any]]) -> None:
    for h in hits:
        flash(
            f"Warning: the new face is close to user {h['number']} {h['name']} "
            f"(distance {h['distance']:.2f}; a match is below "
            f"{get_config().vision.threshold:.2f}). Family members can be confused at the door.",
            "warning",
        )


def _save_photos(user_id: int, templates: list[FaceTemplate], jpegs: list[bytes]) -> None:
    from appliance.security import private_dir

    d = private_dir(_photo_dir(user_id))
    private_dir(d.parent)
    for t, jpeg in zip(templates, jpegs, strict=True):
        fd = os.open(d / f"{t.id}.jpg", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as fh:
            fh.write(jpeg)


def _camera_image() -> tuple[str, np.ndarray]:
    door = get_door()
    if door is None:
        raise UploadError("the door camera is not running in this process")
    try:
        frame = door.camera.read()
    except Exception as exc:
        raise UploadError(f"the door camera gave no picture: {exc}") from None
    return (f"door camera {utcnow():%Y-%m-%d %H:%M:%S}", frame)


def _collect_templates(max_files: int) -> tuple[list[FaceTemplate], list[bytes]]:
    """Templates and stored JPEGs of the uploaded photos (and a camera capture), one photo at
    a time: each is decoded once (bounded), encoded, kept as a small JPEG and let go before
    the next is decoded, so five large photos cost what one does."""
    templates: list[FaceTemplate] = []
    jpegs: list[bytes] = []

    def take(label: str, rgb: np.ndarray) -> None:
        templates.extend(encode_images(face_engine(), [(label, rgb)]))
        jpegs.append(encode_jpeg(rgb))

    for label, rgb in iter_uploads(request.files.getlist("photos"), _limits(), max_files):
        take(label, rgb)
        del rgb
    if request.form.get("capture") and len(templates) < max_files:
        take(*_camera_image())
    return templates, jpegs


def _text(name: str, max_len: int) -> str | None:
    value = request.form.get(name, "").strip()
    if len(value) > max_len:
        raise FormError(f"{name} is longer than {max_len} characters")
    return value or None


def _fields(new: bool) -> dict[str, Any]:
    f = request.form
    try:
        number = int(f.get("number", ""))
    except ValueError:
        raise FormError("user number must be a whole number") from None
    role = f.get("role", "resident")
    if role not in USER_ROLES:
        raise FormError(f"role must be one of {', '.join(USER_ROLES)}")
    try:
        valid_from = parse_local_dt(f.get("valid_from", ""), "valid from")
        valid_until = parse_local_dt(f.get("valid_until", ""), "valid until")
    except ValueError as exc:
        raise FormError(str(exc)) from None
    if valid_from and valid_until and valid_until <= valid_from:
        raise FormError("valid until must be after valid from")
    out = {
        "number": number,
        "name": (f.get("name") or "").strip()[:128],
        "email": _text("email", 254),
        "phone": _text("phone", 32),
        "pin": f.get("pin", "").strip() or None,
        "duress_pin": f.get("duress_pin", "").strip() or None,
        "role": role,
        "active": bool(f.get("active")),
        "valid_from": valid_from,
        "valid_until": valid_until,
    }
    if new and not out["pin"]:
        raise FormError("a PIN is needed for a new user")
    return out


@bp.get("/")
def index() -> Any:
    q = request.args.get("q", "").strip()[:100]
    page = page_arg()
    cond = []
    if q:
        like = f"%{q}%"
        terms = [User.name.ilike(like), User.email.ilike(like), User.phone.ilike(like)]
        if q.isdigit():
            terms.append(User.number == int(q))
        cond.append(or_(*terms))
    with get_db().session() as s:
        total = s.scalar(select(func.count(User.id)).where(*cond)) or 0
        rows = s.execute(
            select(User, func.count(FaceTemplate.id))
            .outerjoin(FaceTemplate, FaceTemplate.user_id == User.id)
            .where(*cond)
            .group_by(User.id)
            .order_by(User.number)
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()
    pages = max(1, -(-total // PAGE_SIZE))
    rules = rules_of(get_db(), [u.id for u, _ in rows])
    access = {u.id: summarize(rules.get(u.id, [])) for u, _ in rows}
    return render_template(
        "users.html", rows=rows, q=q, page=page, pages=pages, total=total, now=utcnow(),
        access=access, margins=_margins([u.id for u, _ in rows]),
        safe_margin=get_config().admin.similar_face_distance,
    )  # fmt: skip


@bp.route("/new", methods=["GET", "POST"])
def new() -> Any:
    door = get_door()
    form: dict[str, Any] = {"role": "resident", "active": True}
    if request.method == "POST":
        try:
            form = _fields(new=True)
            validate_user_fields(
                get_db(),
                number=form["number"],
                name=form["name"],
                pin=form["pin"],
                duress_pin=form["duress_pin"],
                email=form["email"],
                phone=form["phone"],
                max_code_length=get_config().access.max_code_length,
            )
            templates, jpegs = _collect_templates(MAX_PHOTOS)
            if not templates:
                raise FormError("add 1 to 5 photos (or capture one from the door camera)")
            check_photo_count(len(templates))
            check_templates(get_db(), face_engine(), templates)
            similar = _similar(templates, exclude_user=None)
            enrolled = create_user(get_db(), pin_hasher(), templates=templates, **form)
        except (FormError, EnrollError, UploadError) as exc:
            form.pop("pin", None)
            form.pop("duress_pin", None)
            return render_template(
                "user_form.html", user=None, form=form, error=str(exc), camera=door is not None
            ), 400
        _save_photos(enrolled.id, templates, jpegs)
        audit(
            "user_enrolled",
            f"user {enrolled.number}",
            name=enrolled.name,
            photos=len(templates),
            similar=[(h["number"], round(h["distance"], 3)) for h in similar],
        )
        flash(
            f"User {enrolled.number} {enrolled.name} enrolled with {len(templates)} photo(s).", "ok"
        )
        _warn_similar(similar)
        return redirect(url_for("users.edit", user_id=enrolled.id))
    return render_template(
        "user_form.html", user=None, form=form, error=None, camera=door is not None
    )


@bp.route("/<int:user_id>", methods=["GET", "POST"])
def edit(user_id: int) -> Any:
    user = _get_user(user_id)
    if request.method == "POST":
        try:
            form = _fields(new=False)
            if not form["name"]:
                raise FormError("name must not be empty")
            if not 1 <= form["number"] <= 999_999_999:
                raise FormError("user number must be 1 to 999999999")
            validate_contact(form["email"], form["phone"])
            for key, what in (("pin", "PIN"), ("duress_pin", "duress PIN")):
                if form[key]:
                    validate_pin(form[key], what)
            clear_duress = bool(request.form.get("clear_duress")) and not form["duress_pin"]
            check_pin_change(
                pin_hasher(),
                pin=form["pin"] or None,
                duress_pin=form["duress_pin"] or None,
                pin_hash=user.pin_hash,
                duress_pin_hash=None if clear_duress else user.duress_pin_hash,
            )
            limit = get_config().access.max_code_length
            for key, what in (("pin", "PIN"), ("duress_pin", "duress PIN")):
                if form[key]:
                    check_code_length(form["number"], form[key], limit, what)
            values: dict[str, Any] = {
                k: form[k]
                for k in ("number", "name", "email", "phone", "role", "active")
                + ("valid_from", "valid_until")
            }
            changed_pin = bool(form["pin"])
            if form["pin"]:
                values["pin_hash"] = pin_hasher().hash(form["pin"])
            if form["duress_pin"]:
                values["duress_pin_hash"] = pin_hasher().hash(form["duress_pin"])
            elif request.form.get("clear_duress"):
                values["duress_pin_hash"] = None
            with get_db().session() as s:
                clash = s.scalar(
                    select(User.id).where(User.number == form["number"], User.id != user_id)
                )
                if clash is not None:
                    raise FormError(f"user number {form['number']} already exists")
                s.execute(update(User).where(User.id == user_id).values(**values))
        except (FormError, EnrollError, ValueError) as exc:
            return _render_edit(user, error=str(exc)), 400
        changes = sorted(k for k in values if k not in ("pin_hash", "duress_pin_hash"))
        audit(
            "user_changed",
            f"user {form['number']}",
            pin_reset=changed_pin,
            duress_changed="duress_pin_hash" in values,
            active=form["active"],
            fields=changes,
        )
        flash(f"User {form['number']} saved.", "ok")
        return redirect(url_for("users.edit", user_id=user_id))
    return _render_edit(user)


def _render_edit(
    user: User,
    *,
    error: str | None = None,
    access_error: str | None = None,
    access_form: Any = None,
) -> str:
    """The edit page, with the user's door access rules and the doors to choose from."""
    rules = rules_of(get_db(), [user.id]).get(user.id, [])
    form = access_form or {"door": "", "days": [str(d) for d in range(7)], "from": "", "until": ""}
    return render_template(
        "user_form.html", user=user, form=_form_of(user), error=error,
        camera=get_door() is not None, rules=[(r, describe(r)) for r in rules],
        access_summary=summarize(rules), doors=known_doors(get_db()), day_names=DAY_NAMES,
        access_error=access_error, access_form=form, days_of=describe_days,
        times_of=describe_times,
        max_rules=MAX_RULES_PER_USER, margin=_margins([user.id]).get(user.id),
        safe_margin=get_config().admin.similar_face_distance, max_photos=MAX_PHOTOS,
    )  # fmt: skip


def _form_of(user: User) -> dict[str, Any]:
    return {
        k: getattr(user, k)
        for k in ("number", "name", "email", "phone", "role", "active", "valid_from", "valid_until")
    }


@bp.post("/<int:user_id>/photos")
def add_photos(user_id: int) -> Any:
    user = _get_user(user_id)
    room = MAX_PHOTOS - len(user.templates)
    try:
        if room <= 0:
            raise FormError(f"user {user.number} has {MAX_PHOTOS} photos already; remove one")
        templates, jpegs = _collect_templates(room)
        if not templates:
            raise FormError("choose 1 or more photos, or capture one from the door camera")
        check_photo_count(len(templates), len(user.templates))
        check_templates(get_db(), face_engine(), templates, user_id=user_id)
        similar = _similar(templates, exclude_user=user_id)
        with get_db().session() as s:
            for t in templates:
                t.user_id = user_id
                s.add(t)
    except (FormError, EnrollError, UploadError) as exc:
        flash(str(exc), "error")
        return redirect(url_for("users.edit", user_id=user_id))
    _save_photos(user_id, templates, jpegs)
    audit("user_photos_added", f"user {user.number}", photos=len(templates))
    flash(f"{len(templates)} photo(s) added to user {user.number}.", "ok")
    _warn_similar(similar)
    return redirect(url_for("users.edit", user_id=user_id))


@bp.post("/<int:user_id>/photos/<int:template_id>/delete")
def delete_photo(user_id: int, template_id: int) -> Any:
    user = _get_user(user_id)
    with get_db().session() as s:
        t = s.get(FaceTemplate, template_id)
        if t is None or t.user_id != user_id:
            abort(404)
        if len(user.templates) <= 1:
            flash(
                f"User {user.number} needs at least one photo: add another before removing "
                "this one.",
                "error",
            )
            return redirect(url_for("users.edit", user_id=user_id))
        s.delete(t)
    (_photo_dir(user_id) / f"{template_id}.jpg").unlink(missing_ok=True)
    audit("user_photo_removed", f"user {user.number}", template=template_id)
    flash("Photo removed.", "ok")
    return redirect(url_for("users.edit", user_id=user_id))


@bp.post("/<int:user_id>/access")
def add_access(user_id: int) -> Any:
    """Add a door access rule (door or every door, weekdays, from/until in the door's time)."""
    user = _get_user(user_id)
    f = request.form
    try:
        rule = parse_rule(f, [d for d, _ in known_doors(get_db())])
        with get_db().session() as s:
            have = list(s.scalars(select(UserAccess).where(UserAccess.user_id == user_id)))
            if len(have) >= MAX_RULES_PER_USER:
                raise AccessFormError(
                    f"user {user.number} has {MAX_RULES_PER_USER} access rules already; "
                    "remove one first"
                )
            if any((r.device_id, r.weekdays, r.start_minute, r.end_minute) == rule.key()
                   for r in have):  # fmt: skip
                raise AccessFormError(f"this rule exists already: {describe(rule)}")
            row = UserAccess(
                user_id=user_id,
                device_id=rule.device_id,
                weekdays=rule.weekdays,
                start_minute=rule.start_minute,
                end_minute=rule.end_minute,
            )
            s.add(row)  # through the ORM: the flush stamps the sync version
            s.flush()
            rule_id = row.id
    except AccessFormError as exc:
        form = {"door": f.get("door", ""), "days": f.getlist("days"),
                "from": f.get("from", ""), "until": f.get("until", "")}  # fmt: skip
        return _render_edit(user, access_error=str(exc), access_form=form), 400
    audit(
        "user_access_added",
        f"user {user.number}",
        rule=rule_id,
        door=rule.device_id or "*",
        weekdays=rule.weekdays,
        start=hhmm(rule.start_minute),
        until=hhmm(rule.end_minute),
    )
    flash(f"User {user.number} may now enter: {describe(rule)}.", "ok")
    return redirect(url_for("users.edit", user_id=user_id) + "#access")


@bp.post("/<int:user_id>/access/<int:rule_id>/delete")
def remove_access(user_id: int, rule_id: int) -> Any:
    user = _get_user(user_id)
    with get_db().session() as s:
        row = s.get(UserAccess, rule_id)
        if row is None or row.user_id != user_id:
            abort(404, f"user {user.number} has no access rule {rule_id}")
        what = describe(row)
        s.delete(row)  # through the ORM: the flush writes the sync tombstone
        left = s.scalar(select(func.count(UserAccess.id)).where(UserAccess.user_id == user_id))
    audit("user_access_removed", f"user {user.number}", rule=rule_id, was=what)
    if left:
        flash(f"Access rule removed: {what}.", "ok")
    else:
        flash(f"Access rule removed: {what}. With no rules left, user {user.number} may use "
              "every door at any time.", "warning")  # fmt: skip
    return redirect(url_for("users.edit", user_id=user_id) + "#access")


@bp.get("/<int:user_id>/photos/<int:template_id>.jpg")
def photo(user_id: int, template_id: int) -> Any:
    path = file_in(_photo_dir(user_id), f"{int(template_id)}.jpg", ".jpg")
    return send_file(path, mimetype="image/jpeg", max_age=0)


@bp.post("/<int:user_id>/active")
def set_active(user_id: int) -> Any:
    user = _get_user(user_id)
    active = request.form.get("active") == "1"
    with get_db().session() as s:
        s.execute(update(User).where(User.id == user_id).values(active=active))
    audit("user_activated" if active else "user_deactivated", f"user {user.number}")
    flash(f"User {user.number} {'activated' if active else 'deactivated'}.", "ok")
    return redirect(request.form.get("back") == "list" and url_for("users.index")
                    or url_for("users.edit", user_id=user_id))  # fmt: skip


@bp.route("/<int:user_id>/delete", methods=["GET", "POST"])
def delete(user_id: int) -> Any:
    user = _get_user(user_id)
    with get_db().session() as s:
        snaps = s.scalar(
            select(func.count(AccessEvent.id)).where(
                AccessEvent.user_id == user_id, AccessEvent.snapshot_path.is_not(None)
            )
        )
    if request.method == "POST":
        if request.form.get("confirm", "").strip() != str(user.number):
            flash(f"Type the user number {user.number} to confirm the deletion.", "error")
            return render_template("user_delete.html", user=user, snaps=snaps), 400
        removed = _delete_user(user)
        audit("user_deleted", f"user {user.number}", name=user.name, snapshots=removed)
        flash(f"User {user.number} {user.name} deleted with templates and {removed} snapshot(s).",
              "ok")  # fmt: skip
        return redirect(url_for("users.index"))
    return render_template("user_delete.html", user=user, snaps=snaps)


def _delete_user(user: User) -> int:
    """Delete the user, their templates and enrollment photos, and their events' snapshots
    (the events stay, without pictures, so the history keeps its gaps visible)."""
    store = SnapshotStore(get_config().data_dir)
    with get_db().session() as s:
        paths = list(
            s.scalars(
                select(AccessEvent.snapshot_path).where(
                    AccessEvent.user_id == user.id, AccessEvent.snapshot_path.is_not(None)
                )
            )
        )
        s.execute(
            update(AccessEvent).where(AccessEvent.user_id == user.id).values(snapshot_path=None)
        )
        # rules first and one by one, so each leaves a sync tombstone for the replicas
        for rule in s.scalars(select(UserAccess).where(UserAccess.user_id == user.id)):
            s.delete(rule)
        s.flush()
        obj = s.get(User, user.id)
        if obj is not None:
            s.delete(obj)
    removed = 0
    for rel in paths:
        try:
            store.path(rel).unlink()
            removed += 1
        except (OSError, ValueError):
            continue
    shutil.rmtree(_photo_dir(user.id), ignore_errors=True)
    door = get_door()
    if door is not None:
        door.templates.refresh(force=True)
    return removed
