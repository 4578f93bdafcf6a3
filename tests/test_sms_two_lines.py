"""A driver's SMS names a code and no line: with two lines, it must reach the rider it names.

One Twilio number serves every line, so codes are handed out unique over the network; data
restored from before that rule never lets an SMS guess between two riders.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from dispatcher.events import RideRequested
from dispatcher.model import LineId, RequestId, StopId
from dispatcher.request_machine import Channel, RequestState, RideRequest, Source
from line_service.runtime import Runtime, build_runtime, running
from line_service.settings import Settings
from line_service.storage.store import Store
from sms_gateway import replies
from tests.support.brokers import Mosquitto
from tests.support.requests import waiting_request
from tests.support.service import REPO

SALT = "pepper"
RIDER_A = "+33612345601"
RIDER_B = "+33612345602"
DRIVER = "+33698765432"
LINE_A = LineId("calais-dunkerque")
LINE_B = LineId("b-calais-dunkerque")


def _second_line(line: dict[str, Any]) -> dict[str, Any]:
    """The shipped line again under other ids and stop codes (a second line of the network)."""
    twin = copy.deepcopy(line)
    codes = (f"Q{a}{b}" for a, b in itertools.product("ABCDEFGH", repeat=2))

    def rename(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("id", "terminal"):
                if isinstance(node.get(key), str):
                    node[key] = "b-" + node[key]
            if "code" in node:
                node["code"] = next(codes)
            node.pop("bnlc_id", None)
            for value in node.values():
                rename(value)
        elif isinstance(node, list):
            for item in node:
                rename(item)

    rename(twin)
    twin["name"] = "Calais ⇄ Dunkerque (bis)"
    return twin


def two_lines_file(directory: Path) -> Path:
    data = yaml.safe_load((REPO / "config" / "lines.yaml").read_text())
    [line] = data["lines"]
    line.pop("service_hours", None)
    data["lines"] = [line, _second_line(line)]
    path = directory / "lines.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.fixture
def settings(mosquitto: Mosquitto, database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        lines_file=two_lines_file(tmp_path),
        database_url=database_url,
        mqtt_url=mosquitto.url,
        mqtt_client_id=f"two-lines-{uuid.uuid4().hex[:8]}",
        phone_hash_salt=SecretStr(SALT),
    )


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    async with running(build_runtime(settings)) as live:
        yield live


async def ask(runtime: Runtime, line_id: LineId, stop: str, phone: str) -> RideRequest:
    """A rider of `line_id` waiting at `stop` for Dunkerque, offered the code 4821."""
    source = Source(Channel.SMS, "SM" + uuid.uuid4().hex)
    prefix = "b-" if line_id == LINE_B else ""
    await runtime.engine.submit(
        RideRequested(
            request_id=RequestId(uuid.uuid4().hex),
            line_id=line_id,
            stop_id=StopId(prefix + stop),
            destination_id=StopId(prefix + "dunkerque-est"),
            seats=1,
            source=source,
            code_candidate="4821",
            phone=phone,
        )
    )
    request = runtime.engine.state.request_by_source(source)
    assert request is not None
    assert request.state is RequestState.WAITING
    return request


async def text(runtime: Runtime, body: str, sender: str) -> str | None:
    assert runtime.sms is not None
    return await runtime.sms.handle("SM" + uuid.uuid4().hex, sender, body)


async def test_a_driver_code_by_sms_validates_the_rider_of_its_own_line(runtime: Runtime) -> None:
    on_a = await ask(runtime, LINE_A, "calais-est", RIDER_A)
    on_b = await ask(runtime, LINE_B, "calais-est", RIDER_B)
    assert on_a.code != on_b.code, "one SMS number for both lines: codes must not repeat"

    assert await text(runtime, str(on_b.code), DRIVER) == replies.CODE_VALIDATED
    state = runtime.engine.state
    assert state.requests[on_b.id].state is RequestState.PICKED_UP
    assert state.requests[on_a.id].state is RequestState.WAITING


async def test_a_code_held_on_two_lines_validates_nobody(settings: Settings) -> None:
    # Requests stored before codes were unique over the network can share one.
    now = datetime.now(UTC)
    on_a = replace(waiting_request("r-line-a", now, phone=RIDER_A), code="4821")
    on_b = replace(
        waiting_request("r-line-b", now, phone=RIDER_B),
        line_id=LINE_B,
        stop_id=StopId("b-marck-est"),
        destination_id=StopId("b-dunkerque-est"),
        source=Source(Channel.SMS, "SMr-line-b"),
        code="4821",
    )
    seeded = Store(settings.database_url)
    seeded.create_schema()
    seeded.save([(on_a, None), (on_b, None)])
    seeded.dispose()

    async with running(build_runtime(settings)) as runtime:
        assert await text(runtime, "4821", DRIVER) == replies.CODE_AMBIGUOUS
        state = runtime.engine.state
        assert state.requests[on_a.id].state is RequestState.WAITING
        assert state.requests[on_b.id].state is RequestState.WAITING
