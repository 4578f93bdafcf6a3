""" "J'arrive" by SMS through the real app: announced, then at the stop (ICI) or lapsed."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from dispatcher.events import DeadlineReached
from dispatcher.request_machine import Cause, RequestState
from line_service.network.lines_file import load_network
from line_service.runtime import Runtime
from sms_gateway import commands, replies
from sms_gateway.replies import segments
from tests.support.app import console_sender as console
from tests.support.mqtt_probe import MqttProbe
from tests.support.service import LINE, REPO
from tests.support.sms_webhook import Sms
from tests.support.waiting import wait_until
from tests.test_sms_webhook import RIDER, runtime, sms  # noqa: F401

NETWORK = load_network(REPO / "config" / "lines.yaml")


@pytest.mark.parametrize(
    ("body", "minutes"),
    [
        ("CAL DUNKERQUE", None),  # §5 unchanged: a ride now
        ("cal dunkerque svp", None),
        ("CAL DUNKERQUE 10", 10),
        ("cal dunkerke 10 min", 10),
        ("EN ROUTE CAL DUNKERQUE", commands.DEFAULT_COMING_MINUTES),
        ("en route cal dunkerque 5", 5),
        ("J'arrive cal dunkerque", commands.DEFAULT_COMING_MINUTES),
        ("cal dunkerque 90", commands.MAX_COMING_MINUTES),
    ],
)
def test_the_grammar_extends_a_ride_with_minutes(body: str, minutes: int | None) -> None:
    parsed = commands.parse(body, NETWORK)
    assert isinstance(parsed, commands.AskRide)
    assert (parsed.stop_id, parsed.destination_id) == ("calais-est", "dunkerque-est")
    assert parsed.coming_in_minutes == minutes


def test_ici_is_arrival_and_never_a_stop() -> None:
    assert commands.parse("ici", NETWORK) == commands.Here()
    assert commands.parse("Là", NETWORK) == commands.Here()
    assert isinstance(commands.parse("cal 10", NETWORK), commands.NeedDestination)


async def test_announced_then_here_then_the_wait_starts(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
) -> None:
    text = await sms.reply("CAL DUNKERQUE 10")
    [announced] = runtime.engine.state.announced()
    assert announced.state is RequestState.ANNOUNCED
    assert announced.phone == RIDER
    assert "dans 10 min" in text
    assert f"Code {announced.code}" in text
    assert segments(text) == 1, text
    assert runtime.engine.state.waiting() == ()
    here = await sms.reply("ICI")
    [waiting] = runtime.engine.state.waiting()
    assert waiting.id == announced.id
    assert f"Donnez le code {announced.code}" in here
    assert segments(here) == 1, here
    stored = runtime.store.request(announced.id)
    assert stored is not None
    assert stored.state is RequestState.WAITING
    assert await sms.reply("ici") == replies.arrived(runtime.network, waiting)  # no change


async def test_a_rider_who_never_comes_lapses_and_is_told(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
) -> None:
    await sms.reply("EN ROUTE CAL DUNKERQUE")
    [announced] = runtime.engine.state.announced()
    await runtime.engine.submit(DeadlineReached(announced.id))
    lapsed = runtime.engine.state.requests[announced.id]
    assert (lapsed.state, lapsed.cause) == (RequestState.EXPIRED, Cause.ANNOUNCEMENT_LAPSED)
    [told] = [m.body for m in console(runtime).sent if m.to == RIDER]
    assert "annonce close" in told
    assert segments(told) == 1, told
    assert await sms.reply("ICI") == replies.HERE_NOTHING


async def test_annuler_ends_an_announcement_too(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
) -> None:
    await sms.reply("cal dunkerque 20")
    assert await sms.reply("ANNULER") == replies.CANCELLED
    assert runtime.engine.state.announced() == ()


async def test_an_announcement_is_read_back_at_any_age_after_a_restart(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
) -> None:
    await sms.reply("cal dunkerque 10")
    [announced] = runtime.engine.state.announced()
    # Hours later, beyond the window of finished requests: still restored (its deadline fires).
    later = runtime.clock() + timedelta(hours=5)
    restored = runtime.store.live_requests(later, timedelta(hours=2))
    assert [(r.id, r.state) for r in restored] == [(announced.id, RequestState.ANNOUNCED)]
    assert restored[0].phone == RIDER  # kept to text them and to match their ICI


async def test_the_signs_tell_drivers_and_the_terminal_is_left_alone(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
    probe: MqttProbe,
) -> None:
    prefix = f"carpool/v1/{LINE}"
    await sms.reply("CAL DUNKERQUE 10")
    coming = ["COVOITURAGE", "DUNKERQUE", "DANS 10 MIN"]

    def shows(pages: list[list[str]]) -> bool:
        shown = probe.last(f"{prefix}/signs/pmv-calais-est-1/display")
        return shown is not None and shown["pages"] == pages

    await asyncio.to_thread(wait_until, lambda: shows([coming]), 10, "the sign says who comes")
    screen = probe.last(f"{prefix}/terminals/t-calais-est/screen")
    assert screen is None or screen["state"] == "idle"
    [announced] = runtime.engine.state.announced()
    await runtime.engine.submit(DeadlineReached(announced.id))  # the rider never came
    await asyncio.to_thread(wait_until, lambda: shows([]), 10, "the sign dark at the lapse")
