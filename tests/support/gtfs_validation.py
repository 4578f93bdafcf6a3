"""Test support: the canonical GTFS rules (PyPI `gtfs-validator`, its command line) on a feed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

VALIDATOR = Path(sys.executable).parent / "gtfs-validator"
START = date(2026, 12, 1)  # the feeds' first day, and the validator's "today"


def validate(archive: bytes, directory: Path) -> dict[str, int]:
    """The canonical validator's notices on `archive`: {"SEVERITY code": count}."""
    directory.mkdir(parents=True, exist_ok=True)
    feed = directory / "feed.zip"
    feed.write_bytes(archive)
    out = directory / "report"
    subprocess.run(
        [str(VALIDATOR), "-i", str(feed), "-o", str(out), "-d", START.isoformat(), "-c", "FR"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return {f"{n['severity']} {n['code']}": n["totalNotices"] for n in report["notices"]}


def errors(notices: dict[str, int]) -> dict[str, int]:
    """Only the ERROR notices."""
    return {code: count for code, count in notices.items() if code.startswith("ERROR")}
