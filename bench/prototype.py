"""The prototype's face check ("seed pipeline"), kept only as the benchmark baseline.

It loads face_recognition.api (every dlib model, ~200 MB) on first use, runs the HOG detector
with one upsampling on the full frame, and re-encodes the enrolled photo on every check with
face_recognition's defaults (5-point landmarks, num_jitters=1: one encoder pass per face).
Its 3 s capture delay is left out.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from appliance.vision.evaluate import Pair, Progress, Transform, summarise
from appliance.vision.image import load_image

SEED_TOLERANCE = 0.6  # face_recognition.compare_faces' default, which the prototype used


def _api() -> Any:
    import face_recognition.api as api

    return api


def seed_encode(image: np.ndarray) -> np.ndarray | None:
    """Prototype encoding of a photo: first face found by HOG (upsample 1), or None."""
    api = _api()
    locations = api.face_locations(image, number_of_times_to_upsample=1, model="hog")
    if not locations:
        return None
    return np.asarray(api.face_encodings(image, locations)[0])


def seed_check(enrolled_photo: np.ndarray, frame: np.ndarray) -> tuple[bool, float | None]:
    """One prototype login: re-encode the enrolled photo, then the frame; compare at 0.6."""
    known = seed_encode(enrolled_photo)
    probe = seed_encode(frame)
    if known is None or probe is None:
        return False, None
    d = float(np.linalg.norm(known - probe))
    return d <= SEED_TOLERANCE, d


def evaluate_seed(
    pairs: list[Pair],
    *,
    threshold: float | None = None,
    transform: Transform | None = None,
    progress: Progress | None = None,
    cache_encodings: bool = True,
) -> tuple[dict[str, Any], list[float | None]]:
    """The prototype's pipeline on the same pairs. With cache_encodings its decisions are the
    same (it is deterministic) but each photo is encoded once; ms is then per-photo encode time
    x 2, an estimate of one login's compute."""
    thr = SEED_TOLERANCE if threshold is None else threshold
    known: dict[Path, np.ndarray | None] = {}
    seen: dict[Path, np.ndarray | None] = {}
    enc_ms: dict[Path, float] = {}
    outcomes: list[tuple[bool, bool, bool]] = []
    ms: list[float] = []
    dists: list[float | None] = []
    for i, pair in enumerate(pairs, 1):
        t0 = time.perf_counter()
        if pair.enrolled not in known or not cache_encodings:
            t = time.perf_counter()
            known[pair.enrolled] = seed_encode(load_image(pair.enrolled))
            enc_ms[pair.enrolled] = (time.perf_counter() - t) * 1000.0
        if pair.probe not in seen or not cache_encodings:
            img = load_image(pair.probe)
            img = transform(img, str(pair.probe)) if transform else img
            t = time.perf_counter()
            seen[pair.probe] = seed_encode(img)
            enc_ms[pair.probe] = (time.perf_counter() - t) * 1000.0
        a, b = known[pair.enrolled], seen[pair.probe]
        d = None if a is None or b is None else float(np.linalg.norm(a - b))
        outcomes.append((pair.same, d is not None and d <= thr, b is None))
        dists.append(d)
        ms.append(
            enc_ms[pair.enrolled] + enc_ms[pair.probe]
            if cache_encodings
            else (time.perf_counter() - t0) * 1000.0
        )
        if progress and (i % 20 == 0 or i == len(pairs)):
            progress(f"seed {i}/{len(pairs)} pairs")
    return summarise(outcomes, thr, ms), dists
