"""Central MySQL bootstrap on the real MariaDB: migrations, least privilege, TLS required."""

from __future__ import annotations

import importlib.util
import stat
import uuid

import pymysql
import pytest
from sqlalchemy import select

from tests.provisioning.prov_helpers import REPO

pytestmark = pytest.mark.mysql

_spec = importlib.util.spec_from_file_location(
    "doorward_mysql_bootstrap", REPO / "provisioning/mysql/bootstrap.py"
)
bootstrap_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bootstrap_mod)

ROOT_URL = "mysql+pymysql://root@127.0.0.1:3306"


@pytest.fixture()
def accounts_to_drop():
    names: list[str] = []
    yield names
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    with conn.cursor() as cur:
        for name in names:
            cur.execute("DROP USER IF EXISTS %s@%s", (name, "127.0.0.1"))
    conn.close()


def _connect(user: str, password: str, db: str):
    return pymysql.connect(
        host="127.0.0.1",
        user=user,
        password=password,
        database=db,
        autocommit=True,
        connect_timeout=3,
    )


def test_door_account_is_least_privilege_and_tls_is_enforced(mysql_db, tmp_path, accounts_to_drop):
    device = f"t{uuid.uuid4().hex[:8]}.door"
    account = bootstrap_mod.door_user(device)
    accounts_to_drop.append(account)
    pw_dir = tmp_path / "pw"
    report = bootstrap_mod.bootstrap(
        ROOT_URL,
        mysql_db,
        [device],
        pw_dir,
        host="127.0.0.1",
        require_tls=False,
        tls=False,  # the test server has no TLS; test_bootstrap_connection_needs_tls below
        admin_account=None,
    )
    assert "admin_accounts" in report["ungranted_tables"]
    pw_file = pw_dir / f"{account}.password"
    assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
    password = pw_file.read_text().strip()

    conn = _connect(account, password, mysql_db)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM users")
        assert cur.fetchone() == (0,)
        cur.execute("SELECT version_num FROM alembic_version")
        assert cur.fetchall()
        cur.execute(
            "INSERT INTO access_events (id, device_id, ts, kind) VALUES (%s, %s, NOW(), %s)",
            (str(uuid.uuid4()), device, "heartbeat"),
        )
        # the columns a door needs, and not the contact details
        cur.execute("SELECT id, number, name, pin_hash, active, version FROM users")
        for private in ("SELECT email FROM users", "SELECT phone FROM users",
                        "SELECT * FROM users"):  # fmt: skip
            with pytest.raises(pymysql.err.OperationalError) as exc:
                cur.execute(private)
            assert exc.value.args[0] in (1142, 1143), private  # column/command denied
        for forbidden in (
            "DELETE FROM users",
            "SELECT * FROM admin_accounts",
            "DROP TABLE access_events",
            "UPDATE access_events SET kind = 'x'",
            "CREATE TABLE evil (x INT)",
        ):
            with pytest.raises(pymysql.err.OperationalError) as exc:
                cur.execute(forbidden)
            assert exc.value.args[0] in (1142, 1044, 1045), forbidden  # command denied
    conn.close()

    # the second run is harmless and keeps the password; then TLS becomes mandatory
    again = bootstrap_mod.bootstrap(
        ROOT_URL,
        mysql_db,
        [device],
        pw_dir,
        host="127.0.0.1",
        require_tls=True,
        tls=False,
        admin_account=None,
    )
    assert again["accounts"][account]["created_password"] is False
    assert pw_file.read_text().strip() == password
    with pytest.raises(pymysql.err.OperationalError) as exc:
        _connect(account, password, mysql_db)  # this MariaDB speaks no TLS: refused
    assert exc.value.args[0] == 1045
    root = pymysql.connect(host="127.0.0.1", user="root", password="")
    with root.cursor() as cur:
        cur.execute("SHOW GRANTS FOR %s@%s", (account, "127.0.0.1"))
        grants = " ".join(row[0] for row in cur.fetchall())
    root.close()
    assert "REQUIRE SSL" in grants


