"""What a door installs is the product: no test double, benchmark or baseline inside it."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCT = [REPO / "appliance", REPO / "web_admin"]
# packages only tests and benchmarks may import
DEV_ONLY = {"aiosmtpd", "face_recognition", "pytest", "hypothesis", "playwright", "tests", "bench"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_no_product_module_imports_a_test_or_benchmark_package() -> None:
    offenders = {
        str(p.relative_to(REPO)): sorted(_imports(p) & DEV_ONLY)
        for root in PRODUCT
        for p in root.rglob("*.py")
        if _imports(p) & DEV_ONLY
    }
    assert offenders == {}


def test_benchmark_baseline_and_dev_tools_are_not_door_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {d.split(">")[0].split("<")[0].split("=")[0].strip().lower()
               for d in project["dependencies"]}  # fmt: skip
    assert not runtime & {"face_recognition", "setuptools", "click", "pytest", "aiosmtpd"}
    assert "setuptools<81" in project["optional-dependencies"]["bench"]
