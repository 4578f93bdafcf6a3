"""Adapter: which line a request id, a driver's code or a rider's number belongs to — the
database reads of a cluster's door (line_service/cluster/request_lines.py decides).

Only `ride_request` is read, with no new table or index. A request's id is its primary key.
Codes and numbers are looked up among the live requests, found by the state index; codes also
among the recent FALLBACK ones (by the `updated_at` index): FALLBACK rows stay in the table,
while the engine holds their code only for twice the line's max wait (dispatcher/step.py,
`_forget_finished`). A live request (waiting, announced, fallback) keeps its rider's number in
clear, so a number is matched as such: the salted hash exists only for finished requests, which
no rider command acts on. Calls are blocking (call them from a worker thread).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Engine

from dispatcher.model import LineId, Network
from dispatcher.request_machine import RequestState
from line_service.storage.store import RideRequestRecord, as_utc

_LIVE = (RequestState.WAITING.value, RequestState.ANNOUNCED.value)


def _requests() -> Table:
    table: Table = RideRequestRecord.__table__  # type: ignore[attr-defined]
    return table


def code_kept(network: Network) -> dict[LineId, timedelta]:
    """How long after its last change a FALLBACK request still holds its code, per line: the
    engine forgets finished requests past twice the line's max wait (dispatcher/step.py)."""
    return {line.id: line.tuning.max_wait * 2 for line in network.lines}


class RequestLineLookup:
    """The door's reads, on the service's engine (`store.engine`), for the lines of `network`;
    `clock` tells which FALLBACK requests still hold their code."""

    def __init__(self, engine: Engine, network: Network, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock
        self._order = {line.id: index for index, line in enumerate(network.lines)}
        self._kept = code_kept(network)
        self._longest = max(self._kept.values(), default=timedelta(0))
        table = _requests()
        self._by_id = select(table.c.line_id).where(table.c.id == bindparam("request_id"))
        self._live_code = (
            select(table.c.line_id)
            .where((table.c.code == bindparam("code")) & table.c.state.in_(_LIVE))
            .distinct()
        )
        # Found by `updated_at` alone: the state index would walk every FALLBACK row ever.
        self._recent_code = select(table.c.line_id, table.c.state, table.c.updated_at).where(
            (table.c.code == bindparam("code")) & (table.c.updated_at >= bindparam("since"))
        )
        self._live_codes = select(table.c.code, table.c.line_id).where(table.c.state.in_(_LIVE))
        self._recent_fallbacks = select(table.c.code, table.c.line_id, table.c.updated_at).where(
            (table.c.state == RequestState.FALLBACK.value)
            & (table.c.updated_at >= bindparam("since"))
        )
        # No ORDER BY … LIMIT: a planner would walk the `created_at` index through every
        # request ever made; a number has one or two live requests, sorted here.
        self._by_phone = select(table.c.line_id, table.c.created_at, table.c.id).where(
            (table.c.phone == bindparam("phone")) & table.c.state.in_(_LIVE)
        )

    def line_of_request_id(self, request_id: str) -> LineId | None:
        """The line of the request with this id, or None when no request has it."""
        with self._engine.connect() as connection:
            found = connection.execute(self._by_id, {"request_id": request_id}).scalar()
        return None if found is None else LineId(found)

    def lines_holding_code(self, code: str) -> list[LineId]:
        """The lines of the network where a request holds `code` now, as the engine sees it
        (waiting, announced, or FALLBACK not yet forgotten), in the network's order."""
        now = self._clock()
        with self._engine.connect() as connection:
            holding = set(connection.execute(self._live_code, {"code": code}).scalars())
            since = {"code": code, "since": now - self._longest}
            for line_id, state, updated_at in connection.execute(self._recent_code, since):
                kept = self._kept.get(line_id)
                fallback = state == RequestState.FALLBACK.value
                if fallback and kept is not None and now - as_utc(updated_at) <= kept:
                    holding.add(line_id)
        ordered = sorted(
            (line for line in holding if line in self._order), key=self._order.__getitem__
        )
        return [LineId(line_id) for line_id in ordered]

    def codes_held_elsewhere(self, here: Iterable[str]) -> frozenset[str]:
        """Every code held now (as `lines_holding_code` counts holding) on a line not in
        `here`: a cluster process gives none of them to its own riders."""
        mine = set(here)
        now = self._clock()
        codes: set[str] = set()
        with self._engine.connect() as connection:
            for code, line_id in connection.execute(self._live_codes):
                if line_id not in mine and code is not None:
                    codes.add(code)
            since = {"since": now - self._longest}
            for code, line_id, updated_at in connection.execute(self._recent_fallbacks, since):
                kept = self._kept.get(line_id)
                if line_id in mine or code is None or kept is None:
                    continue
                if now - as_utc(updated_at) <= kept:
                    codes.add(code)
        return frozenset(codes)

    def line_of_phone(self, phone_e164: str) -> LineId | None:
        """The line of this number's live request (waiting or announced; the newest if it has
        several), or None."""
        with self._engine.connect() as connection:
            rows = connection.execute(self._by_phone, {"phone": phone_e164}).all()
        newest = max(rows, key=lambda row: (as_utc(row.created_at), row.id), default=None)
        return None if newest is None else LineId(newest.line_id)