def test_cli_rejects_bad_names(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bootstrap_mod.main(
            [
                "--admin-url",
                ROOT_URL,
                "--database",
                "x; DROP",
                "--passwords-dir",
                str(tmp_path),
                "--host",
                "127.0.0.1",
            ]  # fmt: skip
        )
    assert "--database" in capsys.readouterr().err
    with pytest.raises(ValueError, match="too long"):
        bootstrap_mod.door_user("a" * 40)


def test_bootstrap_connection_needs_tls_and_no_password_on_the_command_line(
    mysql_db, tmp_path, capsys, monkeypatch
):
    """The real MariaDB here offers no TLS: the bootstrap refuses to talk to it in plain text
    unless told --no-tls; a password in --admin-url and a '%' host are refused before any
    connection is made; the password comes from the environment or a file."""
    args = ["--database", mysql_db, "--passwords-dir", str(tmp_path / "pw"), "--no-migrate",
            "--no-admin-account", "--no-require-tls"]  # fmt: skip
    rc = bootstrap_mod.main(["--admin-url", ROOT_URL, "--host", "127.0.0.1", *args])
    err = capsys.readouterr().err
    assert rc == 2 and ("not encrypted" in err or "SSL is required" in err) and "--no-tls" in err

    rc = bootstrap_mod.main(
        ["--admin-url", "mysql+pymysql://root:s3cretpw@127.0.0.1:3306", "--host", "127.0.0.1",
         "--no-tls", *args]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "no password in the URL" in err and "s3cretpw" not in err

    rc = bootstrap_mod.main(["--admin-url", ROOT_URL, "--host", "%", "--no-tls", *args])
    assert rc == 2 and "not '%'" in capsys.readouterr().err

    # the password from a file (here root's, which is empty): the run goes through
    pw = tmp_path / "root.pw"
    pw.write_text("\n")
    rc = bootstrap_mod.main(["--admin-url", ROOT_URL, "--host", "127.0.0.1", "--no-tls",
                             "--admin-password-file", str(pw), *args])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    # a wrong password from the environment is used (and refused by the server)
    monkeypatch.setenv("DOORWARD_MYSQL_ADMIN_PASSWORD", "wrong-one")
    rc = bootstrap_mod.main(["--admin-url", ROOT_URL, "--host", "127.0.0.1", "--no-tls", *args])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot connect" in err and "wrong-one" not in err


def test_a_door_account_syncs_without_reading_contact_details(mysql_db, tmp_path, accounts_to_drop):
    """The door's real sync round works within its column grants, and the replica never gets
    a user's email or phone."""
    from appliance.config import Config
    from appliance.security import PinHasher
    from appliance.store.central import open_central, open_local_replica
    from appliance.store.models import User
    from appliance.store.sync import SyncWorker

    device = f"s{uuid.uuid4().hex[:8]}"
    account = bootstrap_mod.door_user(device)
    accounts_to_drop.append(account)
    bootstrap_mod.bootstrap(ROOT_URL, mysql_db, [device], tmp_path / "pw", host="127.0.0.1",
                            require_tls=False, tls=False, admin_account=None)  # fmt: skip
    password = (tmp_path / "pw" / f"{account}.password").read_text().strip()
    config = Config.convert(
        {"device": {"id": device, "data_dir": str(tmp_path / "var")},
         "hardware": {"pin_factory": "mock"}}
    )  # fmt: skip
    root = open_central(config, f"{ROOT_URL}/{mysql_db}", migrate=False)
    with root.session() as s:
        s.add(User(number=7, name="Ada", email="ada@example.org", phone="+4412345678",
                   pin_hash=PinHasher("p").hash("2468")))  # fmt: skip
    root.close()
    door = open_central(
        config, f"mysql+pymysql://{account}:{password}@127.0.0.1:3306/{mysql_db}", migrate=False
    )
    replica = open_local_replica(config)
    try:
        report = SyncWorker(config, door, replica).run_once()
        assert report.ok, report.error
        assert report.pulled["users"] == 1
        with replica.session() as s:
            u = s.scalars(select(User)).one()
        assert (u.number, u.name, u.email, u.phone) == (7, "Ada", None, None)
    finally:
        door.close()
        replica.close()


def test_a_door_writes_only_its_own_events_and_device_row(mysql_db, tmp_path, accounts_to_drop):
    """On the real MariaDB: a door account may insert its own access events and its own device
    row, and is refused (SQLSTATE 45000) for another door's; the bootstrap account is not."""
    import pymysql

    mine, other = f"m{uuid.uuid4().hex[:8]}", f"o{uuid.uuid4().hex[:8]}"
    account = bootstrap_mod.door_user(mine)
    accounts_to_drop.append(account)
    report = bootstrap_mod.bootstrap(ROOT_URL, mysql_db, [mine], tmp_path / "pw",
                                     host="127.0.0.1", require_tls=False, tls=False,
                                     admin_account=None)  # fmt: skip
    assert len(report["own_device_triggers"]) == 4
    password = (tmp_path / "pw" / f"{account}.password").read_text().strip()
    event = ("INSERT INTO access_events (id, device_id, ts, kind) "
             "VALUES (%s, %s, UTC_TIMESTAMP(), 'granted')")  # fmt: skip
    device = "INSERT INTO devices (id, name, created_at) VALUES (%s, %s, UTC_TIMESTAMP())"
    root = pymysql.connect(host="127.0.0.1", user="root", database=mysql_db, autocommit=True)
    door = pymysql.connect(host="127.0.0.1", user=account, password=password,
                           database=mysql_db, autocommit=True)  # fmt: skip
    try:
        with root.cursor() as c:
            c.execute(device, (other, "Other door"))  # not a door account: allowed
        with door.cursor() as c:
            c.execute(device, (mine, "My door"))
            c.execute(event, (str(uuid.uuid4()), mine))
            c.execute("UPDATE devices SET name = 'Mine' WHERE id = %s", (mine,))
            for sql, args in [
                (event, (str(uuid.uuid4()), other)),
                ("UPDATE devices SET name = 'hijacked' WHERE id = %s", (other,)),
                (device, (f"{other}x", "a third door")),
            ]:
                with pytest.raises(pymysql.err.OperationalError) as err:
                    c.execute(sql, args)
                assert err.value.args[0] == 1644 and "own device" in err.value.args[1]
        with root.cursor() as c:
            c.execute("SELECT device_id FROM access_events")
            assert [r[0] for r in c.fetchall()] == [mine]
            c.execute("SELECT name FROM devices WHERE id = %s", (other,))
            assert c.fetchone()[0] == "Other door"
    finally:
        door.close()
        root.close()
