"""Owns the vision sub-commands of `doorward`: verify, eval-pairs and eval-liveness."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, sort_keys=False), flush=True)


def _user_templates(args: argparse.Namespace, number: int) -> Any:
    import numpy as np
    from sqlalchemy import select

    from appliance.cli.common import CliError, open_door_db
    from appliance.store.models import FaceTemplate, User

    db = open_door_db(args)
    try:
        with db.session() as s:
            user = s.scalars(select(User).where(User.number == number)).one_or_none()
            if user is None:
                raise CliError(f"--number {number}: no such user")
            rows = s.scalars(select(FaceTemplate).where(FaceTemplate.user_id == user.id)).all()
            vectors = [r.vector() for r in rows]
    finally:
        db.close()
    return np.stack(vectors) if vectors else np.empty((0, 128))


class _StillCamera:
    def __init__(self, frame: Any) -> None:
        self.frame = frame

    def start(self) -> None:
        pass

    def read(self) -> Any:
        return self.frame

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


def cmd_verify(args: argparse.Namespace) -> int:
    from appliance.vision import FaceEngine, load_image

    image = load_image(args.image)
    templates = _user_templates(args, args.number)
    engine = FaceEngine(args.config.vision)
    engine.warm_up(liveness=False)
    t0 = time.perf_counter()
    d = engine.verify(_StillCamera(image), templates, liveness=False, clock=time.perf_counter)
    ms = (time.perf_counter() - t0) * 1000.0
    _emit(
        {
            "decision": "granted" if d.matched else "denied",
            "distance": None if d.distance is None else round(d.distance, 4),
            "reason": d.reason,
            "ms": round(ms, 1),
        }
    )
    return 0 if d.matched else 1


def _progress(msg: str) -> None:
    print(f"eval-pairs: {msg}", file=sys.stderr, flush=True)


def cmd_eval_pairs(args: argparse.Namespace) -> int:
    from appliance.cli.common import CliError
    from appliance.vision import FaceEngine
    from appliance.vision.evaluate import evaluate_door, read_pairs

    try:
        pairs = read_pairs(args.pairs, args.root)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    _progress(f"{len(pairs)} pairs from {args.pairs}")
    engine = FaceEngine(args.config.vision)
    engine.warm_up(liveness=False)
    summary, _ = evaluate_door(engine, pairs, threshold=args.threshold, progress=_progress)
    _emit(summary)
    return 0


def cmd_eval_liveness(args: argparse.Namespace) -> int:
    from appliance.cli.common import CliError
    from appliance.vision import FaceEngine
    from appliance.vision.liveness_eval import evaluate, find_clips

    try:
        clips = find_clips(args.clips)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    cfg = args.config
    engine = FaceEngine(cfg.vision)
    engine.warm_up()
    n_bona = sum(c.bona_fide for c in clips)
    watched = f", the first {args.typed:g} s watched as while typing" if args.typed else ""
    print(
        f"eval-liveness: {len(clips)} clips ({n_bona} bona fide, {len(clips) - n_bona} attacks)"
        f" at {cfg.camera.fps:g} fps, at most {cfg.vision.liveness_max_frames} frames each"
        f"{watched}",
        file=sys.stderr,
        flush=True,
    )
    try:
        summary, results = evaluate(
            engine,
            clips,
            fps=cfg.camera.fps,
            max_frames=cfg.vision.liveness_max_frames,
            progress=lambda m: print(f"eval-liveness: {m}", file=sys.stderr, flush=True),
            typed_s=args.typed,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    for r in results:
        _emit(
            {
                "clip": str(r.clip.path.relative_to(args.clips)),
                "kind": r.clip.kind,
                "verdict": r.verdict.state,
                "reason": r.verdict.reason,
                "accepted": r.accepted,
                "frames": r.frames,
                "seconds": r.seconds,
                **{k: v for k, v in r.verdict.detail.items() if k != "frames"},
            }
        )
    _emit({"event": "summary", **summary})
    return 0


def _typed_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 30:
        raise argparse.ArgumentTypeError(f"{text} s is outside 0..30 s")
    return value


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1.5:
        raise argparse.ArgumentTypeError(f"{text} is outside 0..1.5")
    return value


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("verify", help="face-check one photo against a user's templates")
    p.add_argument("--number", type=int, required=True, help="user number")
    p.add_argument("--image", type=Path, required=True, help="JPEG/PNG photo (the camera frame)")
    p.set_defaults(func=cmd_verify)

    p = subparsers.add_parser(
        "eval-pairs", help="FAR/FRR on labelled photo pairs (CSV file_x,file_y,same)"
    )
    p.add_argument("--pairs", type=Path, required=True, help="CSV with file_x,file_y,same")
    p.add_argument("--root", type=Path, default=None, help="folder for relative paths")
    p.add_argument("--threshold", type=_threshold, default=None, help="default: vision.threshold")
    p.set_defaults(func=cmd_eval_pairs)

    p = subparsers.add_parser(
        "eval-liveness",
        help="APCER/BPCER of the liveness check on your own recordings",
        description="Judge every clip under DIR as the door would: DIR/bona_fide/ (or live/) "
        "holds recordings of real people at the door, DIR/attack/<kind>/ recordings of photos, "
        "prints or screens held up to it. Prints one JSON line per clip and a summary with "
        "BPCER (bona fide refused) and APCER per attack kind (attacks accepted).",
    )
    p.add_argument("--clips", type=Path, required=True, metavar="DIR", help="folder of clips")
    p.add_argument(
        "--typed",
        type=_typed_seconds,
        default=0.0,
        metavar="SECONDS",
        help="watch the first SECONDS of each clip as the door watches while a code is typed "
        "(default 0: a cold check, nothing watched)",
    )
    p.set_defaults(func=cmd_eval_liveness)
