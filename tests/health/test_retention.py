"""Snapshot retention by age and by total size on a real temporary directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.health.retention import prune_snapshots

NOW = 1_800_000_000.0
DAY = 86400


def _snap(root: Path, rel: str, size: int, age_days: float) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"\xff" * size)
    t = NOW - age_days * DAY
    os.utime(p, (t, t))
    return p


def test_missing_dir_is_fine(tmp_path):
    stats = prune_snapshots(tmp_path / "nope", 30, 100)
    assert stats.scanned == 0 and stats.deleted == 0


def test_prunes_by_age_and_removes_empty_day_dirs(tmp_path):
    old = _snap(tmp_path, "2026/01/01/a.jpg", 1000, 40)
    new = _snap(tmp_path, "2026/02/10/b.jpg", 1000, 1)
    other = _snap(tmp_path, "2026/01/01/notes.txt", 10, 400)  # not a snapshot: left alone
    stats = prune_snapshots(tmp_path, max_age_days=30, max_total_mb=None, now=NOW)
    assert not old.exists() and new.exists() and other.exists()
    assert stats.deleted_age == 1 and stats.deleted_size == 0 and stats.kept == 1
    assert stats.bytes_before == 2000 and stats.bytes_after == 1000
    os.remove(other)
    _snap(tmp_path, "2025/12/31/c.jpg", 10, 50)
    prune_snapshots(tmp_path, 30, None, now=NOW)
    assert not (tmp_path / "2025").exists()
    assert tmp_path.exists()


def test_prunes_oldest_first_until_under_size(tmp_path):
    mb = 1024 * 1024
    files = [_snap(tmp_path, f"d/{i}.jpg", mb // 2, age_days=10 - i) for i in range(6)]  # 3 MB
    stats = prune_snapshots(tmp_path, max_age_days=None, max_total_mb=1.6, now=NOW)
    # 6 x 0.5 MB = 3 MB -> keep the 3 newest (1.5 MB)
    assert [f.exists() for f in files] == [False, False, False, True, True, True]
    assert stats.deleted_size == 3 and stats.bytes_after == 3 * (mb // 2)
    assert stats.bytes_after <= 1.6 * mb


def test_age_then_size_combined_and_idempotent(tmp_path):
    _snap(tmp_path, "x/old.jpg", 100, 100)
    keep = [_snap(tmp_path, f"y/{i}.PNG", 400_000, i) for i in range(3)]  # 1.2 MB, recent
    stats = prune_snapshots(tmp_path, max_age_days=30, max_total_mb=0.9, now=NOW)
    assert stats.deleted_age == 1 and stats.deleted_size == 1
    assert [k.exists() for k in keep] == [True, True, False]  # keep[2] is the oldest
    again = prune_snapshots(tmp_path, max_age_days=30, max_total_mb=0.9, now=NOW)
    assert again.deleted == 0 and again.kept == 2


def test_zero_size_bound_deletes_everything_and_bad_bounds_are_rejected(tmp_path):
    _snap(tmp_path, "a.jpg", 10, 0)
    assert prune_snapshots(tmp_path, None, 0, now=NOW).kept == 0
    with pytest.raises(ValueError, match="max_age_days"):
        prune_snapshots(tmp_path, -1, None)
    with pytest.raises(ValueError, match="max_total_mb"):
        prune_snapshots(tmp_path, None, -5)
