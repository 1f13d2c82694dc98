"""Face accuracy on photo sets the pipeline was and was not tuned on: the door pipeline against
the prototype's, at normal light and at two simulated dark exposures.

Sets (tests/fixtures/faces_eval/README.md records sources and licences):
- ``fixtures``: tests/fixtures/faces/pairs.csv (19 photos, 6 people; tuned on before #14);
- ``tune``: tests/fixtures/faces_eval/tune/pairs.csv (openface and face-api.js examples, 46
  photos, 12 people): what the dark-face enhancement of issue #14 was tuned on;
- ``heldout``: tests/fixtures/faces_eval/heldout/pairs.csv (deepface's unit-test photos and its
  own pair list, 25 photos, 38 genuine and 262 impostor pairs): never tuned on;
- ``heldout2``: tests/fixtures/faces_eval/heldout2/pairs.csv (deepface's further photos, 35
  photos of 9 people, 66 genuine and 529 impostor pairs): never tuned on.

Each pair is the door's decision on one frame: the template is enrolled from file_x as the
admin page would (normal light), the probe is file_y, darkened for the dark conditions (gamma
2.2, exposure, Gaussian noise on the 0-1 scale, seeded by the probe's path within its set). A
probe is encoded once per condition and compared with every template it is paired with:
the same decision `FaceEngine.verify` makes on that single frame (detect, quality gates, one
encoder pass, distance to the template), at a fraction of the time.

`python -m bench.face_accuracy [--set heldout] [--no-seed]` prints the figures as JSON;
`--noise N` draws the noise of the dark probes from the N-th seed variant (0, what `make bench`
uses, seeds by the path alone), to see how much a figure owes to one draw of the noise;
`--enlarge 2500` first scales the tune photos up to a long side of 2500 px (the held-out set's
large photos, whose large dark faces issue #14 lost, reproduced on photos one may tune on).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import REPO, BenchContext, faces_dir

EVAL_DIR = REPO / "tests" / "fixtures" / "faces_eval"
CONDITIONS: dict[str, tuple[float, float] | None] = {
    "normal": None,
    "poor_light": (0.35, 0.02),
    "very_poor_light": (0.12, 0.03),
}
LABELS = {
    "normal": "normal",
    "poor_light": "poor light (35 %, σ 0.02)",
    "very_poor_light": "very poor light (12 %, σ 0.03)",
}


HELD_OUT = ("heldout", "heldout2")  # the sets never tuned on


def set_paths() -> dict[str, Path]:
    return {
        "fixtures": faces_dir() / "pairs.csv",
        "tune": EVAL_DIR / "tune" / "pairs.csv",
        "heldout": EVAL_DIR / "heldout" / "pairs.csv",
        "heldout2": EVAL_DIR / "heldout2" / "pairs.csv",
    }


def _darkener(cond: str, root: Path, noise: int = 0) -> Callable[[Any, Path], Any] | None:
    from appliance.vision.image import darken

    params = CONDITIONS[cond]
    if params is None:
        return None
    exposure, sigma = params

    def tf(img: Any, path: Path) -> Any:
        rel = path.relative_to(root).as_posix() + (f"#{noise}" if noise else "")
        return darken(img, exposure=exposure, noise_sigma=sigma, seed=zlib.crc32(rel.encode()))

    return tf


SMALL_SIDE = 300  # a photo smaller than this is a tight crop of a face (face-api.js's 150 px)


def load_photo(path: Path, enlarge: int = 0) -> Any:
    """The photo as the camera would show it: a tight crop (long side < SMALL_SIDE) is centred
    on a mid-grey frame three times its size, as a face seen from further away; the HOG
    detector needs background around a face and a door camera always has it. With `enlarge`,
    any other photo whose long side is below it is scaled up (Lanczos) to that long side: the
    large photos and faces of the held-out set, made from the photos one may tune on."""
    import numpy as np

    from appliance.vision.image import load_image

    img = load_image(path)
    h, w = img.shape[:2]
    if max(h, w) >= SMALL_SIDE:
        if enlarge <= max(h, w):
            return img
        from PIL import Image

        k = enlarge / max(h, w)
        size = (round(w * k), round(h * k))
        return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))
    frame = np.full((3 * h, 3 * w, 3), 128, np.uint8)
    frame[h : 2 * h, w : 2 * w] = img
    return frame


def distances(
    pairs: list[Any], templates: dict[Path, Any], probes: dict[Path, Any]
) -> list[tuple[bool, float | None]]:
    """(genuine?, distance) of every pair; None where the template or the probe has no face."""
    import numpy as np

    out: list[tuple[bool, float | None]] = []
    for p in pairs:
        t, q = templates.get(p.enrolled), probes.get(p.probe)
        out.append((p.same, None if t is None or q is None else float(np.linalg.norm(t - q))))
    return out


def threshold_table(
    rows: list[tuple[bool, float | None]], thresholds: list[float]
) -> list[dict[str, Any]]:
    """False accepts and rejects of `rows` at each threshold (accept: distance <= threshold;
    a pair without a distance is a false reject when genuine, never an accept)."""
    genuine = sum(1 for same, _ in rows if same)
    impostor = len(rows) - genuine
    table = []
    for thr in thresholds:
        fa = sum(1 for same, d in rows if not same and d is not None and d <= thr)
        fr = sum(1 for same, d in rows if same and (d is None or d > thr))
        table.append({"threshold": thr, "false_accepts": f"{fa}/{impostor}",
                      "false_rejects": f"{fr}/{genuine}"})  # fmt: skip
    return table


def score(
    pairs: list[Any],
    templates: dict[Path, Any],
    probes: dict[Path, Any],
    threshold: float,
) -> dict[str, Any]:
    """False accepts/rejects over the pairs; a missing probe encoding is a no-face reject."""
    fa = fr = no_face = genuine = impostor = 0
    gen_d: list[float] = []
    imp_d: list[float] = []
    rejected: list[str] = []
    accepted: list[str] = []
    for p, (_, d) in zip(pairs, distances(pairs, templates, probes), strict=True):
        genuine += p.same
        impostor += not p.same
        if d is None:
            no_face += probes.get(p.probe) is None
            if p.same:
                fr += 1
                rejected.append(f"{p.enrolled.name}~{p.probe.name}:none")
            continue
        (gen_d if p.same else imp_d).append(d)
        if d <= threshold and not p.same:
            fa += 1
            accepted.append(f"{p.enrolled.name}~{p.probe.name}:{d:.3f}")
        if d > threshold and p.same:
            fr += 1
            rejected.append(f"{p.enrolled.name}~{p.probe.name}:{d:.3f}")
    return {
        "genuine": genuine,
        "impostor": impostor,
        "false_accepts": fa,
        "false_rejects": fr,
        "no_face": no_face,
        "max_genuine": round(max(gen_d), 3) if gen_d else None,
        "min_impostor": round(min(imp_d), 3) if imp_d else None,
        "rejected": rejected,
        "accepted": accepted,
    }


def door_encodings(
    engine: Any, pairs: list[Any], cond: str, root: Path, enlarge: int = 0, noise: int = 0
) -> tuple[dict[Path, Any], dict[Path, Any], float]:
    """Templates (normal light, as enrolled) and probe encodings under `cond`; with the median
    ms of one probe's detect + encode."""
    import numpy as np

    from appliance.vision.errors import FaceError

    tf = _darkener(cond, root, noise)
    templates: dict[Path, Any] = {}
    probes: dict[Path, Any] = {}
    ms: list[float] = []
    for p in pairs:
        if p.enrolled not in templates:
            try:
                templates[p.enrolled] = engine.enroll(
                    load_photo(p.enrolled, enlarge), name=str(p.enrolled)
                ).encoding
            except FaceError:
                templates[p.enrolled] = None
        if p.probe not in probes:
            img = load_photo(p.probe, enlarge)
            if tf is not None:
                img = tf(img, p.probe)
            t0 = time.perf_counter()
            probes[p.probe] = engine.encode_largest(img)
            ms.append((time.perf_counter() - t0) * 1000.0)
    return templates, probes, float(np.median(ms)) if ms else 0.0


