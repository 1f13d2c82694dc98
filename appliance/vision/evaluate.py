"""Owns accuracy evaluation on labelled photo pairs: FAR/FRR of the door pipeline or prototype."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .engine import FaceEngine
from .errors import FaceError
from .image import load_image

TRUE_WORDS = {"1", "yes", "true", "y"}
FALSE_WORDS = {"0", "no", "false", "n"}

Progress = Callable[[str], None]
Transform = Callable[[np.ndarray, str], np.ndarray]


@dataclass(frozen=True)
class Pair:
    enrolled: Path  # file_x: the enrollment photo
    probe: Path  # file_y: the camera frame
    same: bool


def read_pairs(csv_path: Path, root: Path | None = None) -> list[Pair]:
    """Parse `file_x,file_y,same`; relative paths resolve against `root` (default: CSV folder).

    Raises ValueError naming the file and line for a missing column or an unreadable `same`.
    """
    base = root if root is not None else csv_path.parent
    try:
        fh = csv_path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"{csv_path}: cannot read pairs file ({exc.strerror or exc})") from None
    pairs: list[Pair] = []
    with fh:
        reader = csv.DictReader(fh)
        missing = {"file_x", "file_y", "same"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            line = reader.line_num
            raw = (row.get("same") or "").strip().lower()
            if raw in TRUE_WORDS:
                same = True
            elif raw in FALSE_WORDS:
                same = False
            else:
                raise ValueError(
                    f"{csv_path}:{line}: same={row.get('same')!r}; use 1/0, yes/no or true/false"
                )
            fx, fy = (row.get("file_x") or "").strip(), (row.get("file_y") or "").strip()
            if not fx or not fy:
                raise ValueError(f"{csv_path}:{line}: file_x and file_y must both be given")
            pairs.append(Pair(base / fx, base / fy, same))
    if not pairs:
        raise ValueError(f"{csv_path}: no pairs")
    return pairs


class _OneFrame:
    def __init__(self, frame: np.ndarray) -> None:
        self.frame = frame

    def start(self) -> None:
        pass

    def read(self) -> np.ndarray:
        return self.frame

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


def summarise(
    outcomes: list[tuple[bool, bool, bool]], threshold: float, ms: list[float], **extra: Any
) -> dict[str, Any]:
    """outcomes: (same, accepted, no_face) per pair."""
    genuine = sum(1 for s, _, _ in outcomes if s)
    impostor = len(outcomes) - genuine
    fa = sum(1 for s, a, _ in outcomes if a and not s)
    fr = sum(1 for s, a, _ in outcomes if s and not a)
    arr = np.asarray(ms) if ms else np.zeros(1)
    return {
        "pairs": len(outcomes),
        "genuine": genuine,
        "impostor": impostor,
        "false_accepts": fa,
        "false_rejects": fr,
        "far": round(fa / impostor, 4) if impostor else 0.0,
        "frr": round(fr / genuine, 4) if genuine else 0.0,
        "no_face": sum(1 for _, _, nf in outcomes if nf),
        "threshold": threshold,
        "median_ms": round(float(np.median(arr)), 1),
        "p95_ms": round(float(np.percentile(arr, 95)), 1),
        **extra,
    }


def evaluate_door(
    engine: FaceEngine,
    pairs: list[Pair],
    *,
    threshold: float | None = None,
    transform: Transform | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], list[float | None]]:
    """Door pipeline: templates enrolled once per file_x; each file_y is one camera frame
    checked by FaceEngine.verify (one frame, no liveness). Returns (summary, distances)."""
    thr = engine.config.threshold if threshold is None else threshold
    one = FaceEngine(engine.config.replace(max_frames=1, threshold=thr), engine.models)
    templates: dict[Path, np.ndarray | None] = {}
    probes: dict[Path, np.ndarray] = {}
    enroll_failed: set[Path] = set()
    outcomes: list[tuple[bool, bool, bool]] = []
    ms: list[float] = []
    dists: list[float | None] = []
    for i, pair in enumerate(pairs, 1):
        if pair.enrolled not in templates:
            try:
                templates[pair.enrolled] = one.enroll(
                    load_image(pair.enrolled), name=str(pair.enrolled)
                ).encoding[None, :]
            except FaceError as exc:
                templates[pair.enrolled] = None
                enroll_failed.add(pair.enrolled)
                if progress:
                    progress(f"enrollment failed: {exc}")
        if pair.probe not in probes:
            img = load_image(pair.probe)
            probes[pair.probe] = transform(img, str(pair.probe)) if transform else img
        tmpl = templates[pair.enrolled]
        if tmpl is None:
            outcomes.append((pair.same, False, False))
            dists.append(None)
            continue
        t0 = time.perf_counter()
        decision = one.verify(
            _OneFrame(probes[pair.probe]), tmpl, liveness=False, clock=time.perf_counter
        )
        ms.append((time.perf_counter() - t0) * 1000.0)
        outcomes.append(
            (pair.same, decision.matched, decision.reason in ("no_face", "poor_quality"))
        )
        dists.append(decision.distance)
        if progress and (i % 20 == 0 or i == len(pairs)):
            progress(f"{i}/{len(pairs)} pairs")
    summary = summarise(outcomes, thr, ms, enroll_failed=len(enroll_failed))
    return summary, dists
