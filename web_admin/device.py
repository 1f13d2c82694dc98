"""Owns the device page: status, and the simulated door panel that drives the real state machine."""

from __future__ import annotations

import io
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from sqlalchemy import func, select

from appliance.core.wording import duration, state_words
from appliance.store.models import AccessEvent, Device, OutboxAlert, utcnow
from appliance.store.models_state import read_state
from appliance.store.sync import sync_status

from .common import audit, get_config, get_db, get_door, get_local_db, get_sync
from .present import DECISIONS, ago, event_line, kind_words
from .uploads import Limits, UploadError, check_image, encode_jpeg

bp = Blueprint("device", __name__, url_prefix="/device")
log = logging.getLogger("web_admin")

KEYS = "123A456B789C*0#D"
ACTIONS = {
    "open_door": "Open the door",
    "close_door": "Close the door",
    "exit": "Press the exit button",
    "motion": "Motion (PIR)",
    "tamper": "Tamper",
    "restore_tamper": "Restore tamper",
    "doorbell": "Ring the doorbell",  # only with hardware.pins.doorbell set
}
IMAGE_EXTS = {".jpg", ".jpeg", ".png"}
STATE_STALE_S = 150.0  # the door writes its state on change and every 60 s


def _simulated_door() -> Any:
    door = get_door()
    if door is None or door.simulator is None:
        abort(404, "the door panel needs simulated hardware running in this process")
    return door


def _camera_status(door: Any) -> tuple[bool, str]:
    try:
        frame = door.camera.read()
    except Exception as exc:
        return False, str(exc)[:200]
    return True, f"{frame.shape[1]}x{frame.shape[0]}"


def _last_heartbeat(door: Any, device_id: str) -> datetime | None:
    """The newest sign of life: a heartbeat event (in the door's memory when it runs here:
    heartbeats reach the database in batches), or the device row's last_seen (start-up, and
    every sync round with a central database)."""
    seen: list[datetime] = []
    if door is not None:
        beats = [e.ts for e in door.recent if e.kind == "heartbeat"]
        if beats:
            seen.append(datetime.fromisoformat(beats[-1]))
    with get_db().session() as s:
        beat = s.scalar(
            select(func.max(AccessEvent.ts)).where(
                AccessEvent.kind == "heartbeat", AccessEvent.device_id == device_id
            )
        )
        dev = s.get(Device, device_id)
    seen += [t for t in (beat, dev.last_seen if dev else None) if t is not None]
    return max(seen) if seen else None


def _latest_snapshot(device_id: str) -> AccessEvent | None:
    with get_db().session() as s:
        return s.scalars(
            select(AccessEvent)
            .where(AccessEvent.device_id == device_id, AccessEvent.snapshot_path.is_not(None))
            .order_by(AccessEvent.ts.desc())
            .limit(1)
        ).first()


def status() -> dict[str, Any]:
    door = get_door()
    config = get_config()
    now = utcnow()
    out: dict[str, Any] = {
        "device_id": config.device.id,
        "door_name": config.device.name,
        "in_process": door is not None,
        "reported": door is not None,
    }
    if door is not None:
        out.update(door.status())
        out["camera_ok"], out["camera_detail"] = _camera_status(door)
        out["simulated"] = door.simulator is not None
    else:
        # the Pi layout: the door runs in its own process and reports through the database
        reported = read_state(get_local_db(), config.device.id)
        if reported is not None:
            state, at = reported
            age = (now - at).total_seconds()
            out.update(state)
            out["reported"] = True
            out["reported_at"] = at.isoformat()
            out["reported_ago"] = ago(at, now)
            out["report_stale"] = age > STATE_STALE_S
    beat = _last_heartbeat(door, config.device.id)
    out["last_heartbeat"] = beat.isoformat() if beat else None
    out["last_heartbeat_ago"] = ago(beat, now)
    interval = config.health.heartbeat_interval_s
    out["heartbeat_late"] = beat is None or (now - beat).total_seconds() > 2 * interval + 5
    out["heartbeat_every"] = duration(interval)
    out["state_words"] = state_words(out.get("state")) if out["reported"] else None
    if out.get("lockout_remaining_s"):
        out["lockout_words"] = duration(out["lockout_remaining_s"])
    with get_local_db().session() as s:
        out["queue_depth"] = s.scalar(
            select(func.count(OutboxAlert.id)).where(OutboxAlert.state == "pending")
        )
    out["sync"] = sync_status(get_local_db(), now)
    out["sync_lag_s"] = out["sync"]["lag_s"]
    out["sync_lag_words"] = None if out["sync_lag_s"] is None else duration(out["sync_lag_s"])
    out["sync_running"] = get_sync() is not None
    gsm = config.alerts.gsm
    out["modem"] = "not configured" if gsm is None else f"{gsm.port} (checked by doorward doctor)"
    return out


