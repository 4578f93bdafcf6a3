"""Fuzzing: random topics and payloads published to the running service through a real broker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.brokers import Mosquitto, free_port
from tests.support.faults import SCALE
from tests.support.mqtt_probe import MqttProbe
from tests.support.service import LINE, ServiceProcess, write_lines_file

PREFIX = f"carpool/v1/{LINE}"
CRASH_SIGNS = ("engine.step_failed", "mqtt.handler_failed", "Traceback", "writer.follow_up_failed")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, MqttProbe]]:
    directory = tmp_path_factory.mktemp("fuzz")
    broker = Mosquitto(free_port(), directory)
    broker.start()
    service = ServiceProcess(
        broker_url=broker.url,
        database_url=f"sqlite:///{directory}/carpool.sqlite3",
        lines_file=write_lines_file(directory, max_waiting_per_stop=100),
        directory=directory,
    )
    service.start()
    probe = MqttProbe(broker.port, (f"{PREFIX}/terminals/+/screen",))
    yield service, probe
    probe.close()
    service.stop()
    broker.stop()


SEGMENT = st.text(
    alphabet=st.characters(
        exclude_characters="+#/\x00", exclude_categories=["Cc", "Cs", "Cn", "Co"]
    ),
    max_size=20,
)
TOPICS = st.one_of(
    st.sampled_from(
        [
            f"{PREFIX}/terminals/t-marck-est/request",
            f"{PREFIX}/terminals/t-calais-est/cancel",
            f"{PREFIX}/terminals/t-marck-est/status",
            f"{PREFIX}/signs/pmv-marck-est-1/state",
            f"{PREFIX}/signs/pmv-calais-est-1/status",
        ]
    ),
    st.lists(SEGMENT, min_size=1, max_size=7).map(lambda parts: "carpool/v1/" + "/".join(parts)),
    st.builds(
        "{}/{}/{}/{}".format,
        st.just(PREFIX),
        st.sampled_from(["terminals", "signs", "x"]),
        SEGMENT,
        st.sampled_from(["request", "cancel", "status", "state", "display", "screen"]),
    ),
).filter(lambda topic: 0 < len(topic.encode()) < 65535)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
NEAR_VALID = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, 2, 0, "1", None, 1.0, True]),
        "request_id": st.one_of(st.text(max_size=70), st.integers(), st.just("fuzz-ok")),
        "destination": st.one_of(
            st.sampled_from(["dunkerque-est", "calais-est", "marck-est", "nowhere", ""]),
            st.text(max_size=70),
        ),
    },
    optional={
        "seats": st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=5), st.none()),
        "pressed_at": st.one_of(st.text(max_size=40), st.datetimes().map(str), st.integers()),
        "reason": st.one_of(st.sampled_from(["cancelled", "departed"]), st.text(max_size=10)),
        "online": st.one_of(st.booleans(), st.text(max_size=5), st.integers()),
        "seq": st.integers(-(2**70), 2**70),
        "pages": JSON,
    },
)
PAYLOADS = st.one_of(
    st.binary(max_size=6000),
    JSON.map(lambda value: json.dumps(value).encode()),
    NEAR_VALID.map(lambda value: json.dumps(value).encode()),
)


def _press(probe: MqttProbe, request_id: str) -> dict[str, Any]:
    probe.publish(
        f"{PREFIX}/terminals/t-gravelines-est/request",
        {"v": 1, "request_id": request_id, "destination": "dunkerque-est", "seats": 1},
    )
    return probe.wait_last(
        f"{PREFIX}/terminals/t-gravelines-est/screen",
        lambda screen: screen["request_id"] == request_id,
        timeout=10,
    )


def test_random_topics_and_payloads_never_crash_the_service_and_valid_requests_still_work(
    served: tuple[ServiceProcess, MqttProbe],
) -> None:
    service, probe = served
    published = 0

    @settings(
        max_examples=300 * SCALE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(topic=TOPICS, payload=PAYLOADS)
    def publish_anything(topic: str, payload: bytes) -> None:
        nonlocal published
        probe.publish(topic, payload)
        published += 1
        assert service.process is not None
        assert service.process.poll() is None, f"service died: {service.log()[-3000:]}"

    publish_anything()
    # Served in order after everything above: a valid press still lights its stop.
    screen = _press(probe, f"after-{published}")
    assert screen["state"] == "waiting"
    assert httpx.get(f"{service.base_url}/readyz").status_code == 200
    log = service.log()
    assert not [sign for sign in CRASH_SIGNS if sign in log], log[-3000:]
    assert '"mqtt.dropped"' in log  # the garbage was seen, and dropped with a reason
    print(f"\nFIGURE mqtt fuzz: {published} random messages, 0 crashes, valid press served")
