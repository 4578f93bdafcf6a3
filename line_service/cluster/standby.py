"""Shell: a cluster process takes its share of the lines, hands over what it has too much of,
and leaves at once when it stops holding its locks.

Every HEARTBEAT_SECONDS the lock session is asked whether it still holds this process's locks
(the statement also keeps the server's idle timeout away); apart from that, every RETRY_SECONDS
the process looks at who is connected and who holds what, and moves by the placement rule
(line_service/cluster/placement.py): lines taken are adopted by the dispatch side, lines given
are first released by it.

Losing the session loses every lock at once: the process ends (exit code EXIT_LOST) without
a last publication or write, and a supervisor starts it again, fresh. A fresh process is the
only way back that cannot carry state from the time it did not hold the lines. On SIGTERM the
process hands every line over (released, then unlocked) before it stops: a peer takes them
within RETRY_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import NoReturn, Protocol

import psycopg
import structlog

from line_service.cluster.ownership import HEARTBEAT_SECONDS, RETRY_SECONDS, LineOwnership
from line_service.cluster.placement import moves

log = structlog.get_logger(__name__)

EXIT_LOST = 75  # EX_TEMPFAIL: the locks went to another process; start again as a standby
EXIT_FAILED = 70  # EX_SOFTWARE: dispatching failed


class LineCells(Protocol):
    """The dispatch side of the lines this process holds."""

    async def adopt(self, lines: tuple[str, ...]) -> None: ...

    async def release(self, lines: tuple[str, ...], *, leaving: bool = False) -> bool: ...


def stand_down(code: int) -> NoReturn:
    """End the process now: no task runs again, nothing more is published or written."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


async def look(ownership: LineOwnership, cells: LineCells) -> None:
    """One look: who is there, then give and take by the placement rule."""
    survey = await ownership.survey()
    planned = moves(
        ownership.lines, ownership.node, ownership.owned, survey.holders, len(survey.nodes)
    )
    if planned.give and await cells.release(planned.give):
        await ownership.give(planned.give)
    if planned.take:
        won = await ownership.take(planned.take)
        if won:
            try:
                await cells.adopt(won)
            except Exception:
                # Held but not dispatched is the one state never to stay in: give them back.
                log.exception("cluster.adoption_failed", lines=list(won))
                await cells.release(won, leaving=True)
                await ownership.give(won)


async def _beat(ownership: LineOwnership) -> None:
    """The heartbeat, apart from the looks: a long adoption must not let the idle timeout end
    the session."""
    while True:
        if not await ownership.verify():
            log.error("cluster.standing_down", node=ownership.node, exit_code=EXIT_LOST)
            stand_down(EXIT_LOST)
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def _look_again_and_again(ownership: LineOwnership, cells: LineCells) -> None:
    while True:
        try:
            await look(ownership, cells)
        except (psycopg.Error, OSError) as exc:
            log.warning("cluster.look_failed", error=str(exc)[:200])
            if not ownership.owned:  # nothing held: a fresh session at the next look
                await ownership.close()
        ownership.tried.set()
        await asyncio.sleep(RETRY_SECONDS)


async def _steer(ownership: LineOwnership, cells: LineCells) -> None:
    async with asyncio.TaskGroup() as group:
        group.create_task(_beat(ownership), name="cluster-heartbeat")
        group.create_task(_look_again_and_again(ownership, cells), name="cluster-looks")


def _ended(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    log.error("cluster.dispatch_failed", error=repr(task.exception())[:300])
    stand_down(EXIT_FAILED)


async def hand_over(ownership: LineOwnership, cells: LineCells) -> None:
    """Release every held line, then close the lock session (the locks go with it)."""
    held = ownership.owned
    if held and not ownership.lost.is_set():
        try:
            await cells.release(held, leaving=True)
        except Exception:
            log.exception("cluster.handover_failed", lines=list(held))
        log.info("cluster.handed_over", lines=list(held), node=ownership.node)
    await ownership.close()


@contextlib.asynccontextmanager
async def sharing_lines(ownership: LineOwnership, cells: LineCells) -> AsyncIterator[None]:
    """Take and keep this process's share of the lines in the background while the block
    runs; on exit (SIGTERM) hand them all over."""
    task = asyncio.create_task(_steer(ownership, cells), name="cluster-lines")
    task.add_done_callback(_ended)
    try:
        yield
    finally:
        task.remove_done_callback(_ended)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await hand_over(ownership, cells)
