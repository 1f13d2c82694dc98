"""The one rule for a missing service or tool: skip on a developer machine, fail under CI=true.

Imported as tests.ci_gate (tests/ is a package; the repository root is on sys.path).
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip with `reason` on a developer machine; fail in CI, where nothing may skip."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)
