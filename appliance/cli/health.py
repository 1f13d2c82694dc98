"""Owns the health CLI: `doorward doctor` and `doorward prune-snapshots`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from appliance.health.doctor import CHECK_NAMES, exit_code, render_json, render_table, run_doctor
from appliance.health.retention import prune_snapshots
from appliance.health.settings import health_settings


def _doctor(args: argparse.Namespace) -> int:
    only = args.only.split(",") if args.only else None
    try:
        results = run_doctor(args.config, db_url=getattr(args, "db_url", None), only=only)
    except ValueError as exc:
        print(f"doorward doctor: {exc}", file=sys.stderr)
        return 2
    print(render_json(results) if args.json else render_table(results))
    return exit_code(results)


def _prune(args: argparse.Namespace) -> int:
    settings = health_settings(args.config)
    max_age = args.max_age_days if args.max_age_days is not None else settings.snapshot_max_age_days
    max_mb = args.max_total_mb if args.max_total_mb is not None else settings.snapshot_max_total_mb
    stats = prune_snapshots(args.config.snapshot_dir, max_age, max_mb)
    print(json.dumps(stats.as_dict()))
    return 1 if stats.errors else 0


def register(subparsers: Any) -> None:
    """Add the health sub-commands to the main `doorward` parser."""
    p = subparsers.add_parser(
        "doctor",
        help="check config, pins, camera, modem, SMTP, Twilio, databases, disk and clock",
        description="Exit code 0 when nothing failed (warnings allowed), 1 otherwise.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--only", metavar="CHECKS", help=f"comma-separated subset of: {','.join(CHECK_NAMES)}"
    )
    p.set_defaults(func=_doctor)

    p = subparsers.add_parser(
        "prune-snapshots", help="delete old snapshots by age and total size ([health] bounds)"
    )
    p.add_argument("--max-age-days", type=float, default=None)
    p.add_argument("--max-total-mb", type=float, default=None)
    p.set_defaults(func=_prune)
