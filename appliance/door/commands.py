"""What the door does with each command of the state machine (on the loop thread)."""

from __future__ import annotations

import logging

from appliance.core import (
    CheckFace,
    Command,
    Hold,
    IdentifyFace,
    Lock,
    Record,
    Signal,
    SleepCamera,
    Unlock,
    WakeCamera,
)
from appliance.door.faces import FaceJobs
from appliance.door.recorder import Recorder
from appliance.hardware.board import Board
from appliance.hardware.camera import CameraError

log = logging.getLogger(__name__)

# A held relay (fire, schedule, auto-relock) is energised on this lease and renewed on every
# turn of the loop (at least every 0.1 s): a loop that stops turning lets it lock by itself.
HOLD_LEASE_S = 2.0


class CommandRunner:
    """Carries out commands in the order the state machine gave them: the relay first (a grant
    unlocks before anything is written), face work handed to a job, records that never raise."""

    def __init__(self, board: Board, faces: FaceJobs, recorder: Recorder) -> None:
        self.board = board
        self.faces = faces
        self.recorder = recorder

    def __call__(self, command: Command) -> None:
        match command:
            case Unlock(seconds=seconds):
                self.board.relay.unlock(seconds)
            case Lock():
                self.board.relay.lock()
            case Hold():
                self.board.relay.hold(HOLD_LEASE_S)
            case Signal(feedback=fb):
                self.board.signal(fb)
            case WakeCamera():
                try:
                    self.faces.camera.start()
                except CameraError as exc:
                    log.warning("event=camera_wake_failed error=%r", str(exc))
                else:
                    self.faces.watch()  # liveness from the frames of the person typing
            case SleepCamera():
                self.faces.stop_watching()
                try:
                    self.faces.camera.stop()
                except CameraError as exc:
                    log.warning("event=camera_sleep_failed error=%r", str(exc))
            case CheckFace():
                self.faces.start_check(command)
            case IdentifyFace():
                self.faces.start_identify(command)
            case Record():
                try:
                    self.recorder.record(command)
                except Exception:  # a bug while recording must not skip the Signal after it
                    log.exception("event=record_failed kind=%s", command.kind)
