"""`pin_factory = "auto"` never falls back to simulated pins on what looks like a real door."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory

from appliance.hardware import board


@pytest.fixture
def not_a_pi(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setattr(board, "is_raspberry_pi", lambda: False)
    monkeypatch.setattr(board.platform, "machine", lambda: "x86_64")
    return monkeypatch


def test_a_developer_machine_gets_simulated_pins(not_a_pi) -> None:
    assert isinstance(board.make_pin_factory("auto"), MockFactory)


@pytest.mark.parametrize("var", ["INVOCATION_ID", "NOTIFY_SOCKET"])
def test_under_systemd_auto_refuses_simulated_pins_naming_the_setting(not_a_pi, var) -> None:
    not_a_pi.setenv(var, "x")
    with pytest.raises(board.HardwareError) as err:
        board.make_pin_factory("auto")
    msg = str(err.value)
    assert "it runs under systemd" in msg
    assert 'hardware.pin_factory = "lgpio"' in msg and '"mock"' in msg


def test_an_arm_board_with_gpio_devices_refuses_too(not_a_pi) -> None:
    not_a_pi.setattr(board.platform, "machine", lambda: "aarch64")
    not_a_pi.setattr(board.os.path, "exists", lambda p: p == "/dev/gpiochip0")
    with pytest.raises(board.HardwareError, match="this ARM board has /dev/gpiochip0"):
        board.make_pin_factory("auto")


def test_mock_asked_for_explicitly_is_honoured_under_systemd(not_a_pi) -> None:
    not_a_pi.setenv("INVOCATION_ID", "x")
    assert isinstance(board.make_pin_factory("mock"), MockFactory)


def test_a_pi_model_in_either_device_tree_file_is_a_pi(monkeypatch, tmp_path) -> None:
    model = tmp_path / "model"
    model.write_text("Raspberry Pi 5 Model B Rev 1.0\x00")
    monkeypatch.setattr(board, "MODEL_FILES", (str(tmp_path / "missing"), str(model)))
    assert board.is_raspberry_pi()
    model.write_text("Generic ARM board")
    assert not board.is_raspberry_pi()
