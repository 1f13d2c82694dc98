"""Owns the `doorward alerts status|flush|test` commands."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from appliance.alerts.message import AlertMessage, ChannelError
from appliance.config import Config, ConfigError
from appliance.store.models import new_uuid

TEST_CHANNELS = ("email", "twilio", "gsm", "mailbox")


def register(subparsers: Any) -> None:
    alerts = subparsers.add_parser("alerts", help="the alert outbox and its channels")
    sub = alerts.add_subparsers(dest="alerts_command", required=True, metavar="COMMAND")
    p = sub.add_parser("status", help="JSON counts of alerts by state and deliveries by channel")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("flush", help="try every pending alert now; exit 0 when none is left")
    p.add_argument("--timeout", type=_seconds, default=30.0, metavar="S",
                   help="keep retrying for up to S seconds (default 30)")  # fmt: skip
    p.set_defaults(func=cmd_flush)
    p = sub.add_parser("test", help="send a test message through one channel")
    p.add_argument("--channel", required=True, choices=TEST_CHANNELS)
    p.set_defaults(func=cmd_test)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def _db(args: argparse.Namespace) -> Any:
    from appliance.cli.common import open_door_db

    return open_door_db(args)


def cmd_status(args: argparse.Namespace) -> int:
    from appliance.alerts.status import outbox_status

    db = _db(args)
    try:
        print(json.dumps(outbox_status(db), indent=2))
    finally:
        db.close()
    return 0


def cmd_flush(args: argparse.Namespace) -> int:
    from appliance.alerts.dispatcher import build_dispatcher

    db = _db(args)
    try:
        dispatcher = build_dispatcher(args.config, db)
        try:
            left = dispatcher.flush(args.timeout)
        finally:
            dispatcher.stop()
        from appliance.alerts.status import outbox_status

        status = outbox_status(db)
    finally:
        db.close()
    print(json.dumps({"pending": left, "alerts": status["alerts"]}))
    return 0 if left == 0 else 1


def cmd_test(args: argparse.Namespace) -> int:
    from appliance.alerts.dispatcher import build_channels

    config: Config = args.config
    name = args.channel
    try:
        channels = build_channels(config, only=name)
    except ConfigError as exc:
        print(f"doorward: error: {exc}", file=sys.stderr)
        return 2
    if name not in channels:
        print(f"doorward: error: alerts.{name} is not configured (or enabled = false)",
              file=sys.stderr)  # fmt: skip
        return 2
    channel = channels[name]
    message = AlertMessage(
        id=new_uuid(),
        kind="test",
        time=datetime.now(UTC),
        device_id=config.device.id,
        door=config.device.name,
        detail="This is a test of the Doorward alert channel.",
    )
    try:
        channel.send(message)
    except ChannelError as exc:
        print(json.dumps({"channel": name, "sent": False, "error": str(exc)}))
        return 1
    finally:
        channel.close()
    print(json.dumps({"channel": name, "sent": True, "id": message.id}))
    return 0
