"""Owns the central MySQL bootstrap: database, migrations, a least-privilege TLS user per door."""

from __future__ import annotations

import argparse
import re
import secrets
import sys
from pathlib import Path

# What a door may do centrally. Tables not listed get no grant (admin tables, device-local ones).
# The door reads users/templates down and writes its events up (sync is idempotent by UUID).
DOOR_GRANTS: dict[str, str] = {
    "users": "SELECT (columns)",  # DOOR_USER_COLUMNS only: not email, not phone
    "face_templates": "SELECT",
    "user_access": "SELECT",
    "sync_seq": "SELECT",
    "sync_tombstones": "SELECT",
    "access_events": "SELECT, INSERT",
    "devices": "SELECT, INSERT, UPDATE",
    "alembic_version": "SELECT",  # doorward doctor compares the migration head
    # access policies (issue 17): guest codes and schedules down, guest-code uses up
    "guest_codes": "SELECT",
    "schedule_windows": "SELECT",
    "holidays": "SELECT",
    "guest_uses": "SELECT, INSERT",
}
# The admin page: data only, no DDL (migrations run with the bootstrap account).
ADMIN_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
ENV_ADMIN_PASSWORD = "DOORWARD_MYSQL_ADMIN_PASSWORD"  # noqa: S105 (a variable name)


class BootstrapError(RuntimeError):
    """The bootstrap refused to go on; the message says what to change."""


def admin_password(env: dict[str, str], password_file: Path | None) -> str:
    """The privileged account's password: from --admin-password-file or the environment,
    never from the command line (argv shows in `ps` and in the shell history)."""
    if password_file is not None:
        try:
            return password_file.read_text().strip()
        except OSError as exc:
            raise BootstrapError(
                f"--admin-password-file {password_file}: cannot read it ({exc.strerror or exc})"
            ) from None
    return env.get(ENV_ADMIN_PASSWORD, "")


def tls_args(ssl_ca: Path | None) -> dict[str, object]:
    """pymysql arguments that make the connection TLS, verifying the server's certificate
    (against ssl_ca, or the system's CAs) and its name."""
    args: dict[str, object] = {"ssl_verify_cert": True, "ssl_verify_identity": True}
    if ssl_ca is not None:
        args["ssl_ca"] = str(ssl_ca)
    return args


def check_encrypted(conn: object, where: str) -> str:
    """The TLS cipher of a live connection; BootstrapError when there is none. pymysql falls
    back to plain text when the server offers no TLS, so this is asked of the server."""
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = cur.fetchone()
    cipher = (row[1] if row else "") or ""
    if not cipher:
        raise BootstrapError(
            f"the connection to {where} is not encrypted (the server offers no TLS); enable TLS "
            "on the server (ssl_cert/ssl_key) or, on a loopback development server only, pass "
            "--no-tls"
        )
    return cipher


def door_user(device_id: str) -> str:
    """MariaDB/MySQL account name for a door: door_<id> with [.-] mapped to _ (<= 32 chars)."""
    name = "door_" + re.sub(r"[^A-Za-z0-9_]", "_", device_id)
    if len(name) > 32:
        raise ValueError(f"device id {device_id!r} is too long for a MySQL account (max 27 chars)")
    return name


def _q(name: str) -> str:
    if not NAME.match(name):
        raise ValueError(f"refusing unsafe SQL identifier {name!r}")
    return f"`{name}`"


def _password(out_dir: Path, account: str, rotate: bool) -> tuple[str, bool]:
    """The account's password from out_dir/<account>.password, created (0600) when new."""
    path = out_dir / f"{account}.password"
    if path.exists() and not rotate:
        return path.read_text().strip(), False
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_urlsafe(24)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(value + "\n")
    tmp.replace(path)
    return value, True


def _door_user_columns() -> tuple[str, ...]:
    from appliance.store.sync import DOOR_USER_COLUMNS

    return DOOR_USER_COLUMNS


def _revoke_table_select(cur: object, database: str, table: str, account: str, host: str) -> None:
    import pymysql

    try:
        # identifiers cannot be parameters: _q() validates and quotes them
        revoke = f"REVOKE SELECT ON {_q(database)}.{_q(table)} FROM %s@%s"  # noqa: S608
        cur.execute(revoke, (account, host))  # type: ignore[attr-defined]
    except pymysql.err.OperationalError as exc:
        if exc.args[0] not in (1141, 1147):  # no such grant (a new account): nothing to take
            raise


