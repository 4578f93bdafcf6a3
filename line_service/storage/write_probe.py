"""Shell: whether the database accepts a write now — for /readyz, with a timeout, logged once
when it stops (and once when it comes back)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog

from line_service.storage.store import Store

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT = timedelta(seconds=2)


class WriteProbe:
    """Asks the store for a write (`Store.write_problem`), one question at a time.

    A database that hangs (a stalled disk, a lock held) answers "not ready" after `timeout`;
    the question still pending is shared by the next callers instead of piling up threads.
    """

    def __init__(self, store: Store, timeout: timedelta = DEFAULT_TIMEOUT) -> None:
        self._store = store
        self._timeout = timeout
        self._pending: asyncio.Future[str | None] | None = None
        self._failing: str | None = None

    async def accepts_writes(self) -> bool:
        """True when a write went through within the timeout."""
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(asyncio.to_thread(self._store.write_problem))
        try:
            problem = await asyncio.wait_for(
                asyncio.shield(self._pending), self._timeout.total_seconds()
            )
        except TimeoutError:
            problem = f"no answer within {self._timeout.total_seconds():g} s"
        self._report(problem)
        return problem is None

    def _report(self, problem: str | None) -> None:
        if problem is not None and self._failing is None:
            log.error(
                "storage.unwritable",
                error=problem,
                hint="disk full, read-only or gone? /readyz answers 503 until a write succeeds",
            )
        elif problem is None and self._failing is not None:
            log.info("storage.writable_again", was=self._failing)
        self._failing = problem
