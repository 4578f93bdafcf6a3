"""The dependency rule holds: service -> adapters -> pure core (import-linter contracts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports)], capture_output=True, text=True, cwd=REPO, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout  # one per [[tool.importlinter.contracts]]


IMPURE_STDLIB = {
    "asyncio",
    "logging",
    "random",
    "secrets",
    "uuid",
    "time",
    "os",
    "socket",
    "subprocess",
    "threading",
    "io",
    "pathlib",
    "sqlite3",
    "urllib",
    "http",
    "json",
}


def test_the_core_reads_no_clock_draws_no_randomness_and_does_no_io() -> None:
    import ast

    offenders = []
    for module in sorted((REPO / "dispatcher").glob("*.py")):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [
                f"{module.name}: {name}" for name in names if name.split(".")[0] in IMPURE_STDLIB
            ]
            if isinstance(node, ast.Attribute) and node.attr in {"now", "utcnow", "today"}:
                offenders.append(f"{module.name}:{node.lineno}: reads the clock (.{node.attr})")
    assert offenders == []
