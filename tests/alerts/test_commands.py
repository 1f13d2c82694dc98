"""`doorward alerts status|flush|test` through the real command line entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from appliance.cli import main
from appliance.store.db import Database, sqlite_url
from tests.support.loopback import SmtpServer, TwilioServer
from tests.support.sim_modem import SimModem
from tests.support.waiting import free_port

from .support import add_alert


def _toml_value(v: Any) -> str:
    return (
        json.dumps(v)
        if not isinstance(v, dict)
        else "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    )


def write_config(tmp_path: Path, **sections: dict[str, Any]) -> Path:
    lines = [
        "[device]",
        'id = "door-t"',
        f'data_dir = "{tmp_path}"',
        "[alerts]",
        "probe_enabled = false",
        "backoff_initial_s = 0.05",
        "backoff_max_s = 0.2",
    ]
    for name, values in sections.items():
        lines.append(f"[alerts.{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    path = tmp_path / "doorward.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], config: Path, *argv: str) -> tuple[int, Any]:
    code = main(["--config", str(config), "--log-level", "WARNING", "alerts", *argv])
    out = capsys.readouterr()
    try:
        return code, json.loads(out.out)
    except json.JSONDecodeError:
        return code, out.err


def _email(port: int) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "security": "none", "from": "d@example.test",
            "to": ["o@example.test"], "timeout_s": 2}  # fmt: skip


def _db(tmp_path: Path) -> Database:
    outbox_db = Database.from_url(sqlite_url(tmp_path / "doorward.db"))
    outbox_db.migrate()
    return outbox_db


def test_status_and_flush(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], smtp: SmtpServer
) -> None:
    config = write_config(tmp_path, email=_email(smtp.port))
    outbox_db = _db(tmp_path)
    ids = [add_alert(outbox_db, tmp_path, kind=k) for k in ("forced", "tamper", "duress")]
    code, status = run(capsys, config, "status")
    assert code == 0 and status["alerts"] == {"pending": 3, "delivered": 0, "failed": 0}
    code, out = run(capsys, config, "flush", "--timeout", "5")
    assert code == 0 and out["pending"] == 0
    assert sorted(smtp.sink.message_ids()) == sorted(f"<{i}@door-t.doorward>" for i in ids)
    code, status = run(capsys, config, "status")
    assert status["alerts"]["delivered"] == 3
    assert status["channels"] == {"email": {"delivered": 3}, "mailbox": {"delivered": 3}}


def test_flush_with_the_server_down_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, email=_email(free_port()))
    add_alert(_db(tmp_path), tmp_path)
    code, out = run(capsys, config, "flush", "--timeout", "0.5")
    assert code == 1 and out["pending"] == 1
    code, status = run(capsys, config, "status")
    assert status["channels"]["email"] == {"pending": 1}


def test_test_email(tmp_path: Path, capsys: pytest.CaptureFixture[str], smtp: SmtpServer) -> None:
    config = write_config(tmp_path, email=_email(smtp.port))
    code, out = run(capsys, config, "test", "--channel", "email")
    assert code == 0 and out["sent"] is True
    [msg] = smtp.sink.messages
    assert "Test message" in msg["Subject"]


def test_test_twilio_and_gsm(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    twilio: TwilioServer,
    modem: SimModem,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token_file = tmp_path / "twilio.token"
    token_file.write_text(twilio.token + "\n")
    config = write_config(
        tmp_path,
        twilio={"account_sid": twilio.account_sid, "token": {"file": str(token_file)},
                "from": "+15550000001", "to": ["+15550000002"], "api_base": twilio.base},
        gsm={"port": modem.port, "to": ["+15550000003"], "timeout_s": 2},
    )  # fmt: skip
    code, out = run(capsys, config, "test", "--channel", "twilio")
    assert code == 0 and out["sent"] and "Test message" in twilio.posts[0].form["Body"]
    code, out = run(capsys, config, "test", "--channel", "gsm")
    assert code == 0 and out["sent"] and modem.sent[0].number == "+15550000003"
    modem.mode = "no_network"
    code, out = run(capsys, config, "test", "--channel", "gsm")
    assert code == 1 and "not registered" in out["error"]


def test_test_unconfigured_or_secret_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path)
    code, err = run(capsys, config, "test", "--channel", "twilio")
    assert code == 2 and "alerts.twilio is not configured" in err
    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    config = write_config(
        tmp_path,
        twilio={"account_sid": "AC1", "token": {"env": "NO_SUCH_TOKEN_VAR"}, "from": "+1555",
                "to": ["+1556"]},
    )  # fmt: skip
    code, err = run(capsys, config, "test", "--channel", "twilio")
    assert code == 2 and "alerts.twilio.token" in err and "NO_SUCH_TOKEN_VAR" in err
