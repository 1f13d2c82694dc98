"""Owns the remote-control CLI: `doorward remote list` and `doorward ha remove` (decommission:
the door's device leaves Home Assistant and its retained topics leave the broker)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import open_door_db


def _list(args: argparse.Namespace) -> int:
    from appliance.remote.principals import list_principals

    db = open_door_db(args)
    try:
        rows = list_principals(db)
    finally:
        db.close()
    for p in rows:  # never a secret: those are shown once, on the admin page
        print(json.dumps({"id": p.id, "kind": p.kind, "name": p.name, "phone": p.phone,
                          "may_unlock": p.may_unlock, "active": p.active}))  # fmt: skip
    return 0


def _ha_remove(args: argparse.Namespace) -> int:
    from appliance.publish.homeassistant import HomeAssistant
    from appliance.publish.mqtt import MqttPublisher

    config = args.config
    m = config.mqtt
    pub = MqttPublisher(m, config.device.id)
    ha = HomeAssistant(pub, device_id=config.device.id, name=config.device.name,
                       state_fn=dict, data_dir=config.data_dir,
                       discovery_prefix=m.discovery_prefix)  # fmt: skip
    pub.start()
    try:
        if not pub.connected.wait(args.timeout):
            why = f" ({pub.last_refusal})" if pub.last_refusal else ""
            print(f"doorward ha remove: no connection to {m.host}:{m.port} within "
                  f"{args.timeout:g} s{why}", file=sys.stderr)  # fmt: skip
            return 1
        ha.remove(timeout_s=args.timeout)
    finally:
        pub._client.disconnect()
        pub._client.loop_stop()
    print(json.dumps({"removed": ha.topic, "cleared": [f"{pub.base}/state", f"{pub.base}/snapshot",
                                                       pub.availability]}))  # fmt: skip
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("remote", help="who may command the door remotely (MQTT, SMS)")
    sub = p.add_subparsers(dest="remote_command", required=True)
    q = sub.add_parser("list", help="the MQTT integrations and SMS owners (no secrets)")
    q.set_defaults(func=_list)

    p = subparsers.add_parser("ha", help="Home Assistant discovery")
    sub = p.add_subparsers(dest="ha_command", required=True)
    q = sub.add_parser(
        "remove",
        help="decommission: remove the door's device from Home Assistant and clear its "
        "retained topics on the broker ([mqtt] settings)",
    )
    q.add_argument("--timeout", type=float, default=10.0, help="seconds to reach the broker")
    q.set_defaults(func=_ha_remove)
