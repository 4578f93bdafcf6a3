"""Shell: the lines file's parsed YAML, cached as JSON under the file's content hash.

A region's lines file (thousands of stops) takes ~0.25 s to parse as YAML, on every restart,
before a single sign can be re-asserted; JSON of the same data loads in a few milliseconds.
The cache holds only what the YAML parser produced: the schema checks and the cross-checks
still run on every load, so a cached file is checked exactly like a fresh one. An entry is
named by a hash of the file's text and the parser's version: an edited file is a new entry.

The cache is derived data, never trusted: each entry records the SHA-256 of the text it was
parsed from and of its own data, and on read any doubt — bytes that are not UTF-8 JSON, another
shape or format, an entry for another text, data that no longer matches its hash (an edited
stop name or fallback phone) — means the file is parsed again and the entry rewritten. The
hashes catch corruption and hand edits, not an attacker who recomputes them: the directory is
made private (0700), like the lines file it derives from. Unreadable or unwritable, the cache is
ignored.
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

FORMAT = 2  # bump when what is cached changes


def entry_path(cache_dir: Path, text: str) -> Path:
    """Where the parsed form of `text` is kept."""
    key = f"{FORMAT}\0{yaml.__version__}\0{text}".encode()
    return cache_dir / f"lines-{hashlib.sha256(key).hexdigest()}.json"


def source_hash(text: str) -> str:
    """SHA-256 of the lines file's text."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def content_hash(data: object) -> str:
    """SHA-256 of the data in one canonical JSON form (sorted keys, no spaces)."""
    canonical = json.dumps(
        data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def read(cache_dir: Path, text: str) -> object | None:
    """The YAML data parsed earlier from this exact text, or None (parse the file again)."""
    path = entry_path(cache_dir, text)
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        return _believed(raw, text)
    except _DoubtError as doubt:
        log.warning("lines_cache.ignored", entry=path.name, reason=str(doubt))
        return None


class _DoubtError(Exception):
    """Why an entry is not believed."""


def _believed(raw: bytes, text: str) -> object:
    """The entry's data, once every check passed (raises _DoubtError otherwise)."""
    try:
        entry: object = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _DoubtError("not UTF-8 JSON") from exc
    if not isinstance(entry, dict) or set(entry) != {"format", "source", "content", "data"}:
        raise _DoubtError("not a cache entry")
    if entry["format"] != FORMAT:
        raise _DoubtError("another format")
    if entry["source"] != source_hash(text):
        raise _DoubtError("an entry for another text")
    try:
        matches = entry["content"] == content_hash(entry["data"])
    except (TypeError, ValueError, RecursionError):
        matches = False
    if not matches:
        raise _DoubtError("its data does not match its hash (edited or corrupt)")
    return entry["data"]


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} in a cache entry")


def write(cache_dir: Path, text: str, data: object) -> None:
    """Keep `data` (parsed from `text`) for the next start; drop older entries.

    Data that JSON would not give back identically (dates, non-string keys) is not cached.
    """
    try:
        encoded = json.dumps(data, ensure_ascii=False, allow_nan=False)
        if json.loads(encoded) != data:
            return
        entry = {"format": FORMAT, "source": source_hash(text), "content": content_hash(data)}
        encoded = json.dumps({**entry, "data": data}, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return
    target = entry_path(cache_dir, text)
    for leftover in cache_dir.glob("lines-*.partial"):  # a write cut short by a crash
        with contextlib.suppress(OSError):
            leftover.unlink()
    try:
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.partial")
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            out.write(encoded.encode("utf-8"))
        os.replace(partial, target)  # atomic: a reader sees the whole entry or none
    except OSError as exc:
        log.info("lines_cache.not_written", cache_dir=str(cache_dir), error=str(exc)[:200])
        return
    for older in cache_dir.glob("lines-*.json"):
        if older != target:
            with contextlib.suppress(OSError):
                older.unlink()
