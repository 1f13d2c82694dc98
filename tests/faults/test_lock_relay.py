"""Promise 5: `doorward lock-relay` needs only the relay, and its failure is the unit's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "text",
    [
        '[hardware]\npin_factory = "mock"\n[vision]\nthreshhold = 0.5\n',  # unknown key
        '[hardware]\npin_factory = "mock"\n[hardware.pins]\npir = 17\n',  # a pin clash
        '[hardware]\npin_factory = "mock"\n[access]\nlockout_s = inf\n',  # a bad value
        '[hardware]\npin_factory = "mock"\n[alerts.email]\nhost = "x"\n',  # missing keys
    ],
)
def test_lock_relay_ignores_every_error_outside_the_relay(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config that `run` refuses (exit 2) still lets lock-relay lock the relay (exit 0)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    assert main(["--config", str(cfg), "run", "--no-admin"]) == 2
    capsys.readouterr()
    assert main(["--config", str(cfg), "lock-relay"]) == 0
    assert json.loads(capsys.readouterr().out)["relay"] == "locked"


def test_lock_relay_reads_the_relay_pin_and_polarity_and_flags_win(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The relay's own settings come from the file even when it is otherwise invalid; flags
    override them; a file that is not TOML at all falls back to the defaults, with a note."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[hardware]\npin_factory = "mock"\n[hardware.pins]\nrelay = 18\n'
                   "relay_active_high = false\n[nonsense]\nx = 1\n")  # fmt: skip
    assert main(["--config", str(cfg), "lock-relay"]) == 0
    assert json.loads(capsys.readouterr().out) == {"relay": "locked", "pin": 18,
                                                   "active_high": False}  # fmt: skip
    assert main(["--config", str(cfg), "lock-relay", "--pin", "5", "--active-high"]) == 0
    assert json.loads(capsys.readouterr().out)["pin"] == 5
    cfg.write_text("this is [not toml")
    assert main(["--config", str(cfg), "lock-relay", "--pin-factory", "mock"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["pin"] == 17 and "not read" in out.err


def test_lock_relay_fails_when_the_relay_cannot_be_driven(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No GPIO to drive: exit 1 with a line naming the pin (the unit then fails)."""

    def broken(name: str) -> None:
        raise RuntimeError("no GPIO chip")

    monkeypatch.setattr("appliance.hardware.board.make_pin_factory", broken)
    assert main(["lock-relay", "--pin", "17"]) == 1
    assert "relay pin 17" in capsys.readouterr().err


def test_units_treat_a_lock_relay_failure_as_a_failure() -> None:
    """The unit runs lock-relay without systemd's '-' (ignore failure) prefix."""
    lines = (REPO / "provisioning/systemd/doorward.service").read_text().splitlines()
    relay = [ln for ln in lines if "lock-relay" in ln and not ln.startswith("#")]
    assert len(relay) == 2
    assert all(ln.split("=", 1)[1][0] not in "-+!" for ln in relay)


def test_a_closed_relay_refuses_to_energise_and_closes_once() -> None:
    """A thread that outlived the door's stop (a loop stuck past its join) cannot drive the
    pin after close: unlock and hold raise, lock and a second close do nothing."""
    import pytest
    from gpiozero.pins.mock import MockFactory

    from appliance.hardware.relay import LockRelay

    relay = LockRelay(17, pin_factory=MockFactory())
    pin = relay.pin
    relay.unlock(5.0)
    assert pin.state == 1
    relay.close()
    assert pin.state == 0  # de-energised (active high) when it was released
    for energise in (lambda: relay.unlock(5.0), lambda: relay.hold(2.0)):
        with pytest.raises(RuntimeError, match="closed"):
            energise()
    assert pin.state == 0
    relay.lock()
    relay.close()
    assert relay.pulses[-1][1] is not None
