"""Configuration: strict TOML, every error names its key, secrets only from env or files."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.cli import main
from appliance.config import Config, ConfigError, SecretRef, load_config


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "doorward.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_no_file_is_the_embedded_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOORWARD_CONFIG", raising=False)
    cfg = load_config(None)
    # the same, but with data_dir made absolute when the config loads (against the cwd)
    assert cfg == Config().with_overrides(device={"data_dir": str(Path.cwd() / "var")})
    assert cfg.replica_path == Path.cwd() / "var/doorward.db"
    assert cfg.camera.kind == "replay" and cfg.hardware.pin_factory == "auto"
    assert cfg.admin.port == 8080 and cfg.admin.host == "127.0.0.1"


def test_env_var_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = write(tmp_path, "[access]\nrelay_pulse_s = 3\n")
    monkeypatch.setenv("DOORWARD_CONFIG", str(p))
    assert load_config().access.relay_pulse_s == 3.0


@pytest.mark.parametrize(
    ("text", "key", "what"),
    [
        ("[access]\nrelay_puls_s = 3\n", "access.relay_puls_s", "unknown key"),
        ("[acess]\n", "acess", "unknown key"),
        ("[access]\nrelay_pulse_s = -1\n", "access.relay_pulse_s", "greater than 0"),
        ("[access]\nrelay_pulse_s = 'long'\n", "access.relay_pulse_s", "number"),
        ("[hardware.pins]\nrelay = 40\n", "hardware.pins.relay", "less than or equal to 27"),
        ("[hardware.pins]\nrelay = 4\n", "hardware.pins", "BCM pin 4 is used by both"),
        ("[hardware]\npin_factory = 'gpio'\n", "hardware.pin_factory", "'auto'"),
        ("[alerts.email]\nhost = 'x'\nto = ['a@b.c']\n", "alerts.email.from", "missing"),
        ("[alerts.email]\nhost='x'\nfrom='a@b.c'\nto=['a@b.c']\npassword='hunter2'\n",
         "alerts.email.password", "SecretRef"),
        ("[device]\nid = 'front door'\n", "device.id", "pattern"),
        ("[hardware]\nkeypad_layout = ['123a', '456B', '789C', '*0#D']\n", "hardware",
         "keys 'a' are not keypad keys"),
        ("[hardware]\nkeypad_layout = ['123A', '456B', '789C', '*0#']\n", "hardware",
         "4 rows of 4 keys"),
        ("[hardware]\nkeypad_layout = ['123A', '456B', '789C', '*0#1']\n", "hardware",
         "appears twice"),
    ],
)  # fmt: skip
def test_bad_values_are_rejected_naming_the_key(
    tmp_path: Path, text: str, key: str, what: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    message = str(err.value)
    assert f"  {key}:" in message or f"  {key}." in message, message
    assert what in message, message


def test_every_error_is_listed_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "[access]\nlockout_s = 0\nwrong_code_limit = 0\n"))
    assert "access.lockout_s" in str(err.value) and "access.wrong_code_limit" in str(err.value)


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[access\n"))
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.toml")


def test_secrets_come_from_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PW", "s3cret")
    assert SecretRef(env="SMTP_PW").resolve("k") == "s3cret"
    f = tmp_path / "pw"
    f.write_text("from-file\n")
    assert SecretRef(file=f).resolve("k") == "from-file"
    assert SecretRef().resolve("k") is None
    monkeypatch.delenv("SMTP_PW")
    with pytest.raises(ConfigError, match="alerts.email.password: environment variable SMTP_PW"):
        SecretRef(env="SMTP_PW").resolve("alerts.email.password")
    with pytest.raises(ConfigError, match="k: cannot read secret file"):
        SecretRef(file=tmp_path / "none").resolve("k")


def test_cli_reports_config_errors_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = write(tmp_path, "[vision]\nthreshhold = 0.5\n")
    assert main(["--config", str(p), "run", "--no-admin"]) == 2
    err = capsys.readouterr().err
    assert "vision.threshhold: unknown key" in err


def test_cli_rejects_bad_arguments_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["enroll", "--number", "abc", "--name", "x", "--pin", "1234", "--photo", "x"])
    assert exc.value.code == 2
    assert "--number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--keys", "1", "--camera", "/no/such/file.jpg"])
    assert "no such file" in capsys.readouterr().err


def test_simulate_rejects_keys_that_are_not_on_the_keypad(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = tmp_path / "x.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(img), np.zeros((10, 10, 3), np.uint8))
    p = write(tmp_path, f'[device]\ndata_dir = "{tmp_path / "var"}"\n')
    assert main(["--config", str(p), "simulate", "--keys", "1*12x4#", "--camera", str(img)]) == 2
    assert "'X' is not a keypad key" in capsys.readouterr().err


def test_readme_config_examples_are_valid() -> None:
    """The configuration reference in the README must stay true to the validator."""
    import re
    import tomllib

    from appliance.config import parse_config

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    assert len(blocks) >= 2
    for block in blocks:
        parse_config(tomllib.loads(block), source="README.md")


def test_overrides_keep_every_other_key_through_a_round_trip(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        "[device]\ndata_dir = '/srv/door'\n"
        "[alerts.email]\nhost = 'mx'\nfrom = 'door@x.y'\n"
        "to = ['a@b.c', { to = 'd@e.f', kinds = ['duress'] }]\n"
        "[camera]\nsources = ['a.jpg', 'b']\n",
    )  # fmt: skip
    cfg = load_config(p)
    over = cfg.with_overrides(hardware={"pin_factory": "mock"})
    assert over.hardware.pin_factory == "mock" and cfg.hardware.pin_factory == "auto"
    assert over.data_dir == Path("/srv/door") and over.camera.sources == [Path("a.jpg"), Path("b")]
    assert over.alerts.email is not None and over.alerts.email.from_ == "door@x.y"
    assert [r.to for r in over.alerts.email.to] == ["a@b.c", "d@e.f"]
    assert over.alerts.email.recipients("duress") == ["a@b.c", "d@e.f"]
    assert over.alerts.email.recipients("forced") == ["a@b.c"]
    assert over == cfg.replace(hardware=over.hardware)
    with pytest.raises(ConfigError, match="hardware.pin_factory"):
        cfg.with_overrides(hardware={"pin_factory": "gpio"})


def test_the_keypad_keys_config_accepts_are_the_state_machine_s() -> None:
    from appliance.config.hardware import KEYPAD_KEYS
    from appliance.core.machine import KEYS

    assert set(KEYPAD_KEYS) == KEYS
