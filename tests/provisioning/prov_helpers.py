"""Shared helpers for the provisioning tests: repo path and the CI-aware tool lookup."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI") == "true"


def need_tool(name: str) -> str:
    """The tool's path; a missing tool fails under CI=true and skips elsewhere."""
    path = shutil.which(name) or (shutil.which(name, path="/usr/sbin:/sbin") if name else None)
    if path is None:
        message = f"{name} is not installed (see provisioning/README.md, Tests)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path
