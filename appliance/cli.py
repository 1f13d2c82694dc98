"""Owns the `doorward` command line: parsing, config loading and the core sub-commands."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from appliance.config import Config, ConfigError, load_config

log = logging.getLogger("doorward")

# Areas that add their own sub-commands: each module has register(subparsers).
COMMAND_MODULES = (
    "appliance.vision.commands",
    "appliance.alerts.commands",
    "appliance.store.commands",
    "web_admin.commands",
    "appliance.health.commands",
)


class CliError(Exception):
    """A user error: printed as `doorward: error: ...` with exit status 2."""


# ---- shared helpers for every command -------------------------------------------------------
def open_door_db(args: argparse.Namespace) -> Any:
    """The device-local replica the door decides from (--replica / $DOORWARD_REPLICA_PATH).

    In the embedded default (no central database) this one SQLite file is the whole database.
    """
    from appliance.service import check_data_dir
    from appliance.store.central import open_local_replica

    config: Config = args.config
    check_data_dir(config.data_dir)
    return open_local_replica(config, getattr(args, "replica_path", None))


def central_url(args: argparse.Namespace) -> str | None:
    """--db, else $DOORWARD_DATABASE_URL, else database.url; None = embedded default."""
    from appliance.store.central import central_url_choice

    return central_url_choice(args.config, getattr(args, "db_url", None))


def open_central_db(args: argparse.Namespace) -> Any:
    """Where users are enrolled and administered: the central database, else the replica."""
    from appliance.store.central import open_central

    url = central_url(args)
    if url is None:
        return open_door_db(args)
    return open_central(args.config, url, migrate=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be 1 or more")
    return value


def _existing_file(text: str) -> Path:
    p = Path(text)
    if not p.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    return p


# ---- run ------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from appliance.health.systemd import Notifier
    from appliance.service import Door, HealthWorker
    from appliance.store.central import open_central
    from appliance.store.sync import start_sync_worker

    config: Config = args.config
    db = open_door_db(args)
    door = Door(config, db)
    url = central_url(args)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    parts: list[Any] = []
    try:
        door.start()
        parts.append(door)
        sync = start_sync_worker(config, url, db)  # None in the embedded default
        if sync is not None:
            parts.append(sync)
        if config.mqtt.enabled:
            from appliance.publish.mqtt import MqttPublisher

            publisher = MqttPublisher(config.mqtt, config.device.id)
            publisher.start()
            parts.append(publisher)
            door.listeners.append(publisher.publish_event)
            door.listeners.append(lambda _event: publisher.publish_state(door.status()))
        health = HealthWorker(door)
        health.start()
        parts.append(health)
        dispatcher = _start_dispatcher(config, db)
        if dispatcher is not None:
            parts.append(dispatcher)
            door.alert_hooks.append(dispatcher.notify)  # deliver now, not at the next poll
        if config.admin.enabled and not args.no_admin:
            admin_db = open_central(config, url) if url else db
            parts.append(_start_admin(config, admin_db, door, sync))
        simulated = door.simulator is not None
        print(
            f"doorward: door {config.device.id!r} running "
            f"({'simulated hardware' if simulated else 'GPIO'}, database {db.url})",
            flush=True,
        )
        if config.admin.enabled and not args.no_admin:
            print(f"doorward: admin page on http://{config.admin.host}:{config.admin.port}/")
        if door.simulator is not None and sys.stdin.isatty() and not args.no_terminal_keypad:
            threading.Thread(
                target=_terminal_keypad, args=(door, stop), daemon=True, name="tty-keypad"
            ).start()
        notifier = Notifier()
        notifier.ready(f"door {config.device.id} running")
        while not stop.wait(1.0):
            if door.healthy:  # a stuck door loop stops the pings: systemd's watchdog restarts us
                notifier.ping()
        notifier.stopping()
    finally:
        for part in reversed(parts):
            try:
                part.stop()
            except Exception:
                log.exception("event=stop_failed part=%r", part)
        door.close()
        db.close()
    return 0


def _terminal_keypad(door: Any, stop: threading.Event) -> None:
    """Type keys (0-9 * # A-D) and Enter; they are pressed on the simulated keypad pins."""
    print("doorward: type a code such as 1*1234# and press Enter (Ctrl-C stops)", flush=True)
    for line in sys.stdin:
        if stop.is_set():
            return
        for ch in line.strip().upper():
            try:
                door.simulator.keypad.tap(ch, door.board.keypad)
            except ValueError as exc:
                print(f"doorward: {exc}", flush=True)


def _start_dispatcher(config: Config, db: Any) -> Any:
    try:
        from appliance.alerts.dispatcher import build_dispatcher
    except ImportError:
        log.warning("event=no_dispatcher reason=module_missing")
        return None
    dispatcher = build_dispatcher(config, db)
    dispatcher.start()
    return dispatcher


def _start_admin(config: Config, db: Any, door: Any, sync: Any) -> Any:
    from web_admin import create_app
    from web_admin.serving import AdminServer

    app = create_app(config=config, db=db, door=door, local_db=door.db, sync=sync)
    return AdminServer(
        app,
        config.admin.host,
        config.admin.port,
        trust_loopback_proxy=config.admin.proxy_from_loopback,
    ).start()


# ---- enroll ---------------------------------------------------------------------------------
def cmd_enroll(args: argparse.Namespace) -> int:
    from appliance.enroll import enroll_user
    from appliance.service import pin_hasher
    from appliance.vision import FaceEngine

    config: Config = args.config
    db = open_central_db(args)
    try:
        user = enroll_user(
            db,
            FaceEngine(config.vision),
            pin_hasher(config),
            number=args.number,
            name=args.name,
            pin=args.pin,
            photos=args.photo,
            duress_pin=args.duress_pin,
            email=args.email,
            phone=args.phone,
            progress=lambda msg: print(f"doorward: {msg}", file=sys.stderr, flush=True),
        )
    finally:
        db.close()
    print(json.dumps({"enrolled": user.number, "name": user.name, "templates": user.templates}))
    return 0


# ---- simulate -------------------------------------------------------------------------------
class SimClock:
    """Virtual seconds for scripted visits: time moves only when the script says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def cmd_simulate(args: argparse.Namespace) -> int:
    from appliance.core import Tick
    from appliance.hardware.board import mock_factory
    from appliance.hardware.camera import ReplayCamera
    from appliance.service import Door

    config: Config = args.config.with_overrides(hardware={"pin_factory": "mock"})
    bad = [k for k in args.keys.upper() if k not in "0123456789*#ABCD"]
    if bad:
        raise CliError(f"--keys: {bad[0]!r} is not a keypad key (0-9 * # A-D)")
    db = open_door_db(args)
    factory = mock_factory()
    clock = SimClock()
    camera = ReplayCamera(args.camera)
    liveness = None if args.liveness is None else args.liveness == "on"
    door = Door(
        config, db, factory=factory, camera=camera, clock=clock, inline_face=True, liveness=liveness
    )
    events: list[dict[str, Any]] = []

    def emit(ev: Any) -> None:
        d = ev.as_dict()
        events.append(d)
        print(json.dumps(d), flush=True)

    door.listeners.append(emit)
    sim = door.simulator
    assert sim is not None
    try:
        door.pump()
        door.templates.refresh()

        def settle(seconds: float = 0.0, step: float = 0.1) -> None:
            door.pump()
            t = 0.0
            while t < seconds:
                clock.advance(step)
                t += step
                door.handle(Tick())
                door.pump()

        if args.door == "forced":
            sim.open_door()
            settle()
        for key in args.keys.upper():
            sim.keypad.tap(key, door.board.keypad)
            settle()
            clock.advance(0.2)
        settle()
        if args.door == "open":
            sim.open_door()
            settle(2.0)
        pulse = config.access.relay_pulse_s
        settle(pulse + 0.5)
        if args.door in ("open", "forced"):
            sim.close_door()
            settle(0.5)
    finally:
        door.close()
        db.close()
    summary = {
        "event": "summary",
        "granted": any(e["event"] == "granted" for e in events),
        "relay_pulses": len(door.board.relay.pulses),
        "pulse_s": [round(off - on, 3) for on, off in door.board.relay.pulses if off is not None],
        "alerts_queued": sum(1 for e in events if e["alert_id"]),
    }
    print(json.dumps(summary), flush=True)
    return 0


# ---- lock-relay -----------------------------------------------------------------------------
def cmd_lock_relay(args: argparse.Namespace) -> int:
    """Drive the relay to locked and exit (systemd ExecStartPre/ExecStopPost)."""
    from appliance.hardware.board import make_pin_factory
    from appliance.hardware.relay import LockRelay

    pins = args.config.hardware.pins
    factory = make_pin_factory(args.config.hardware.pin_factory)
    relay = LockRelay(pins.relay, active_high=pins.relay_active_high, pin_factory=factory)
    relay.close()
    print(json.dumps({"relay": "locked", "pin": pins.relay}))
    return 0


# ---- parser ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="doorward", description="Doorward entry appliance: keypad + PIN + face, alerts."
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="TOML config file (default: $DOORWARD_CONFIG, else built-in)",
    )
    parser.add_argument(
        "--db",
        dest="db_url",
        metavar="URL",
        help="central database URL, e.g. mysql+pymysql://user@host/doorward "
        "(default: $DOORWARD_DATABASE_URL, else database.url, else none: the replica is all)",
    )
    parser.add_argument(
        "--replica",
        dest="replica_path",
        metavar="PATH",
        help="local replica the door decides from (default: $DOORWARD_REPLICA_PATH, "
        "else database.replica_path, else var/doorward.db)",
    )
    parser.add_argument(
        "--log-level", default=os.environ.get("DOORWARD_LOG_LEVEL", "INFO"), help="log level"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", help="run the door loop (and the admin page)")
    p.add_argument("--no-admin", action="store_true", help="do not serve the admin page")
    p.add_argument(
        "--no-terminal-keypad", action="store_true", help="do not read keys from the terminal"
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("enroll", help="enroll a user with PIN and face photos")
    p.add_argument("--number", type=_positive_int, required=True, help="user number")
    p.add_argument("--name", required=True)
    p.add_argument("--pin", required=True, help="4-12 digits")
    p.add_argument("--photo", type=_existing_file, action="append", required=True)
    p.add_argument("--duress-pin", help="PIN that opens the door and sends a silent alert")
    p.add_argument("--email")
    p.add_argument("--phone")
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("simulate", help="one scripted visit on simulated hardware (JSON out)")
    p.add_argument("--keys", required=True, help="keys pressed, e.g. '1*1234#'")
    p.add_argument("--camera", type=_existing_file, action="append", required=True)
    p.add_argument("--door", choices=["open", "forced"], help="open after the code, or forced")
    p.add_argument("--liveness", choices=["on", "off"], help="override vision.liveness")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("lock-relay", help="drive the lock relay to locked and exit")
    p.set_defaults(func=cmd_lock_relay)

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from appliance.security import private_umask

    private_umask()  # the DB, WAL, snapshots, photos and mailbox are created 0600/0700
    if args.func in (cmd_run, cmd_simulate):  # the door process: frames come and go
        from appliance.malloc import tune_malloc

        tune_malloc()
    try:
        args.config = load_config(args.config)
        return int(args.func(args) or 0)
    except (ConfigError, CliError) as exc:
        print(f"doorward: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # validation errors raised by the domain (EnrollError, ...)
        print(f"doorward: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
