"""Fault injection around a restart: what a terminal said just before the service died."""

from __future__ import annotations

import asyncio

from tests.support.faults import assert_safe, eventually, watching
from tests.test_faults import LEASE_SECONDS, Rig, rig

__all__ = ["rig"]


async def test_a_cancel_sent_while_the_service_restarts_darkens_the_signs(rig: Rig) -> None:
    terminal = rig.fleet.terminals["t-marck-est"]
    async with watching(rig.network, rig.broker.address()) as monitor:
        first = terminal.press("dunkerque-est")
        await eventually(lambda: terminal.outcomes.get(first) == "waiting", 10, "first press")
        again = terminal.press("dunkerque-est")  # the rider presses once more
        await eventually(lambda: terminal.outcomes.get(again) == "waiting", 10, "second press")
        code = terminal.codes[again]
        assert code == terminal.codes[first]

        await asyncio.to_thread(rig.service.kill)
        terminal.cancel(again)  # the rider gives up while the service is down
        await asyncio.to_thread(rig.service.start)

        await eventually(
            lambda: rig.stored().get(("t-marck-est", code)) == "cancelled",
            LEASE_SECONDS * 2,
            "the cancel applied after the restart",
        )
        assert_safe(monitor.ledger.report())
