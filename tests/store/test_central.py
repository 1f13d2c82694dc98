"""Central connection: URL choice, password from env or file, TLS options, on the real MariaDB."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from appliance.config import Config, ConfigError
from appliance.store.central import (
    central_connect_args,
    central_url_choice,
    open_central,
    replica_path_choice,
)


def cfg(**database: object) -> Config:
    return Config.convert({"database": database})


def test_url_and_replica_choice_order(monkeypatch, tmp_path) -> None:
    c = cfg(url="mysql+pymysql://door@db/doorward", replica_path=str(tmp_path / "cfg.db"))
    monkeypatch.delenv("DOORWARD_DATABASE_URL", raising=False)
    monkeypatch.delenv("DOORWARD_REPLICA_PATH", raising=False)
    assert central_url_choice(c) == "mysql+pymysql://door@db/doorward"
    assert replica_path_choice(c) == tmp_path / "cfg.db"
    monkeypatch.setenv("DOORWARD_DATABASE_URL", "mysql+pymysql://env@db/x")
    monkeypatch.setenv("DOORWARD_REPLICA_PATH", str(tmp_path / "env.db"))
    assert central_url_choice(c) == "mysql+pymysql://env@db/x"
    assert replica_path_choice(c) == tmp_path / "env.db"
    assert central_url_choice(c, "mysql+pymysql://cli@db/x") == "mysql+pymysql://cli@db/x"
    assert replica_path_choice(c, tmp_path / "cli.db") == tmp_path / "cli.db"
    monkeypatch.delenv("DOORWARD_DATABASE_URL")
    assert central_url_choice(Config()) is None  # embedded default


def test_tls_options_become_pymysql_arguments(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / n for n in ("ca.pem", "cert.pem", "key.pem"))
    for p in (ca, cert, key):
        p.write_text("-----BEGIN CERTIFICATE-----\n")
    args = central_connect_args(
        cfg(ssl_ca=str(ca), ssl_cert=str(cert), ssl_key=str(key), connect_timeout_s=3)
    )
    assert args["ssl_ca"] == str(ca) and args["ssl_cert"] == str(cert)
    assert args["ssl_key"] == str(key)
    assert args["ssl_verify_cert"] is True and args["ssl_verify_identity"] is True
    assert args["connect_timeout"] == 3 and args["read_timeout"] == 30
    plain = central_connect_args(cfg())
    assert "ssl_verify_cert" not in plain
    with pytest.raises(ConfigError, match="database.ssl_ca"):
        central_connect_args(cfg(ssl_ca=str(tmp_path / "missing.pem")))
    with pytest.raises(ConfigError, match="ssl_cert and database.ssl_key"):
        central_connect_args(cfg(ssl_cert=str(cert)))


def test_unknown_database_key_is_rejected() -> None:
    from appliance.config import parse_config

    with pytest.raises(ConfigError, match="database.sll_ca: unknown key"):
        parse_config({"database": {"sll_ca": "x"}})


@pytest.mark.mysql
def test_password_from_file_or_env_reaches_mariadb(central_db_name, tmp_path, monkeypatch) -> None:
    import pymysql

    user, password = f"dw_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    with admin.cursor() as cur:
        cur.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (user, password))
        statement = f"GRANT ALL ON `{central_db_name}`.* TO %s@'127.0.0.1'"
        cur.execute(statement, (user,))
    try:
        url = f"mysql+pymysql://{user}@127.0.0.1:3306/{central_db_name}"
        secret = tmp_path / "db-password"
        secret.write_text(password + "\n")
        db = open_central(cfg(password={"file": str(secret)}), url)
        try:
            with db.engine.connect() as c:
                assert c.execute(text("SELECT CURRENT_USER()")).scalar().startswith(user)
            assert password not in db.url and "***" in db.url
        finally:
            db.close()
        monkeypatch.setenv("DW_TEST_DB_PASSWORD", password)
        db = open_central(cfg(password={"env": "DW_TEST_DB_PASSWORD"}), url)
        with db.engine.connect() as c:
            assert c.execute(text("SELECT 1")).scalar() == 1
        db.close()
        wrong = open_central(cfg(), url)  # no password configured: refused by the server
        with pytest.raises(OperationalError, match="1045"):
            wrong.engine.connect()
        wrong.close()
        monkeypatch.delenv("DW_TEST_DB_PASSWORD")
        with pytest.raises(ConfigError, match="database.password"):
            open_central(cfg(password={"env": "DW_TEST_DB_PASSWORD"}), url)
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP USER %s@'127.0.0.1'", (user,))
        admin.close()


@pytest.mark.mysql
def test_tls_required_is_not_silently_dropped(central_url) -> None:
    # this MariaDB has TLS disabled: requiring TLS must fail, not fall back to plain text
    db = open_central(cfg(tls=True), central_url)
    try:
        with pytest.raises(OperationalError, match="SSL is required"):
            db.engine.connect()
    finally:
        db.close()
