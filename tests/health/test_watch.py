"""Heartbeat schedule and camera/modem loss detection (a real pty modem that goes silent)."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.health.watch import DeviceWatch, Heartbeat, camera_probe, modem_probe


def test_heartbeat_once_per_interval():
    now = [0.0]
    hb = Heartbeat(600, clock=lambda: now[0])
    assert hb.due()
    now[0] = 599
    assert not hb.due()
    now[0] = 600
    assert hb.due() and hb.count == 2
    assert hb.detail() == {"n": 2, "uptime_s": 600.0}
    with pytest.raises(ValueError):
        Heartbeat(0)


class FlakyCamera:
    def __init__(self):
        self.gone = False

    def read(self):
        if self.gone:
            raise RuntimeError("camera unplugged")
        return np.zeros((4, 4, 3), np.uint8)


def test_camera_lost_once_then_restored_once():
    cam = FlakyCamera()
    watch = DeviceWatch("camera", camera_probe(cam), lose_after=3)
    assert watch.check() is None
    cam.gone = True
    assert watch.check() is None and watch.check() is None
    lost = watch.check()
    assert lost.state == "lost" and lost.alert_kind == "camera_lost"
    assert "unplugged" in lost.error
    assert watch.check() is None  # no alert storm while it stays lost
    cam.gone = False
    restored = watch.check()
    assert restored.state == "restored" and restored.alert_kind is None
    assert watch.check() is None


def test_modem_loss_detected_over_a_pty(pty_modem):
    modem = pty_modem()
    watch = DeviceWatch("modem", modem_probe(modem.port, timeout_s=0.5), lose_after=2)
    assert watch.check() is None and not watch.lost
    modem.silent = True
    assert watch.check() is None
    lost = watch.check()
    assert lost is not None and lost.alert_kind == "modem_lost"
    modem.silent = False
    assert watch.check().state == "restored"
