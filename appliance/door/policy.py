"""The state machine's policy, read from the door's configuration."""

from __future__ import annotations

from appliance.config import Config
from appliance.core import Policy


def policy_from(config: Config) -> Policy:
    a, v = config.access, config.vision
    return Policy(
        code_timeout_s=a.code_timeout_s,
        max_code_length=a.max_code_length,
        relay_pulse_s=a.relay_pulse_s,
        wrong_code_limit=a.wrong_code_limit,
        wrong_code_window_s=a.wrong_code_window_s,
        lockout_s=a.lockout_s,
        face_fail_limit=a.face_fail_limit,
        face_fail_window_s=a.face_fail_window_s,
        face_timeout_s=v.window_s + 10.0,
        held_open_s=a.held_open_s,
        entry_grace_s=a.entry_grace_s,
        exit_pulse_s=a.exit_pulse_s,
        motion_wake_s=a.motion_wake_s,
        unknown_person_after_s=a.unknown_person_after_s,
        doorbell_repeat_s=config.doorbell.repeat_s,
        doorbell_alert=config.doorbell.alert,
        relock_after_close_s=a.relock_after_close_s,
        offline_fail_limit=a.offline_fail_limit,
        offline_fail_window_s=a.offline_fail_window_s,
        offline_lockout_s=a.offline_lockout_s,
    )
