"""The dependency rule holds: service -> adapters -> pure core (import-linter contracts)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports)], capture_output=True, text=True, cwd=REPO, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert f"{len(declared['contracts'])} kept, 0 broken" in result.stdout


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


NOT_BEFORE_THE_SIGNS = {
    "fastapi",
    "starlette",
    "uvicorn",
    "twilio",
    "matplotlib",
    "jsonschema",
    "httpx",
    "psycopg",
    "rich",
    "phonenumbers",
    "holidays",
    "alembic",
}
"""Packages `serve` does not need before every sign is re-asserted after a restart."""


def test_the_dispatch_path_of_serve_imports_nothing_the_signs_do_not_need() -> None:
    # What `carpool-line serve` imports before it re-asserts the signs (the CLI, the runtime)
    # is start-up time of every restart; the web side and the adapters come later or on use.
    probe = (
        "import sys, line_service.cli, line_service.runtime; "
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert NOT_BEFORE_THE_SIGNS & set(result.stdout.split()) == set()
