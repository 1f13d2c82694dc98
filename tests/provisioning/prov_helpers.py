"""Shared helpers for the provisioning tests: repo path and the CI-aware tool lookup."""

from __future__ import annotations

import shutil
from pathlib import Path

from ci_gate import require

REPO = Path(__file__).resolve().parents[2]


def need_tool(name: str) -> str:
    """The tool's path; a missing tool fails under CI=true and skips elsewhere."""
    path = shutil.which(name) or (shutil.which(name, path="/usr/sbin:/sbin") if name else None)
    require(path is not None, f"{name} is not installed (see provisioning/README.md, Tests)")
    assert path is not None
    return path
