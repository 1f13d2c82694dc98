"""Owns the remote-control settings page: which MQTT integrations and SMS owner numbers may
command the door, whether each may unlock, and the enrolment of their one-time codes (a QR
code for an authenticator app). Secrets are shown only in the answer to an admin's POST
(enrol, new secret), never on a page anyone can load again."""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from appliance.remote.codes import hmac_key, provisioning_uri, totp_secret
from appliance.remote.principals import (
    PrincipalError,
    add_principal,
    delete_principal,
    get_principal,
    list_principals,
    update_principal,
)

from .common import audit, get_config, get_local_db, pin_hasher

bp = Blueprint("remote", __name__)


@bp.get("/remote")
def index() -> Any:
    c = get_config()
    gsm = c.alerts.gsm
    return render_template(
        "remote.html",
        principals=list_principals(get_local_db()),
        mqtt_commands=c.mqtt.enabled and c.mqtt.commands,
        sms_commands=c.remote.sms_commands and gsm is not None and gsm.enabled,
        form={},
        integration=c.mqtt.ha_integration,
    )


@bp.post("/remote")
def add() -> Any:
    f = request.form
    kind = f.get("kind", "")
    try:
        row = add_principal(
            get_local_db(), kind=kind, name=f.get("name", ""), phone=f.get("phone") or None,
            may_unlock=f.get("may_unlock") == "on",
        )  # fmt: skip
    except PrincipalError as exc:
        flash(str(exc), "error")
        c = get_config()
        return render_template(
            "remote.html", principals=list_principals(get_local_db()),
            mqtt_commands=c.mqtt.enabled and c.mqtt.commands,
            sms_commands=c.remote.sms_commands and c.alerts.gsm is not None,
            form=f, integration=c.mqtt.ha_integration,
        ), 400  # fmt: skip
    audit("remote_add", f"{row.kind} {row.name}", phone=row.phone, may_unlock=row.may_unlock)
    return _enrolment(row)


@bp.post("/remote/<int:pid>/update")
def update(pid: int) -> Any:
    f = request.form
    try:
        row = update_principal(get_local_db(), pid, may_unlock=f.get("may_unlock") == "on",
                               active=f.get("active") == "on")  # fmt: skip
    except PrincipalError:
        abort(404)
    audit("remote_update", f"{row.kind} {row.name}", may_unlock=row.may_unlock, active=row.active)
    flash(f"{row.name}: may unlock {'yes' if row.may_unlock else 'no'}, "
          f"{'active' if row.active else 'disabled'}.", "ok")  # fmt: skip
    return redirect(url_for("remote.index"))


@bp.post("/remote/<int:pid>/secret")
def new_secret(pid: int) -> Any:
    try:
        row = update_principal(get_local_db(), pid, new_secret=True)
    except PrincipalError:
        abort(404)
    audit("remote_new_secret", f"{row.kind} {row.name}")
    return _enrolment(row)


@bp.post("/remote/<int:pid>/delete")
def delete(pid: int) -> Any:
    row = get_principal(get_local_db(), pid)
    if row is None:
        abort(404)
    delete_principal(get_local_db(), pid)
    audit("remote_delete", f"{row.kind} {row.name}")
    flash(f"{row.name} removed: its codes no longer work.", "ok")
    return redirect(url_for("remote.index"))


def _enrolment(row: Any) -> Any:
    import segno

    hasher = pin_hasher()
    c = get_config()
    uri = provisioning_uri(hasher, row.label, row.name, c.device.name)
    svg = segno.make(uri, error="m").svg_inline(scale=5, border=2, dark="#111", light="#fff")
    qr = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    return render_template(
        "remote_enrol.html", row=row, qr=qr, secret=totp_secret(hasher, row.label),
        hmac_hex=hmac_key(hasher, row.label).hex(), device_id=c.device.id,
        base=f"{c.mqtt.topic_prefix.rstrip('/')}/{c.device.id}",
    )  # fmt: skip
