"""The lines file's parse cache: used for the same text, never for another, never in the way."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dispatcher.model import StopId
from line_service.network import cache as lines_cache
from line_service.network import lines_file as lines_file_module
from line_service.network.lines_file import LinesFileError, load_network

SHIPPED = Path(__file__).resolve().parent.parent / "config" / "lines.yaml"
CALAIS = StopId("calais-est")


@pytest.fixture
def lines_file(tmp_path: Path) -> Path:
    copy = tmp_path / "lines.yaml"
    shutil.copy(SHIPPED, copy)
    return copy


def name_of(path: Path, cache: Path, stop: StopId = CALAIS) -> str:
    network = load_network(path, cache)
    place = next(line.stop(stop) for line in network.lines if line.stop(stop))
    assert place is not None
    return place.name


def only_entry(cache: Path) -> Path:
    [entry] = cache.glob("lines-*.json")
    return entry


def test_the_same_text_is_read_from_the_cache_and_gives_the_same_network(
    lines_file: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    parsed = load_network(lines_file, cache)
    assert load_network(lines_file, cache) == parsed
    assert load_network(lines_file) == parsed  # no cache at all: the same network

    # Proof the second load came from the cache: the YAML parser is not called.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lines_file_module, "_parse_yaml", refuse_to_parse)
        assert load_network(lines_file, cache) == parsed


def refuse_to_parse(_text: str, _source: str) -> object:
    raise AssertionError("the YAML was parsed again")


def rewrite(entry: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit an entry's data by hand, leaving its hashes as they were."""
    stored = json.loads(entry.read_text(encoding="utf-8"))
    change(stored.get("data", stored))  # (the bare data, in entries of format 1)
    entry.write_text(json.dumps(stored), encoding="utf-8")


def first_stop(data: dict[str, Any]) -> dict[str, Any]:
    stop: dict[str, Any] = data["lines"][0]["directions"][0]["stops"][0]
    return stop


def test_an_entry_edited_by_hand_is_not_believed(lines_file: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    original = name_of(lines_file, cache)
    rewrite(only_entry(cache), lambda data: first_stop(data).update(name="POISONED"))
    assert name_of(lines_file, cache) == original
    assert "POISONED" not in only_entry(cache).read_text(encoding="utf-8")  # rewritten


def test_an_edited_fallback_phone_is_not_believed(lines_file: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    expected = load_network(lines_file, cache)
    assert "+33321000000" in only_entry(cache).read_text(encoding="utf-8")

    def swap_phone(data: dict[str, Any]) -> None:
        data["lines"][0]["fallback"]["phone"] = "+33699999999"

    rewrite(only_entry(cache), swap_phone)
    network = load_network(lines_file, cache)
    assert network == expected
    assert "+33699999999" not in repr(network)


def test_random_bytes_in_the_entry_are_ignored_not_a_crash(
    lines_file: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    expected = load_network(lines_file, cache)
    for garbage in (os.urandom(4096), b"\xff\xfe\x00", b"[NaN]", b"[" * 100_000, b"null"):
        only_entry(cache).write_bytes(garbage)
        assert load_network(lines_file, cache) == expected


def test_an_entry_of_another_text_is_not_believed(lines_file: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    text = lines_file.read_text(encoding="utf-8")
    other = tmp_path / "other.yaml"
    other.write_text(text.replace("calais-est", "calais-autre"), encoding="utf-8")
    load_network(other, cache)
    foreign = only_entry(cache)
    foreign.rename(lines_cache.entry_path(cache, text))  # put under this text's name
    network = load_network(lines_file, cache)
    assert any(line.stop(CALAIS) for line in network.lines)


def test_the_cache_is_private(lines_file: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_network(lines_file, cache)
    assert cache.stat().st_mode & 0o777 == 0o700
    assert only_entry(cache).stat().st_mode & 0o777 == 0o600


def test_an_edited_file_is_parsed_again_and_replaces_the_old_entry(
    lines_file: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    before = name_of(lines_file, cache)
    old_entry = only_entry(cache)
    text = lines_file.read_text(encoding="utf-8")
    lines_file.write_text(text.replace(f'name: "{before}"', 'name: "Calais Est"', 1), "utf-8")
    assert name_of(lines_file, cache) == "Calais Est"
    assert only_entry(cache) != old_entry
    assert not old_entry.exists()


def test_cached_data_is_still_checked_like_a_fresh_file(lines_file: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_network(lines_file, cache)
    entry = only_entry(cache)
    stored = json.loads(entry.read_text(encoding="utf-8"))
    first_stop(stored["data"])["lat"] = "north"
    stored["content"] = lines_cache.content_hash(stored["data"])  # hashes made to agree
    entry.write_text(json.dumps(stored), encoding="utf-8")
    with pytest.raises(LinesFileError, match=r"lat"):
        load_network(lines_file, cache)


def test_a_corrupt_entry_is_ignored_and_rewritten(lines_file: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    expected = load_network(lines_file, cache)
    entry = only_entry(cache)
    entry.write_text('{"lines": [', encoding="utf-8")
    assert load_network(lines_file, cache) == expected
    assert json.loads(entry.read_text(encoding="utf-8"))["data"]["lines"]


def test_a_cache_that_cannot_be_written_does_not_stop_the_load(
    lines_file: Path, tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    assert load_network(lines_file, blocked / "cache") == load_network(lines_file)


def test_data_json_would_not_give_back_is_not_cached(tmp_path: Path) -> None:
    from datetime import date

    lines_cache.write(tmp_path, "text", {"holiday": date(2026, 12, 25)})
    lines_cache.write(tmp_path, "text", {1: "an integer key"})
    assert list(tmp_path.iterdir()) == []


def test_a_write_cut_short_leaves_nothing_behind_at_the_next_write(
    lines_file: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "lines-0123.4242.partial").write_text('{"lines": [')
    load_network(lines_file, cache)
    assert [path.suffix for path in cache.iterdir()] == [".json"]
