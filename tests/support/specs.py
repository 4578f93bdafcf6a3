"""Test support: where the external specifications are (shared/specs beside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SPECS = Path(os.environ.get("CARPOOL_SPECS_DIR", REPO.parent / "shared" / "specs"))
