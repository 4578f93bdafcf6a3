"""Shell: the drivers the operator banned — they earn nothing; their ids go to the registry.

A ban names the driver as `driver_identity` does (`tel:+33…`, `account:<id>`); the registry
knows them by the opaque `operator_user_id` we send (`u-<identity key>` for a known number),
which is kept with the ban so the list can be shared with it.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from line_service.authority.driver_identity import Driver, identify_driver
from line_service.authority.trips import identity_of
from line_service.storage.money_tables import BannedDriverRecord
from line_service.storage.store import Store


class UnknownDriverRefError(ValueError):
    """The text names no driver that can be identified."""


def driver_of(ref: str) -> Driver:
    """The driver a ban names (`+33…`, `tel:+33…`, `account:<id>`), or UnknownDriverRefError."""
    driver = identify_driver(ref)
    if driver is None:
        raise UnknownDriverRefError(f"{ref!r} names no identifiable driver (+33…, account:<id>)")
    return driver


def registry_user_id(driver: Driver) -> str | None:
    """The driver's `operator_user_id` at the registry (None when no number is known)."""
    return None if driver.phone is None else f"u-{identity_of(driver.phone).identity_key[:24]}"


class DriverBans:
    """The banned drivers' list (blocking calls)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def ban(self, ref: str, reason: str, at: datetime) -> BannedDriverRecord:
        """Ban a driver (again: the reason is updated)."""
        driver = driver_of(ref)
        with Session(self._store.engine) as session:
            row = session.get(BannedDriverRecord, driver.key) or BannedDriverRecord(
                driver_key=driver.key, banned_at=at
            )
            row.reason, row.registry_user_id = reason, registry_user_id(driver)
            session.add(row)
            session.commit()
            session.refresh(row)
            return row

    def unban(self, ref: str) -> bool:
        """Lift a ban; False when the driver was not banned."""
        driver = driver_of(ref)
        with Session(self._store.engine) as session:
            row = session.get(BannedDriverRecord, driver.key)
            if row is None:
                return False
            session.delete(row)
            session.commit()
            return True

    def banned(self) -> list[BannedDriverRecord]:
        """Every ban, oldest first."""
        with Session(self._store.engine) as session:
            return list(
                session.exec(
                    select(BannedDriverRecord).order_by(col(BannedDriverRecord.banned_at))
                ).all()
            )

    def keys(self) -> frozenset[str]:
        """The banned drivers' keys."""
        return frozenset(row.driver_key for row in self.banned())
