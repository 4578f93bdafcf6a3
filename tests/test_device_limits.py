"""The per-device token bucket and its flood episodes, with a manual clock."""

from __future__ import annotations

import pytest

from line_service.dispatch.device_limits import Admission, DeviceLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_rate_and_one_episode_is_reported_per_flood() -> None:
    clock = Clock()
    limiter: DeviceLimiter[str] = DeviceLimiter(rate=5, burst=20, quiet=10, clock=clock)
    outcomes = [limiter.admit("pmv-1") for _ in range(1000)]  # all at one instant
    assert outcomes[:20] == [Admission.ADMITTED] * 20
    assert outcomes[20] is Admission.FLOOD_STARTED
    assert set(outcomes[21:]) == {Admission.DROPPED}
    assert (limiter.dropped, limiter.episodes) == (980, 1)
    # Another device is untouched by the first one's flood.
    assert limiter.admit("t-2") is Admission.ADMITTED
    # One second later: five more tokens.
    clock.now += 1
    assert [limiter.admit("pmv-1") for _ in range(6)].count(Admission.ADMITTED) == 5
    assert limiter.flooding() == ["pmv-1"]
    # Still dropping 9 s later? The episode stays open until 10 s pass without a drop.
    clock.now += 9.9
    assert limiter.close_quiet_episodes() == []
    clock.now += 0.1
    assert limiter.close_quiet_episodes() == ["pmv-1"]
    assert limiter.flooding() == []
    # A new flood is a new episode.
    for _ in range(30):
        limiter.admit("pmv-1")
    assert limiter.episodes == 2


def test_a_device_within_its_rate_never_loses_a_message() -> None:
    clock = Clock()
    limiter: DeviceLimiter[str] = DeviceLimiter(rate=5, burst=20, quiet=10, clock=clock)
    for _ in range(2000):
        clock.now += 0.2
        assert limiter.admit("t-1") is Admission.ADMITTED
    assert limiter.dropped == 0


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        DeviceLimiter(rate=0, burst=1, quiet=1)
