"""Composition root: the carpool line service (settings, engine, persistence, API, CLI)."""

import sys


def _structlog_without_rich() -> None:
    """Import structlog as if rich were absent: it would load rich (~30 ms of every start-up,
    before the first sign can be re-asserted) only to draw tracebacks, and our logs format
    theirs before rendering (`format_exc_info`), so it never draws one. rich stays importable
    for the rest (typer's help on a terminal)."""
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # import rich now raises ImportError
    try:
        import structlog  # noqa: F401  # imported here on purpose, once
    finally:
        del sys.modules["rich"]


_structlog_without_rich()
