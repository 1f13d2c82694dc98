"""Owns `doorward eval-liveness`: APCER/BPCER of the door's liveness check on an owner's own
recordings, sorted into bona-fide and attack folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .image import load_image
from .liveness import LivenessCheck, LivenessLimits, LivenessVerdict

if TYPE_CHECKING:
    from .engine import FaceEngine

VIDEO_EXTS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
BONA_FIDE = ("bona_fide", "live")  # folder names for recordings of real people
ATTACK = "attack"  # folder for attacks; its sub-folders name the attack kinds


@dataclass(frozen=True)
class Clip:
    path: Path
    bona_fide: bool
    kind: str  # "bona_fide" or the attack kind (its sub-folder, or "attack")


@dataclass
class ClipResult:
    clip: Clip
    verdict: LivenessVerdict
    frames: int  # frames read until the decision
    seconds: float  # camera time of those frames

    @property
    def accepted(self) -> bool:
        return self.verdict.state == "live"


def find_clips(root: Path) -> list[Clip]:
    """Clips under `root`: `bona_fide/` (or `live/`) and `attack/[kind/]`; anything else is
    an error that names it (a misfiled attack must not count as bona fide)."""
    if not root.is_dir():
        raise ValueError(f"--clips {root}: not a folder")
    clips: list[Clip] = []
    for top in sorted(root.iterdir()):
        if top.name.startswith("."):
            continue
        if not top.is_dir() or (top.name not in BONA_FIDE and top.name != ATTACK):
            raise ValueError(
                f"--clips {root}: {top.name!r} is neither bona_fide/ (or live/) nor attack/"
            )
        for f in sorted(top.rglob("*")):
            if not f.is_file() or f.name.startswith("."):
                continue
            if f.suffix.lower() not in VIDEO_EXTS | IMAGE_EXTS:
                raise ValueError(f"{f}: not a video or image file")
            if top.name == ATTACK:
                rel = f.relative_to(top)
                kind = rel.parts[0] if len(rel.parts) > 1 else ATTACK
                clips.append(Clip(f, False, kind))
            else:
                clips.append(Clip(f, True, "bona_fide"))
    if not clips:
        raise ValueError(f"--clips {root}: no clips in bona_fide/ or attack/")
    return clips


def frames_of(path: Path, fps: float, limit: int) -> Iterator[np.ndarray]:
    """RGB frames of a video at about `fps` (an image: the same frame `limit` times)."""
    if path.suffix.lower() in IMAGE_EXTS:
        img = load_image(path)
        for _ in range(limit):
            yield img
        return
    import cv2  # only to decode recordings; the door itself never loads OpenCV

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: cannot open the video")
    try:
        step = max(1, round((cap.get(cv2.CAP_PROP_FPS) or fps) / fps))
        i = n = 0
        while n < limit:
            ok, bgr = cap.read()
            if not ok:
                return
            if i % step == 0:
                n += 1
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            i += 1
    finally:
        cap.release()


def judge(
    engine: FaceEngine,
    frames: Iterator[np.ndarray],
    *,
    max_frames: int,
    limits: LivenessLimits | None = None,
    typed: int = 0,
) -> tuple[LivenessVerdict, int]:
    """The door's liveness decision on a stream of frames, as FaceEngine.verify makes it:
    frames with an adequate face are added until the verdict is live or spoof, or the budget
    ends (undecided = refused). With `typed`, the first `typed` frames are watched as the
    door watches while a code is typed (`FaceEngine.observe`), then bound (the recordings
    name no user: every face counts as the person's) before the check's own frames.
    Returns the verdict and the frames read after the watched ones."""
    check = LivenessCheck(limits or engine.liveness_limits())
    frames = iter(frames)
    if typed:
        for _, frame in zip(range(typed), frames, strict=False):
            engine.observe(check, frame)
        check.bind(lambda _probe: True)
    verdict = check.verdict()
    seen = 0
    for frame in frames:
        seen += 1
        faces = engine.detect(frame)
        if not faces or engine.quality_problem(faces[0]):
            if seen >= max_frames:
                break
            continue
        check.add(frame, faces[0].box, engine.landmarks5(frame, faces[0]))
        verdict = check.verdict()
        if verdict.state != "undecided" or seen >= max_frames:
            break
    if seen == 0:  # the clip ended while "typing": the door decides on a frame after the code
        verdict = LivenessVerdict("undecided", "too_few_frames", verdict.detail)
    return verdict, seen


def evaluate(
    engine: FaceEngine,
    clips: list[Clip],
    *,
    fps: float,
    max_frames: int,
    progress: Callable[[str], None] | None = None,
    typed_s: float = 0.0,
) -> tuple[dict[str, Any], list[ClipResult]]:
    """APCER per attack kind and BPCER over the bona-fide clips (ISO/IEC 30107-3 terms:
    APCER = attacks accepted as live / attacks; BPCER = bona fide refused / bona fide).
    `typed_s`: the first seconds of each clip are watched as while a code is typed."""
    typed = round(typed_s * fps)
    results = []
    for clip in clips:
        verdict, seen = judge(
            engine,
            frames_of(clip.path, fps, typed + max_frames),
            max_frames=max_frames,
            typed=typed,
        )
        results.append(ClipResult(clip, verdict, seen, round(seen / fps, 2)))
        if progress:
            progress(f"{clip.path.name}: {verdict.state} ({verdict.reason}, {seen} frames)")
    bona = [r for r in results if r.clip.bona_fide]
    summary: dict[str, Any] = {
        "typed_s": typed_s,
        "bona_fide": len(bona),
        "bpcer": round(sum(not r.accepted for r in bona) / len(bona), 3) if bona else None,
        "bona_fide_seconds_median": (
            round(float(np.median([r.seconds for r in bona if r.accepted])), 2)
            if any(r.accepted for r in bona)
            else None
        ),
        "attacks": {},
    }
    for kind in sorted({r.clip.kind for r in results if not r.clip.bona_fide}):
        rows = [r for r in results if r.clip.kind == kind]
        summary["attacks"][kind] = {
            "n": len(rows),
            "apcer": round(sum(r.accepted for r in rows) / len(rows), 3),
        }
    return summary, results
