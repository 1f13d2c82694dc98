"""Owns the admin CLI: `doorward admin` (serve the page alone) and `doorward admin-user`."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import sys
import threading
from typing import Any

log = logging.getLogger("web_admin")

ENV_NEW_PASSWORD = "DOORWARD_NEW_PASSWORD"  # noqa: S105 (a variable name)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("admin", help="serve the admin page alone (waitress)")
    p.add_argument("--host", help="address to listen on (default: admin.host)")
    p.add_argument("--port", type=int, help="port to listen on (default: admin.port)")
    p.add_argument("--threads", type=int, default=4, help="waitress worker threads")
    p.set_defaults(func=cmd_admin)

    u = subparsers.add_parser("admin-user", help="manage admin page accounts")
    us = u.add_subparsers(dest="admin_user_cmd", required=True, metavar="ACTION")
    a = us.add_parser("add", help="add an account (password asked, or $DOORWARD_NEW_PASSWORD)")
    a.add_argument("username")
    a.add_argument("--role", choices=["admin", "viewer"], default="admin")
    a.set_defaults(func=cmd_user, action="add")
    pw = us.add_parser("passwd", help="set a new password (ends the account's sessions)")
    pw.add_argument("username")
    pw.set_defaults(func=cmd_user, action="passwd")
    r = us.add_parser("role", help="change an account's role")
    r.add_argument("username")
    r.add_argument("role", choices=["admin", "viewer"])
    r.set_defaults(func=cmd_user, action="role")
    for name, what in (("disable", "disable an account"), ("enable", "enable and unlock"),
                       ("delete", "delete an account")):  # fmt: skip
        x = us.add_parser(name, help=what)
        x.add_argument("username")
        x.set_defaults(func=cmd_user, action=name)
    ls = us.add_parser("list", help="list accounts")
    ls.set_defaults(func=cmd_user, action="list")


def _db(args: argparse.Namespace) -> Any:
    from appliance.cli.common import open_central_db

    return open_central_db(args)


def _new_password(username: str) -> str:
    env = os.environ.get(ENV_NEW_PASSWORD)
    if env:
        return env
    if not sys.stdin.isatty():
        raise SystemExit(f"doorward: no terminal to ask for a password; set {ENV_NEW_PASSWORD}")
    first = getpass.getpass(f"New password for {username}: ")
    if first != getpass.getpass("Again: "):
        raise SystemExit("doorward: the passwords differ; nothing changed")
    return first


def cmd_user(args: argparse.Namespace) -> int:
    from web_admin import accounts

    db = _db(args)
    try:
        if args.action == "list":
            for acc in accounts.list_accounts(db):
                state = "active" if acc.active else "disabled"
                if acc.locked_until is not None:
                    state += f" locked_until={acc.locked_until:%Y-%m-%d %H:%M}"
                print(f"{acc.username}\t{acc.role}\t{state}")
            return 0
        if args.action == "add":
            accounts.create_account(db, args.username, _new_password(args.username), args.role)
        elif args.action == "passwd":
            accounts.set_password(db, args.username, _new_password(args.username))
        elif args.action == "role":
            accounts.update_account(db, args.username, role=args.role)
        elif args.action == "disable":
            accounts.update_account(db, args.username, active=False)
        elif args.action == "enable":
            accounts.update_account(db, args.username, active=True)
        elif args.action == "delete":
            accounts.delete_account(db, args.username)
        _cli_audit(db, args.action, args.username)
        print(f"doorward: admin account {args.username}: {args.action} done")
        return 0
    except accounts.AccountError as exc:
        print(f"doorward: {exc}", file=sys.stderr)
        return 2
    finally:
        db.close()


def _cli_audit(db: Any, action: str, username: str) -> None:
    from appliance.store.models_admin import AuditEntry

    who = f"cli:{getpass.getuser()}"
    with db.session() as s:
        s.add(AuditEntry(actor=who[:64], action=f"admin_account_{action}", target=username))


def cmd_admin(args: argparse.Namespace) -> int:
    from web_admin import create_app
    from web_admin.serving import create_admin_server

    config = args.config
    host = args.host or config.admin.host
    port = args.port if args.port is not None else config.admin.port
    db = _db(args)
    from appliance.cli.common import central_url, open_door_db

    # with a central database, the door's own state (lockdown switch, outbox) is in this
    # host's replica: hand it in as the local database (the embedded default has one file)
    local = open_door_db(args) if central_url(args) else None
    app = create_app(config=config, db=db, local_db=local)
    server = create_admin_server(
        app, host, port, args.threads, trust_loopback_proxy=config.admin.proxy_from_loopback
    )
    stop = threading.Event()

    def _stop(*_: object) -> None:
        stop.set()
        server.close()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    print(f"doorward: admin page on http://{host}:{server.effective_port}/ (database {db.url})",
          flush=True)  # fmt: skip
    try:
        server.run()
    except OSError:
        if not stop.is_set():
            raise
    finally:
        db.close()
        if local is not None:
            local.close()
    return 0
