"""[access]: codes, pulses, lockouts, the door contact's rules."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from appliance.config.base import Delay, Seconds, Section

# the longest code enrollment accepts: a 9-digit user number, "*", a 12-digit PIN
LONGEST_CODE = 9 + 1 + 12


class AccessConfig(Section, frozen=True, kw_only=True):
    code_timeout_s: Seconds = 10.0
    # keys the keypad buffer takes before it clears; enrollment refuses longer codes
    max_code_length: Annotated[int, Meta(ge=6, le=32)] = LONGEST_CODE
    relay_pulse_s: Annotated[float, Meta(gt=0, le=60)] = 5.0
    wrong_code_limit: Annotated[int, Meta(ge=1)] = 5
    wrong_code_window_s: Seconds = 600.0
    lockout_s: Seconds = 300.0
    face_fail_limit: Annotated[int, Meta(ge=1)] = 3
    face_fail_window_s: Seconds = 600.0
    held_open_s: Seconds = 30.0
    # after the relay locks again, the door may still be opened this long without a forced alert
    entry_grace_s: Delay = 2.0
    exit_pulse_s: Annotated[float, Meta(gt=0, le=60)] = 5.0
    motion_wake_s: Seconds = 30.0
    # someone the PIR saw who enters no code for this long is identified 1:N against every
    # template; a face that matches nobody raises an "unknown_person" alert. 0 = never.
    unknown_person_after_s: Delay = 20.0
    # auto-relock: > 0 relocks only once the door has been closed this long, and never while
    # it stands open (a maglock is not re-energised against an open door). 0 = relock when the
    # pulse ends or the door closes, whichever comes first.
    relock_after_close_s: Delay = 0.0
    # offline guest codes (00*...#): this many with a wrong signature within the window
    # suspend offline codes for offline_lockout_s (users' codes are not affected)
    offline_fail_limit: Annotated[int, Meta(ge=1, le=100)] = 3
    offline_fail_window_s: Seconds = 3600.0
    offline_lockout_s: Seconds = 21600.0