# A door writes only its own rows: these triggers refuse an access event or a device row whose
# device id is not the door account's own (door_<id>, as door_user() maps it). Other accounts
# (the admin page, the bootstrap) are not door_ accounts and pass. USER() in a trigger is the
# client's login, not the trigger's definer.
OWN_DEVICE_TRIGGERS: dict[str, tuple[str, str, str]] = {
    # trigger name: (table, timing/event, column holding the device id)
    "doorward_events_own_device_ins": ("access_events", "BEFORE INSERT", "device_id"),
    "doorward_events_own_device_upd": ("access_events", "BEFORE UPDATE", "device_id"),
    "doorward_devices_own_row_ins": ("devices", "BEFORE INSERT", "id"),
    "doorward_devices_own_row_upd": ("devices", "BEFORE UPDATE", "id"),
}


def _own_device_trigger_sql(database: str, name: str, table: str, when: str, column: str) -> str:
    """CREATE OR REPLACE TRIGGER text; every identifier is validated by _q() (no values)."""
    login = "SUBSTRING_INDEX(USER(), '@', 1)"
    own = f"CONCAT('door_', REGEXP_REPLACE(NEW.{_q(column)}, '[^A-Za-z0-9_]', '_'))"
    return (
        f"CREATE OR REPLACE TRIGGER {_q(database)}.{_q(name)} {when} ON {_q(table)} "
        f"FOR EACH ROW BEGIN "
        f"IF {login} LIKE 'door\\_%' AND {login} <> {own} THEN "
        f"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'a door writes only its own device rows'; "
        f"END IF; END"
    )


