"""The throwaway PostgreSQL of the tests: a clear error when its binaries are missing."""

from __future__ import annotations

import pytest

from tests.support import postgres


def test_missing_server_binaries_say_how_to_install_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "BINARY_GLOB", "/nonexistent/*/bin/initdb")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(postgres.PostgresMissingError, match=r"apt-get install -y postgresql"):
        postgres.server_binaries()


def test_the_newest_installed_version_is_chosen() -> None:
    found = postgres.server_binaries()
    assert (found / "initdb").exists()
    assert (found / "postgres").exists()
