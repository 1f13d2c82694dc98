"""Owns the terminal of `doorward run` on simulated hardware: keys typed at the prompt, a few
commands (help, camera, status), and one plain line per decision."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from appliance.core.wording import duration, outcome_line, state_words

HELP = """\
doorward: at this prompt
  1*1234#            a code: <user number>*<PIN># (** clears; A-D are ignored)
  camera PATH...     the simulated camera shows these photos/videos (a face to check)
  camera             what the camera shows now;  camera off: an empty doorstep again
  status             the door's state
  help               this text
  Ctrl-C             stops the door"""


def user_names(db: Any) -> Callable[[int], str | None]:
    """number -> name from the door's database (looked up when an event is printed)."""

    def name_of(number: int) -> str | None:
        from sqlalchemy import select

        from appliance.store.models import User

        try:
            with db.session() as s:
                return s.scalar(select(User.name).where(User.number == number))
        except Exception:  # a name is a nicety: never let it stop the line
            return None

    return name_of


def event_printer(
    name_of: Callable[[int], str | None], out: TextIO | None = None
) -> Callable[[Any], None]:
    """A Door listener printing `GRANTED  Kit Harington (1)` and the like."""

    def show(event: Any) -> None:
        number = event.user_number
        line = outcome_line(
            event.kind,
            number=number,
            name=name_of(number) if number is not None else None,
            reason=event.reason,
            alerted=event.alert_id is not None,
            detail=event.detail,
        )
        if line is not None:
            print(line, file=out or sys.stdout, flush=True)

    return show


class Terminal:
    """Reads lines from `stream`: commands, else keys pressed on the simulated keypad pins."""

    def __init__(self, door: Any, out: TextIO | None = None) -> None:
        self.door = door
        self.out = out

    def say(self, text: str) -> None:
        print(text, file=self.out or sys.stdout, flush=True)

    def handle(self, line: str) -> None:
        typed = line.strip()
        if not typed:
            return
        word, _, rest = typed.partition(" ")
        command = word.lower()
        if command in ("help", "?", "h"):
            self.say(HELP)
        elif command == "camera":
            self.camera(rest.strip())
        elif command == "status":
            st = self.door.status()
            extra = ""
            if st.get("lockout_remaining_s"):
                extra = f", locked out for {duration(st['lockout_remaining_s'])} more"
            lock = "locked" if st.get("locked") else "UNLOCKED"
            door = "open" if st.get("door_open") else "closed"
            self.say(f"doorward: {state_words(st.get('state'))}; lock {lock}; door {door}{extra}")
        elif all(k in "0123456789*#ABCDabcd" for k in typed.replace(" ", "")):
            self.door.press_keys(typed.replace(" ", "").upper())
        else:
            self.say(f"doorward: {word!r} is neither keys (0-9 * # A-D) nor a command; type help")

    def camera(self, rest: str) -> None:
        camera = self.door.camera
        if not hasattr(camera, "set_sources"):
            self.say("doorward: this camera is a real one; only the replay camera can be switched")
            return
        if not rest:
            shown = [str(p) for p in getattr(camera, "sources", [])]
            self.say(
                "doorward: the camera shows "
                + (", ".join(shown) if shown else "an empty doorstep (no face)")
            )
            return
        if rest.lower() in ("off", "none", "empty"):
            camera.set_sources([])
            self.say("doorward: the camera shows an empty doorstep (no face)")
            return
        paths = [Path(p).expanduser() for p in rest.split()]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            self.say(f"doorward: camera: no such file {missing[0]}; the camera is unchanged")
            return
        try:
            camera.set_sources(paths)
        except Exception as exc:  # an unreadable or unsupported file: say so, keep the old view
            self.say(f"doorward: camera: {exc}; the camera is unchanged")
            return
        self.say(f"doorward: the camera now shows {', '.join(str(p) for p in paths)}")

    def run(self, stream: TextIO, stop: threading.Event) -> None:
        self.say("doorward: type a code such as 1*1234# and press Enter; help lists the commands")
        for line in stream:
            if stop.is_set():
                return
            try:
                self.handle(line)
            except ValueError as exc:
                self.say(f"doorward: {exc}")