def bootstrap(
    admin_url: str,
    database: str,
    devices: list[str],
    out_dir: Path,
    *,
    host: str,
    require_tls: bool = True,
    admin_account: str | None = "doorward_admin",
    rotate: bool = False,
    migrate: bool = True,
    password: str | None = None,
    tls: bool = True,
    ssl_ca: Path | None = None,
) -> dict[str, object]:
    """Create `database`, run migrations, create/refresh accounts. Idempotent.

    `password` is the privileged account's (the URL must not carry one); `tls` makes this
    bootstrap's own connections (and the migrations') TLS with a verified server certificate.
    """
    import pymysql
    from sqlalchemy.engine import make_url

    from appliance.store.db import Database

    url = make_url(admin_url)
    if url.password:
        raise BootstrapError(
            "--admin-url: put no password in the URL (it shows in `ps` and the shell history); "
            f"use ${ENV_ADMIN_PASSWORD} or --admin-password-file"
        )
    if not host or host == "%":
        raise BootstrapError(
            "--host: give the doors' network or host (e.g. 192.168.10.% or door1.lan), "
            "not '%' (any host)"
        )
    password = password or ""
    ssl = tls_args(ssl_ca) if tls else {}
    where = f"{url.host or '127.0.0.1'}:{url.port or 3306}"
    try:
        conn = pymysql.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 3306,
            user=url.username,
            password=password,
            autocommit=True,
            connect_timeout=10,
            **ssl,  # type: ignore[arg-type]
        )
    except pymysql.err.OperationalError as exc:
        hint = ""
        if tls and "SSL" in str(exc):
            hint = " (the bootstrap needs TLS: enable it on the server, or pass --no-tls on a "
            hint += "loopback development server only)"
        raise BootstrapError(f"cannot connect to {where}: {exc.args[-1]}{hint}") from None
    report: dict[str, object] = {"database": database, "accounts": {}, "ungranted_tables": []}
    if tls:
        try:
            report["tls_cipher"] = check_encrypted(conn, where)
        except BootstrapError:
            conn.close()
            raise
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE DATABASE IF NOT EXISTS {_q(database)} "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    if migrate:
        db = Database.from_url(
            url.set(database=database, password=password or None).render_as_string(
                hide_password=False
            ),
            connect_args=dict(ssl),
        )
        try:
            db.migrate()
            print(f"bootstrap: event=migrated database={database}", file=sys.stderr)
        finally:
            db.close()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (database,),
        )
        tables = {row[0] for row in cur.fetchall()}
        report["ungranted_tables"] = sorted(tables - set(DOOR_GRANTS))
        for name, (table, when, column) in OWN_DEVICE_TRIGGERS.items():
            if table in tables:
                cur.execute(_own_device_trigger_sql(database, name, table, when, column))
        report["own_device_triggers"] = sorted(OWN_DEVICE_TRIGGERS)
        tls = " REQUIRE SSL" if require_tls else " REQUIRE NONE"
        accounts: list[tuple[str, str]] = [(door_user(d), "door") for d in devices]
        if admin_account:
            accounts.append((admin_account, "admin"))
        for account, role in accounts:
            _q(account)
            password, created = _password(out_dir, account, rotate)
            # values are parameters; only the constant TLS clause is appended
            create = "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s" + tls
            cur.execute(create, (account, host, password))
            # ALTER keeps an existing account in line (TLS requirement, rotated password)
            alter = "ALTER USER %s@%s IDENTIFIED BY %s" + tls
            cur.execute(alter, (account, host, password))
            if role == "door":
                # table-wide SELECT on users from an earlier bootstrap goes
                _revoke_table_select(cur, database, "users", account, host)
                for table, privileges in DOOR_GRANTS.items():
                    if privileges == "SELECT (columns)":
                        privileges = f"SELECT ({', '.join(_q(c) for c in _door_user_columns())})"
                    if table in tables:
                        # identifiers cannot be parameters: _q() validates and quotes them
                        grant = f"GRANT {privileges} ON {_q(database)}.{_q(table)} TO %s@%s"
                        cur.execute(grant, (account, host))
            else:
                grant = f"GRANT {ADMIN_PRIVILEGES} ON {_q(database)}.* TO %s@%s"
                cur.execute(grant, (account, host))
            report["accounts"][account] = {  # type: ignore[index]
                "role": role,
                "password_file": str(out_dir / f"{account}.password"),
                "created_password": created,
            }
            print(
                f"bootstrap: event=account name={account} role={role} host={host} "
                f"tls={'required' if require_tls else 'optional'} new_password={created}",
                file=sys.stderr,
            )
    conn.close()
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Bootstrap Doorward's central MySQL/MariaDB: database, migrations, accounts."
    )
    p.add_argument(
        "--admin-url",
        required=True,
        help="a privileged account without its password, e.g. mysql+pymysql://root@db:3306",
    )
    p.add_argument(
        "--admin-password-file", type=Path,
        help=f"the privileged account's password (else ${ENV_ADMIN_PASSWORD}; never argv)",
    )  # fmt: skip
    p.add_argument("--ssl-ca", type=Path, help="CA that signed the server's certificate")
    p.add_argument(
        "--no-tls", action="store_true",
        help="plain-text connection for the bootstrap itself (a loopback development server)",
    )  # fmt: skip
    p.add_argument("--database", default="doorward")
    p.add_argument("--device", action="append", default=[], help="a door's device id (repeat)")
    p.add_argument("--passwords-dir", type=Path, required=True, help="where <account>.password go")
    p.add_argument(
        "--host", required=True,
        help="the doors' host or network for the accounts, e.g. 192.168.10.% ('%' is refused)",
    )  # fmt: skip
    p.add_argument("--no-require-tls", action="store_true", help="development only")
    p.add_argument("--no-admin-account", action="store_true")
    p.add_argument("--rotate", action="store_true", help="new passwords for existing accounts")
    p.add_argument("--no-migrate", action="store_true")
    args = p.parse_args(argv)
    if not NAME.match(args.database):
        p.error(f"--database {args.database!r}: use letters, digits and _")
    try:
        for d in args.device:
            door_user(d)
    except ValueError as exc:
        p.error(str(exc))
    import json
    import os

    try:
        report = bootstrap(
            args.admin_url,
            args.database,
            args.device,
            args.passwords_dir,
            host=args.host,
            require_tls=not args.no_require_tls,
            admin_account=None if args.no_admin_account else "doorward_admin",
            rotate=args.rotate,
            migrate=not args.no_migrate,
            password=admin_password(dict(os.environ), args.admin_password_file),
            tls=not args.no_tls,
            ssl_ca=args.ssl_ca,
        )
    except BootstrapError as exc:
        print(f"bootstrap: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
