"""Shell: a cluster process stands by until it owns the lines, dispatches them while it does,
and leaves at once when it stops owning them.

The simplest correct shape for this slice: nothing of the dispatch side (restore, engine,
timers, MQTT link, subscriptions, re-assertion) exists in a standby; it starts, whole, once every
line's lock is held. Losing a lock ends the process (exit code EXIT_LOST) without a last
publication or write: a supervisor starts it again, as a standby. A fresh process is the only
way back that cannot carry state from the time it did not own the lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import NoReturn

import structlog

from line_service.cluster.ownership import LineOwnership

log = structlog.get_logger(__name__)

EXIT_LOST = 75  # EX_TEMPFAIL: the locks went to another process; start again as a standby
EXIT_FAILED = 70  # EX_SOFTWARE: dispatching failed once owned


def stand_down(code: int) -> NoReturn:
    """End the process now: no task runs again, nothing more is published or written."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def _own_and_dispatch(
    ownership: LineOwnership, dispatching: Callable[[], AbstractAsyncContextManager[object]]
) -> None:
    await ownership.acquire()
    async with dispatching():
        await ownership.keep()  # returns only once the locks are lost
        log.error("cluster.standing_down", node=ownership.node, exit_code=EXIT_LOST)
        stand_down(EXIT_LOST)


def _ended(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    log.error("cluster.dispatch_failed", error=repr(task.exception())[:300])
    stand_down(EXIT_FAILED)


@contextlib.asynccontextmanager
async def serving_when_owner(
    ownership: LineOwnership, dispatching: Callable[[], AbstractAsyncContextManager[object]]
) -> AsyncIterator[None]:
    """Yield at once (HTTP may serve); dispatch in the background from the moment the lines are
    owned. On exit (SIGTERM) dispatching stops cleanly, then the locks are released: a standby
    takes over within RETRY_SECONDS."""
    task = asyncio.create_task(_own_and_dispatch(ownership, dispatching), name="cluster-owner")
    task.add_done_callback(_ended)
    try:
        yield
    finally:
        task.remove_done_callback(_ended)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ownership.close()
