"""The `doorward` command line: parsing, config loading and the door's own sub-commands
(run, enroll, simulate, lock-relay); the other groups live beside it in this package."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.config import Config, ConfigError, load_config

from .common import (
    CliError,
    central_url,
    existing_file,
    open_central_db,
    open_door_db,
    positive_int,
)
from .terminal import Terminal, event_printer, user_names

if TYPE_CHECKING:
    from appliance.runtime import Parts

log = logging.getLogger("doorward")

# Sub-command groups, each a module of this package with register(subparsers).
COMMAND_MODULES = (
    "appliance.cli.vision",
    "appliance.cli.alerts",
    "appliance.cli.store",
    "appliance.cli.admin",
    "appliance.cli.health",
    "appliance.cli.remote",
    "appliance.cli.policies",
)


# ---- run ------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from appliance.door import Door
    from appliance.health.systemd import Notifier
    from appliance.health.worker import HealthWorker
    from appliance.runtime import Parts, Watchdog
    from appliance.store.central import open_central
    from appliance.store.sync import start_sync_worker

    config: Config = args.config
    if args.camera:
        if config.camera.kind != "replay":
            raise CliError(
                f"--camera shows photos to the replay camera; this config's camera is "
                f'{config.camera.kind!r} ([camera] kind = "replay" to use it)'
            )
        config = config.with_overrides(camera={"sources": [str(p) for p in args.camera]})
    if args.liveness is not None:
        config = config.with_overrides(vision={"liveness": args.liveness == "on"})
    db = open_door_db(args)
    url = central_url(args)
    door = Door(config, db, synced=url is not None)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    parts = Parts()
    try:
        door.start()
        parts.add("door", door)
        sync = start_sync_worker(config, url, db)  # None in the embedded default
        if sync is not None:
            parts.add("sync", sync)
        if config.mqtt.enabled or config.remote.sms_commands:
            from appliance.remote.runtime import start_outward

            # MQTT (events, state, Home Assistant, commands) and SMS commands
            start_outward(config, door, db, parts, with_sync=sync is not None)
        health = HealthWorker(door)
        health.start()
        parts.add("health", health)
        if args.no_admin or not config.admin.enabled:
            # the admin page runs in its own process (the Pi layout): it reads the door's
            # state from the database (written on change, and every minute)
            from appliance.store.models_state import DoorStateWriter

            writer = DoorStateWriter(db, config.device.id, door.status, refresh_s=60.0)
            parts.add("door-state", writer.start())
        dispatcher = _start_dispatcher(config, db)
        if dispatcher is not None:
            parts.add("dispatcher", dispatcher)
            door.alert_hooks.append(dispatcher.notify)  # deliver now, not at the next poll
        if config.admin.enabled and not args.no_admin:
            admin_db = open_central(config, url) if url else db
            parts.add("admin", _start_admin(config, admin_db, door, sync))
        simulated = door.simulator is not None
        print(
            f"doorward: door {config.device.id!r} running "
            f"({'simulated hardware' if simulated else 'GPIO'}, database {db.url})",
            flush=True,
        )
        admin_url = None
        if config.admin.enabled and not args.no_admin:
            admin_url = f"http://{config.admin.host}:{config.admin.port}/"
            print(f"doorward: admin page on {admin_url}")
        if simulated:
            for hint in first_run_hints(config, _user_count(db), admin_url):
                print(f"doorward: {hint}", flush=True)
            door.listeners.append(event_printer(user_names(db)))
        if door.simulator is not None and sys.stdin.isatty() and not args.no_terminal_keypad:
            threading.Thread(
                target=Terminal(door).run, args=(sys.stdin, stop), daemon=True, name="tty-keypad"
            ).start()
        # a stuck door loop stops the pings: systemd's watchdog restarts us
        Watchdog(Notifier(), lambda: door.healthy).run(stop, f"door {config.device.id} running")
    finally:
        _shutdown(door, parts)
        db.close()
    return 0


STOP_BUDGET_S = 12.0  # well inside the unit's TimeoutStopSec=20
PART_STOP_S = 3.0  # at most this per part (sync, dispatcher...) still busy with a dead server


def _shutdown(door: Any, parts: Parts) -> None:
    """Stop within STOP_BUDGET_S: the door first (its held events are written before anything
    else may hang), then the other parts in reverse, each given what is left of the budget."""
    import time

    t0 = time.monotonic()
    try:
        door.stop()
        left = door.drain(min(3.0, STOP_BUDGET_S / 4))
        if left:
            log.error("event=held_not_written_at_stop count=%d", left)
    except Exception:
        log.exception("event=door_drain_failed")
    parts.stop_all(budget_s=STOP_BUDGET_S - (time.monotonic() - t0), part_s=PART_STOP_S, skip=door)
    door.close()
    log.info("event=stopped seconds=%.2f", time.monotonic() - t0)


def first_run_hints(config: Config, users: int, admin_url: str | None) -> list[str]:
    """What a newcomer on simulated hardware needs to know before typing a code."""
    hints = []
    if admin_url:
        from web_admin.accounts import initial_password_path

        first = initial_password_path(config.data_dir)
        if first.exists():
            hints.append(
                f"admin page: sign in at {admin_url} as 'admin' with the one-time password in "
                f"{first} (you choose a new one at once); forgotten later: "
                "doorward admin-user passwd admin"
            )
    where = f"on the admin page ({admin_url}users/new) or " if admin_url else ""
    if users == 0:
        hints.append(
            f"no users enrolled yet, so every code is refused: enroll one {where}"
            "with: doorward enroll --number 1 --name You --pin 1234 --photo your-face.jpg"
        )
    if config.camera.kind == "replay" and not config.camera.sources:
        panel = "the Device page's camera panel, " if admin_url else ""
        hints.append(
            "the simulated camera shows an empty doorstep, so a right code ends in "
            "'DENIED  no face seen' and an intruder alert; show it a photo of the user with "
            f"{panel}doorward run --camera another-photo-of-you.jpg, or type: camera PATH "
            "(liveness is on: a still photo ends in denied_liveness; use a short video, "
            "or set [vision] liveness = false)"
        )
    return hints


def _user_count(db: Any) -> int:
    from sqlalchemy import func, select

    from appliance.store.models import User

    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(User)) or 0)


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
    from appliance.security import pin_hasher
    from appliance.vision import FaceEngine

    config: Config = args.config
    db = open_central_db(args)
    try:
        user = enroll_user(
            db,
            FaceEngine(config.vision),
            pin_hasher(config, db),
            number=args.number,
            name=args.name,
            pin=args.pin,
            photos=args.photo,
            duress_pin=args.duress_pin,
            email=args.email,
            phone=args.phone,
            role=args.role,
            max_code_length=config.access.max_code_length,
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


def _sync_once_from_central(args: argparse.Namespace, replica: Any) -> None:
    """With a central database (--db, $DOORWARD_DATABASE_URL, database.url), the replica the
    visit decides from is brought up to date first, as `doorward run` would have done."""
    url = central_url(args)
    if url is None:
        return
    from appliance.store.central import open_central
    from appliance.store.sync import SyncWorker

    central = open_central(args.config, url)
    try:
        report = SyncWorker(args.config, central, replica).run_once()
    finally:
        central.close()
    if not report.ok:
        print(
            f"doorward: warning: replica not synced from the central database ({report.error});"
            " deciding from the replica as it is",
            file=sys.stderr,
        )


def cmd_simulate(args: argparse.Namespace) -> int:
    from appliance.core import Tick
    from appliance.door import Door
    from appliance.hardware.board import mock_factory
    from appliance.hardware.camera import ReplayCamera

    hardware: dict[str, Any] = {"pin_factory": "mock"}
    if args.fire and args.config.hardware.pins.fire_input is None:
        pins = args.config.hardware.pins.to_builtins()
        free = sorted(set(range(2, 28)) - set(_used_pins(pins)))
        hardware["pins"] = {**pins, "fire_input": free[-1]}
    config: Config = args.config.with_overrides(hardware=hardware)
    bad = [k for k in args.keys.upper() if k not in "0123456789*#ABCD"]
    if bad:
        raise CliError(f"--keys: {bad[0]!r} is not a keypad key (0-9 * # A-D)")
    at = None
    if args.at is not None:
        from appliance.cli.policies import parse_when

        at = parse_when(args.at, "--at")
    db = open_door_db(args)
    if not args.no_sync:
        _sync_once_from_central(args, db)
    factory = mock_factory()
    clock = SimClock()
    camera = ReplayCamera(args.camera)
    liveness = None if args.liveness is None else args.liveness == "on"
    start = clock.now
    wall = (lambda: at.timestamp() + clock.now - start) if at is not None else time.time
    door = Door(
        config, db, factory=factory, camera=camera, clock=clock, inline_face=True,
        liveness=liveness, wall_clock=wall, synced=central_url(args) is not None,
    )  # fmt: skip
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
        door.poll_policies_now()  # the stored lockdown, the schedule window at --at
        if args.fire:
            sim.fire_alarm(True)
            door.pump(timeout=2.0)

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
            door.press_keys(key)
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
        "guest_entry": any(e["event"] == "guest_entry" for e in events),
        "held": door.controller.held_reason or None,
        "lockdown": door.controller.lockdown,
    }
    print(json.dumps(summary), flush=True)
    return 0


def _used_pins(pins: dict[str, Any]) -> list[int]:
    out: list[int] = []
    for v in pins.values():
        if isinstance(v, list):
            out += v
        elif isinstance(v, int) and not isinstance(v, bool):
            out.append(v)
    return out


# ---- lock-relay -----------------------------------------------------------------------------
RELAY_FACTORIES = ("auto", "mock", "lgpio", "rpigpio", "native")


def relay_settings(args: argparse.Namespace) -> tuple[str, int, bool, list[str]]:
    """(pin factory, relay BCM pin, active high, notes) for lock-relay, read leniently.

    Only hardware.pin_factory, hardware.pins.relay and hardware.pins.relay_active_high are
    read; every other section, unknown keys, pin clashes, even a file that is not TOML, are
    ignored (noted), so the relay can always be locked. Flags win over the file; the
    defaults are the README's wiring.
    """
    import tomllib

    from appliance.config import ENV_CONFIG

    notes: list[str] = []
    path = args.config or os.environ.get(ENV_CONFIG) or None
    data: Any = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            notes.append(f"config {path} not read ({exc}); relay defaults used")
    section = data.get("hardware") if isinstance(data, dict) else None
    hw: dict[str, Any] = section if isinstance(section, dict) else {}
    pins: dict[str, Any] = hw["pins"] if isinstance(hw.get("pins"), dict) else {}
    factory = hw.get("pin_factory", "auto")
    if factory not in RELAY_FACTORIES:
        notes.append(f"hardware.pin_factory {factory!r} unknown; 'auto' used")
        factory = "auto"
    relay = pins.get("relay", 17)
    if isinstance(relay, bool) or not isinstance(relay, int) or not 0 <= relay <= 27:
        notes.append(f"hardware.pins.relay {relay!r} is not a BCM pin 0-27; 17 used")
        relay = 17
    active_high = pins.get("relay_active_high", True)
    if not isinstance(active_high, bool):
        notes.append(
            f"hardware.pins.relay_active_high {active_high!r} is not true/false; true used"
        )
        active_high = True
    if args.pin_factory is not None:
        factory = args.pin_factory
    if args.pin is not None:
        relay = args.pin
    if args.active_high is not None:
        active_high = args.active_high
    return factory, relay, active_high, notes


def cmd_lock_relay(args: argparse.Namespace) -> int:
    """Drive the relay to locked and exit (systemd ExecStartPre/ExecStopPost).

    Needs only the relay: see relay_settings. Exits 1 if the relay cannot be driven, so the
    unit sees the failure.
    """
    from appliance.hardware.board import make_pin_factory
    from appliance.hardware.relay import LockRelay

    factory_name, pin, active_high, notes = relay_settings(args)
    for note in notes:
        print(f"doorward: lock-relay: {note}", file=sys.stderr, flush=True)
    try:
        factory = make_pin_factory(factory_name)
        relay = LockRelay(pin, active_high=active_high, pin_factory=factory)
        relay.close()
    except Exception as exc:
        print(f"doorward: error: cannot drive relay pin {pin} locked: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"relay": "locked", "pin": pin, "active_high": active_high}))
    return 0


# ---- parser ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="doorward", description="Doorward entry appliance: keypad + PIN + face, alerts."
    )
    _global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", help="run the door loop (and the admin page)")
    p.add_argument("--no-admin", action="store_true", help="do not serve the admin page")
    p.add_argument(
        "--no-terminal-keypad", action="store_true", help="do not read keys from the terminal"
    )
    p.add_argument(
        "--camera",
        type=existing_file,
        action="append",
        metavar="PATH",
        help="photo, video or folder the replay camera shows (repeatable; "
        "the terminal's `camera PATH` switches it later)",
    )
    p.add_argument(
        "--liveness",
        choices=["on", "off"],
        help="override vision.liveness (off: still photos can pass; never at a real door)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("enroll", help="enroll a user with PIN and face photos")
    p.add_argument("--number", type=positive_int, required=True, help="user number")
    p.add_argument("--name", required=True)
    p.add_argument("--pin", required=True, help="4-12 digits")
    p.add_argument("--photo", type=existing_file, action="append", required=True)
    p.add_argument("--duress-pin", help="PIN that opens the door and sends a silent alert")
    p.add_argument("--email")
    p.add_argument("--phone")
    p.add_argument(
        "--role",
        choices=["resident", "guest", "service", "admin"],
        default="resident",
        help="admin: still let in during a lockdown",
    )
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser("simulate", help="one scripted visit on simulated hardware (JSON out)")
    p.add_argument("--keys", required=True, help="keys pressed, e.g. '1*1234#'")
    p.add_argument("--camera", type=existing_file, action="append", required=True)
    p.add_argument("--door", choices=["open", "forced"], help="open after the code, or forced")
    p.add_argument("--liveness", choices=["on", "off"], help="override vision.liveness")
    p.add_argument(
        "--no-sync",
        action="store_true",
        help="decide from the replica as it is, as a door without network would",
    )
    p.add_argument("--at", metavar="ISO", help="the wall-clock time of the visit (default: now)")
    p.add_argument(
        "--fire", action="store_true", help="the fire-alarm input is active during the visit"
    )
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "lock-relay",
        help="drive the lock relay to locked and exit (reads only the relay's settings)",
    )
    p.add_argument("--pin", type=int, choices=range(28), metavar="BCM", help="relay BCM pin")
    p.add_argument("--pin-factory", choices=RELAY_FACTORIES, help="gpiozero pin factory")
    polarity = p.add_mutually_exclusive_group()
    polarity.add_argument("--active-high", dest="active_high", action="store_true", default=None)
    polarity.add_argument("--active-low", dest="active_high", action="store_false")
    p.set_defaults(func=cmd_lock_relay)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for command in sub.choices.values():  # `doorward run --config X` = `doorward --config X run`
        _global_options(command, after_command=True)
    return parser


def _global_options(parser: argparse.ArgumentParser, *, after_command: bool = False) -> None:
    """--config, --db, --replica, --log-level: accepted before or after the sub-command (one
    given after it wins). After the command the defaults are left out, so that an option given
    only before it is kept."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if after_command else value

    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default(None),
        help="TOML config file (default: $DOORWARD_CONFIG, else built-in)",
    )
    parser.add_argument(
        "--db",
        dest="db_url",
        metavar="URL",
        default=default(None),
        help="central database URL, e.g. mysql+pymysql://user@host/doorward "
        "(default: $DOORWARD_DATABASE_URL, else database.url, else none: the replica is all)",
    )
    parser.add_argument(
        "--replica",
        dest="replica_path",
        metavar="PATH",
        default=default(None),
        help="local replica the door decides from (default: $DOORWARD_REPLICA_PATH, "
        "else database.replica_path, else var/doorward.db)",
    )
    parser.add_argument(
        "--log-level",
        default=default(os.environ.get("DOORWARD_LOG_LEVEL", "INFO")),
        help="log level",
    )


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
        if args.func is not cmd_lock_relay:  # lock-relay reads only the relay's settings
            args.config = load_config(args.config)
        return int(args.func(args) or 0)
    except (ConfigError, CliError) as exc:
        print(f"doorward: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # StoreError: a damaged replica, an unusable database URL
        from appliance.store.db import StoreError

        if not isinstance(exc, StoreError):
            raise
        print(f"doorward: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # validation errors raised by the domain (EnrollError, ...)
        print(f"doorward: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