def seed_encodings(
    pairs: list[Any], cond: str, root: Path, enlarge: int = 0, noise: int = 0
) -> tuple[dict[Path, Any], dict[Path, Any]]:
    """The prototype's encodings: it re-encodes the enrolled photo at every login."""
    from .prototype import seed_encode

    tf = _darkener(cond, root, noise)
    templates: dict[Path, Any] = {}
    probes: dict[Path, Any] = {}
    for p in pairs:
        if p.enrolled not in templates:
            templates[p.enrolled] = seed_encode(load_photo(p.enrolled, enlarge))
        if p.probe not in probes:
            img = load_photo(p.probe, enlarge)
            probes[p.probe] = seed_encode(tf(img, p.probe) if tf is not None else img)
    return templates, probes


def run(
    vision: dict[str, Any],
    sets: list[str],
    *,
    seed: bool = True,
    conditions: list[str] | None = None,
    no_enhance: bool = True,
    enlarge: int = 0,
    noise: int = 0,
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    from appliance.config import VisionConfig
    from appliance.vision.engine import FaceEngine
    from appliance.vision.evaluate import read_pairs

    from .prototype import SEED_TOLERANCE

    cfg = VisionConfig.convert(vision)
    engine = FaceEngine(cfg.replace(max_frames=1))
    plain = FaceEngine(cfg.replace(max_frames=1, enhance_low_light=False), engine.models)
    out: dict[str, Any] = {"threshold": cfg.threshold}
    paths = set_paths()
    for name in sets:
        csv_path = paths[name]
        root = csv_path.parent
        pairs = read_pairs(csv_path)
        photos = {p.enrolled for p in pairs} | {p.probe for p in pairs}
        res: dict[str, Any] = {"photos": len(photos), "pairs": len(pairs)}
        for cond in conditions or list(CONDITIONS):
            log(f"{name}: {cond}")
            t, q, ms = door_encodings(engine, pairs, cond, root, enlarge, noise)
            row = {"door": {**score(pairs, t, q, cfg.threshold), "probe_ms": round(ms, 1)}}
            if cond != "normal" and no_enhance:
                t2, q2, _ = door_encodings(plain, pairs, cond, root, enlarge, noise)
                row["door_no_enhance"] = score(pairs, t2, q2, cfg.threshold)
            if seed:
                st, sq = seed_encodings(pairs, cond, root, enlarge, noise)
                row["seed"] = score(pairs, st, sq, SEED_TOLERANCE)
            res[cond] = row
        out[name] = res
    return out


def sweep(
    vision: dict[str, Any],
    sets: list[str],
    *,
    draws: int,
    thresholds: list[float],
    conditions: list[str] | None = None,
    seed: bool = True,
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, Any]:
    """Doorward's false accepts and rejects at each of `thresholds`, summed over noise draws
    0..draws-1 of each dark condition (the normal row has no noise: one draw): the trade-off
    a dark-face threshold would make. With `seed`, the prototype's own at its 0.6."""
    from appliance.config import VisionConfig
    from appliance.vision.engine import FaceEngine
    from appliance.vision.evaluate import read_pairs

    from .prototype import SEED_TOLERANCE

    cfg = VisionConfig.convert(vision)
    engine = FaceEngine(cfg.replace(max_frames=1))
    out: dict[str, Any] = {"threshold": cfg.threshold, "draws": draws}
    for name in sets:
        csv_path = set_paths()[name]
        root = csv_path.parent
        pairs = read_pairs(csv_path)
        res: dict[str, Any] = {}
        for cond in conditions or list(CONDITIONS):
            rows: list[tuple[bool, float | None]] = []
            seed_rows: list[tuple[bool, float | None]] = []
            for noise in range(draws if CONDITIONS[cond] else 1):
                log(f"{name}: {cond}, draw {noise}")
                t, q, _ = door_encodings(engine, pairs, cond, root, noise=noise)
                rows += distances(pairs, t, q)
                if seed:
                    st, sq = seed_encodings(pairs, cond, root, noise=noise)
                    seed_rows += distances(pairs, st, sq)
            res[cond] = {"door": threshold_table(rows, thresholds)}
            if seed:
                res[cond]["seed"] = threshold_table(seed_rows, [SEED_TOLERANCE])[0]
        out[name] = res
    return out


PIPELINES = {
    "door": "Doorward",
    "door_no_enhance": "Doorward, enhancement off",
    "seed": "prototype",
}


def accuracy_markdown(figs: dict[str, Any]) -> str:
    sets = {
        "fixtures": "tests/fixtures/faces (tuned on before #14)",
        "tune": "faces_eval/tune (tuned on in #14)",
        "heldout": "**faces_eval/heldout (never tuned on)**",
        "heldout2": "**faces_eval/heldout2 (never tuned on)**",
    }
    lines = [
        f"Threshold {figs['threshold']} (prototype 0.6). Probe = file_y, darkened as stated "
        "(gamma 2.2, exposure, Gaussian noise on the 0-1 scale, seeded by the probe's path in "
        "its set); a probe with no usable face is a rejection and counts in no face.",
        "",
        "| set | condition | pipeline | false accepts | false rejects | no face |",
        "|---|---|---|---|---|---|",
    ]
    for s, res in figs.items():
        if s == "threshold":
            continue
        for cond in CONDITIONS:
            for k, v in res.get(cond, {}).items():
                lines.append(
                    f"| {sets[s]} | {LABELS[cond]} | {PIPELINES[k]} | "
                    f"{v['false_accepts']}/{v['impostor']} | {v['false_rejects']}/{v['genuine']} "
                    f"| {v['no_face']} |"
                )
    lines += [
        "",
        target_line(figs),
        "",
        "Each dark row is one draw of the sensor noise; `.venv/bin/python -m bench.face_accuracy "
        "--noise N` (N = 1, 2, ...) redraws it, to tell a figure that holds from one draw's luck.",
    ]
    return "\n".join(lines)


def target_line(figs: dict[str, Any]) -> str:
    """Issue #14's dark-face target, judged at 12 % exposure on the photos never tuned on (the
    held-out sets together): no more false rejects than the prototype (aiming at <= 1 of 38 on
    the first set, the one the issue measured) and no false accept in any row."""
    held = [
        (s, figs[s]["very_poor_light"]) for s in HELD_OUT if figs.get(s, {}).get("very_poor_light")
    ]
    if not held:
        return "Target (held-out sets at 12 %): not measured in this run."
    rows = [
        (s, cond, k, v)
        for s, res in figs.items()
        if s != "threshold"
        for cond, row in res.items()
        if isinstance(row, dict)
        for k, v in row.items()
    ]
    fa = sum(v["false_accepts"] for *_, v in rows)
    named = "; ".join(
        f"{s}, {LABELS[cond]}, {PIPELINES[k]}: {', '.join(v['accepted'])}"
        for s, cond, k, v in rows
        if v.get("accepted")
    )
    door_fr = sum(r["door"]["false_rejects"] for _, r in held)
    genuine = sum(r["door"]["genuine"] for _, r in held)
    no_face = sum(r["door"]["no_face"] for _, r in held)
    seed_fr = (
        sum(r["seed"]["false_rejects"] for _, r in held)
        if all(r.get("seed") for _, r in held)
        else None
    )
    ok = fa == 0 and (seed_fr is None or door_fr <= seed_fr)
    vs = f" against the prototype's {seed_fr}" if seed_fr is not None else " (prototype not run)"
    per_set = ", ".join(
        f"{s} {r['door']['false_rejects']}/{r['door']['genuine']}"
        + (f" (prototype {r['seed']['false_rejects']})" if r.get("seed") else "")
        for s, r in held
    )
    return (
        f"Target (held-out sets at 12 %: false rejects no more than the prototype's, aiming at "
        f"<= 1 of 38 on heldout, and 0 false accepts everywhere): "
        f"**{'met' if ok else 'NOT met'}**, "
        f"{door_fr}/{genuine} false rejects ({no_face} no face){vs} ({per_set}); "
        f"{fa} false accepts over all rows" + (f" ({named})." if named else ".")
    )


def face_accuracy_section(ctx: BenchContext) -> tuple[dict[str, Any], str]:
    figs = run(ctx.vision, ["fixtures", "tune", *HELD_OUT], log=ctx.log)
    return {"face_accuracy": figs}, accuracy_markdown(figs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.face_accuracy")
    ap.add_argument("--set", action="append", choices=sorted(set_paths()), default=None)
    ap.add_argument("--no-seed", action="store_true", help="skip the prototype (slow)")
    ap.add_argument("--vision", default="{}", help="[vision] overrides as JSON")
    ap.add_argument("--cond", action="append", choices=list(CONDITIONS), default=None)
    ap.add_argument("--no-plain", action="store_true", help="skip the enhancement-off rows")
    ap.add_argument(
        "--enlarge",
        type=int,
        default=0,
        metavar="PX",
        help="scale photos (not the tight crops) up to this long side first (tuning aid)",
    )
    ap.add_argument(
        "--noise",
        type=int,
        default=0,
        metavar="N",
        help="the N-th variant of the dark probes' noise (0: the one make bench uses)",
    )
    ap.add_argument(
        "--sweep",
        default=None,
        metavar="LO:HI:STEP",
        help="instead: false accepts/rejects at each threshold from LO to HI, over --draws",
    )
    ap.add_argument("--draws", type=int, default=4, help="noise draws a --sweep sums over")
    a = ap.parse_args(argv)
    log = lambda m: print(f"face_accuracy: {m}", file=sys.stderr, flush=True)  # noqa: E731
    if a.sweep is not None:
        try:
            lo, hi, step = (float(x) for x in a.sweep.split(":"))
        except ValueError:
            ap.error(f"--sweep wants LO:HI:STEP (three numbers), got {a.sweep!r}")
        if not (step > 0 and lo <= hi) or a.draws < 1:
            ap.error("--sweep needs LO <= HI and STEP > 0, and --draws at least 1")
        n = int(round((hi - lo) / step)) + 1
        figs = sweep(
            json.loads(a.vision),
            a.set or ["tune", "heldout"],
            draws=a.draws,
            thresholds=[round(lo + i * step, 4) for i in range(n)],
            conditions=a.cond,
            seed=not a.no_seed,
            log=log,
        )
        print(json.dumps(figs, indent=1))
        return 0
    figs = run(
        json.loads(a.vision),
        a.set or ["fixtures", "tune", "heldout"],
        seed=not a.no_seed,
        conditions=a.cond,
        no_enhance=not a.no_plain,
        enlarge=a.enlarge,
        noise=a.noise,
        log=log,
    )
    print(json.dumps(figs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
