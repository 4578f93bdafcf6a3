"""Shell: the lines file's parsed YAML, cached as JSON under the file's content hash.

A region's lines file (thousands of stops) takes ~0.25 s to parse as YAML, on every restart,
before a single sign can be re-asserted; JSON of the same data loads in a few milliseconds.
The cache holds only what the YAML parser produced: the schema checks and the cross-checks
still run on every load, so a cached file is checked exactly like a fresh one. An entry is
named by a hash of the file's text and the parser's version: an edited file is a new entry.
The cache is an optimisation only: unreadable, corrupt or unwritable, it is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import structlog
import yaml

log = structlog.get_logger(__name__)

FORMAT = 1  # bump when what is cached changes


def entry_path(cache_dir: Path, text: str) -> Path:
    """Where the parsed form of `text` is kept."""
    key = f"{FORMAT}\0{yaml.__version__}\0{text}".encode()
    return cache_dir / f"lines-{hashlib.sha256(key).hexdigest()}.json"


def read(cache_dir: Path, text: str) -> object | None:
    """The YAML data parsed earlier from this exact text, or None."""
    try:
        encoded = entry_path(cache_dir, text).read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        data: object = json.loads(encoded)
    except ValueError:
        log.warning("lines_cache.corrupt", cache_dir=str(cache_dir))
        return None
    return data


def write(cache_dir: Path, text: str, data: object) -> None:
    """Keep `data` (parsed from `text`) for the next start; drop older entries.

    Data that JSON would not give back identically (dates, non-string keys) is not cached.
    """
    try:
        encoded = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return
    if json.loads(encoded) != data:
        return
    target = entry_path(cache_dir, text)
    for leftover in cache_dir.glob("lines-*.partial"):  # a write cut short by a crash
        with contextlib.suppress(OSError):
            leftover.unlink()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(encoded, encoding="utf-8")
        os.replace(partial, target)  # atomic: a reader sees the whole entry or none
    except OSError as exc:
        log.info("lines_cache.not_written", cache_dir=str(cache_dir), error=str(exc)[:200])
        return
    for older in cache_dir.glob("lines-*.json"):
        if older != target:
            with contextlib.suppress(OSError):
                older.unlink()