def _camera_choices() -> list[Path]:
    """Photos the simulated camera may be pointed at: the configured replay sources'
    images (folders expanded). Only these, chosen by index, never a path from the browser."""
    found: list[Path] = []
    for src in get_config().camera.sources:
        src = Path(src)
        if src.is_dir():
            found += sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
        elif src.suffix.lower() in IMAGE_EXTS and src.is_file():
            found.append(src)
    return found[:200]


def _recent(door: Any) -> list[dict[str, Any]]:
    """The door's latest events, newest first, each with its plain line and a name."""
    out = []
    for e in reversed(door.recent[-12:] if door is not None else []):
        d = e.as_dict()
        d["line"] = event_line(e)
        d["words"] = kind_words(e.kind)
        d["decision"] = e.kind in DECISIONS
        d["time"] = e.ts[11:19]
        out.append(d)
    return out


@bp.get("/")
def index() -> Any:
    door = get_door()
    st = status()
    recent = _recent(door)
    choices = _camera_choices() if door is not None and door.simulator is not None else []
    latest = _latest_snapshot(st["device_id"]) if door is None else None
    decision = next((e for e in recent if e["decision"]), None)
    actions = dict(ACTIONS)
    if door is None or door.simulator is None or not door.simulator.has_doorbell:
        del actions["doorbell"]  # the panel's doorbell button is there when one is wired
    return render_template(
        "device.html", st=st, recent=recent, keys=KEYS, actions=actions, choices=choices,
        panel=door is not None and door.simulator is not None, latest=latest,
        decision=decision,
    )  # fmt: skip


@bp.get("/status.json")
def status_json() -> Any:
    st = status()
    st["recent"] = _recent(get_door())
    return jsonify(st)


@bp.post("/keys")
def keys() -> Any:
    door = _simulated_door()
    typed = (request.form.get("key") or request.form.get("code") or "").strip().upper()
    if not typed or len(typed) > 32 or any(k not in KEYS for k in typed):
        flash(f"{typed[:32]!r} is not a key sequence (0-9 * # A-D).", "error")
        return _back()
    door.press_keys(typed)
    log.info("event=panel_keys count=%d", len(typed))
    return _back()


@bp.post("/action")
def action() -> Any:
    door = _simulated_door()
    name = request.form.get("action", "")
    if name not in ACTIONS:
        abort(400, f"unknown door panel action {name!r}")
    sim = door.simulator
    if name == "doorbell" and not sim.has_doorbell:
        abort(400, "no doorbell is wired: set hardware.pins.doorbell in the config")
    {
        "open_door": sim.open_door,
        "close_door": sim.close_door,
        "exit": sim.press_exit,
        "motion": sim.motion,
        "tamper": sim.trigger_tamper,
        "restore_tamper": sim.restore_tamper,
        "doorbell": sim.press_doorbell,
    }[name]()
    audit("panel_action", door.device_id, control=name)
    return _back()


@bp.post("/camera")
def camera() -> Any:
    """What the simulated camera sees: an uploaded photo or webcam frame, or a listed photo."""
    door = _simulated_door()
    cam = door.camera
    upload = request.files.get("photo")
    a = get_config().admin
    try:
        if upload is not None and upload.filename:
            rgb = check_image(
                upload.read(), upload.filename, Limits(a.max_image_pixels, a.max_image_side)
            )
            if not hasattr(cam, "set_frame"):
                raise UploadError("this camera cannot be given a picture")
            cam.set_frame(rgb)
            what = upload.filename
        elif request.form.get("choice", "").isdigit():
            choices = _camera_choices()
            i = int(request.form["choice"])
            if not 0 <= i < len(choices) or not hasattr(cam, "set_sources"):
                raise UploadError("no such photo in the list")
            cam.set_sources([choices[i]])
            what = choices[i].name
        else:
            raise UploadError("choose a photo")
    except UploadError as exc:
        if request.headers.get("X-Requested-With") == "fetch":
            return jsonify({"ok": False, "error": str(exc)}), 400
        flash(str(exc), "error")
        return _back()
    log.info("event=panel_camera source=%r", what[:80])
    if request.headers.get("X-Requested-With") == "fetch":
        return jsonify({"ok": True})
    flash(f"The camera now sees {what}.", "ok")
    return _back()


@bp.get("/camera.jpg")
def camera_frame() -> Any:
    door = get_door()
    if door is None:
        abort(404)
    try:
        frame = door.camera.read()
    except Exception as exc:
        abort(503, f"camera: {exc}")
    return send_file(io.BytesIO(encode_jpeg(frame, max_side=480, quality=75)),
                     mimetype="image/jpeg", max_age=0)  # fmt: skip


def _back() -> Any:
    # a short pause lets the door loop record what the keys caused before the page reloads
    time.sleep(0.15)
    return redirect(url_for("device.index") + "#panel")
