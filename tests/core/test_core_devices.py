"""Device reports: what signs say they show, and devices going offline and back."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dispatcher.effects import (
    Alert,
    AlertKind,
    ClearAlert,
    Page,
    RaiseAlert,
    RejectEvent,
    RejectionReason,
    SaveDevicePresence,
    ShowOnSign,
    SignDisplay,
)
from dispatcher.events import (
    DeviceFloodReported,
    DeviceStatusReported,
    LeaseRefreshDue,
    SignReported,
)
from dispatcher.model import DeviceKind, LineId, Network, SignId
from dispatcher.state import SignReport
from tests.core.core_kit import (
    CALAIS,
    DUNKERQUE,
    HEADING,
    LINE,
    OTHER_LINE,
    PMV_BOULOGNE,
    PMV_CALAIS_1,
    PMV_CALAIS_2,
    PMV_MARCK,
    T0,
    T_BOULOGNE,
    T_CALAIS,
    Core,
    ms,
    press,
)

LEASE = timedelta(seconds=90)
SETTLE = timedelta(seconds=10)  # the line's device_settle (default)
LIT: tuple[Page, ...] = ((HEADING, "DUNKERQUE"),)
SEQ = ms(T0)


def lit_core(network: Network) -> Core:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1", code="4821"), T0)
    assert core.state.signs[PMV_CALAIS_1] == SignDisplay(SEQ, LIT, T0 + LEASE)
    return core


def report(seq: int, pages: tuple[Page, ...], sign: SignId = PMV_CALAIS_1) -> SignReported:
    return SignReported(LINE, sign, seq, pages)


def mismatch(shown: tuple[Page, ...], seq: int, asked_seq: int, at_seconds: int) -> RaiseAlert:
    message = (
        f"shows {list(map(list, shown))} (seq {seq}), "
        f"asked {[list(page) for page in LIT]} (seq {asked_seq})"
    )
    at = T0 + timedelta(seconds=at_seconds)
    return RaiseAlert(
        Alert(AlertKind.SIGN_MISMATCH, LINE, DeviceKind.SIGN, PMV_CALAIS_1, message, at)
    )


# --- SignReported -----------------------------------------------------------------------------


def test_a_matching_report_raises_nothing(network: Network) -> None:
    core = lit_core(network)
    at = T0 + timedelta(seconds=1)
    assert core.run(report(SEQ, LIT), at) == []
    assert core.state.alerts == {}
    assert core.state.sign_reports == {PMV_CALAIS_1: SignReport(SEQ, LIT, at)}


def test_a_mismatch_alerts_once_and_a_later_match_clears_it(network: Network) -> None:
    core = lit_core(network)
    wrong = ((HEADING, "CALAIS"),)

    assert core.run(report(SEQ, wrong), T0 + timedelta(seconds=5)) == [mismatch(wrong, SEQ, SEQ, 5)]
    assert core.run(report(SEQ, wrong), T0 + timedelta(seconds=6)) == []
    assert core.run(report(SEQ, ()), T0 + timedelta(seconds=7)) == []
    assert list(core.state.alerts) == [(AlertKind.SIGN_MISMATCH, PMV_CALAIS_1)]

    assert core.run(report(SEQ, LIT), T0 + timedelta(seconds=8)) == [
        ClearAlert(AlertKind.SIGN_MISMATCH, LINE, PMV_CALAIS_1)
    ]
    assert core.state.alerts == {}
    assert core.run(report(SEQ, LIT), T0 + timedelta(seconds=9)) == []


def test_a_match_of_a_newer_display_clears_the_alert(network: Network) -> None:
    core = lit_core(network)
    core.run(report(SEQ, ()), T0 + timedelta(seconds=5))
    core.run(LeaseRefreshDue(), T0 + timedelta(seconds=30))
    renewed = core.state.signs[PMV_CALAIS_1].seq
    assert core.run(report(renewed, LIT), T0 + timedelta(seconds=31)) == [
        ClearAlert(AlertKind.SIGN_MISMATCH, LINE, PMV_CALAIS_1)
    ]


def test_a_blank_sign_once_its_lease_lapsed_is_no_mismatch(network: Network) -> None:
    core = lit_core(network)
    assert core.run(report(SEQ, ()), T0 + LEASE) == []
    assert core.run(report(SEQ, ()), T0 + LEASE + timedelta(minutes=3)) == []
    assert core.state.alerts == {}
    # Showing something else than asked is a mismatch, lapsed or not.
    wrong = ((HEADING, "MARCK"),)
    assert core.run(report(SEQ, wrong), T0 + timedelta(seconds=95)) == [
        mismatch(wrong, SEQ, SEQ, 95)
    ]


def test_a_blank_sign_within_its_lease_is_a_mismatch(network: Network) -> None:
    core = lit_core(network)
    assert core.run(report(SEQ, ()), T0 + timedelta(seconds=89)) == [mismatch((), SEQ, SEQ, 89)]


def test_a_report_older_than_the_last_display_is_ignored(network: Network) -> None:
    core = lit_core(network)
    core.run(LeaseRefreshDue(), T0 + timedelta(seconds=30))
    assert core.run(report(SEQ, ()), T0 + timedelta(seconds=31)) == []
    assert core.run(report(SEQ - 5, ((HEADING, "X"),)), T0 + timedelta(seconds=31)) == []
    assert core.state.alerts == {}


def test_a_report_newer_than_anything_sent_is_a_mismatch(network: Network) -> None:
    core = lit_core(network)
    shown = ((HEADING, "DUNKERQUE"),)
    effects = core.run(report(SEQ + 1000, shown), T0 + timedelta(seconds=2))
    assert [type(effect) for effect in effects] == [RaiseAlert]


def test_a_report_from_a_sign_never_driven_raises_nothing(network: Network) -> None:
    core = lit_core(network)
    assert core.run(report(7, (), sign=PMV_MARCK), T0) == []


@pytest.mark.parametrize(
    ("line", "sign"),
    [
        (LINE, SignId("pmv-nowhere")),
        (LINE, PMV_BOULOGNE),  # a sign of another line
        (OTHER_LINE, PMV_CALAIS_1),  # the topic names the wrong line
        (LINE, SignId(T_CALAIS)),  # a terminal is no sign
        (LineId("nope"), PMV_CALAIS_1),
    ],
)
def test_a_report_from_an_unknown_sign_is_rejected(
    line: LineId, sign: SignId, network: Network
) -> None:
    core = lit_core(network)
    before = core.state
    assert core.run(SignReported(line, sign, SEQ, LIT), T0) == [
        RejectEvent(RejectionReason.UNKNOWN_DEVICE, sign)
    ]
    assert core.state is before


# --- DeviceStatusReported ---------------------------------------------------------------------


def offline_alert(kind: DeviceKind, device: str, at_seconds: int) -> RaiseAlert:
    at = T0 + timedelta(seconds=at_seconds)
    message = f"{kind.value} {device} is offline"
    return RaiseAlert(Alert(AlertKind.DEVICE_OFFLINE, LINE, kind, device, message, at))


def presence(kind: DeviceKind, device: str, online: bool, at: datetime) -> SaveDevicePresence:
    return SaveDevicePresence(LINE, kind, device, online, at)


def test_a_sign_offline_alerts_once_and_back_online_is_driven_again(network: Network) -> None:
    core = lit_core(network)
    offline = DeviceStatusReported(LINE, DeviceKind.SIGN, PMV_CALAIS_1, online=False)
    online = DeviceStatusReported(LINE, DeviceKind.SIGN, PMV_CALAIS_1, online=True)

    assert core.run(offline, T0 + timedelta(seconds=10)) == [
        presence(DeviceKind.SIGN, PMV_CALAIS_1, False, T0 + timedelta(seconds=10)),
        offline_alert(DeviceKind.SIGN, PMV_CALAIS_1, 10),
    ]
    assert core.run(offline, T0 + timedelta(seconds=11)) == []
    assert list(core.state.alerts) == [(AlertKind.DEVICE_OFFLINE, PMV_CALAIS_1)]

    # Back after ten minutes: the lease sent before has lapsed, so a fresh one is sent.
    back = T0 + timedelta(minutes=10)
    assert core.run(online, back) == [
        presence(DeviceKind.SIGN, PMV_CALAIS_1, True, back),
        ClearAlert(AlertKind.DEVICE_OFFLINE, LINE, PMV_CALAIS_1),
        ShowOnSign(LINE, PMV_CALAIS_1, SignDisplay(ms(back), LIT, back + LEASE)),
    ]
    assert core.state.alerts == {}
    # Its twin sign was untouched, and a repeated "online" (a heartbeat) sends nothing.
    assert core.state.signs[PMV_CALAIS_2].seq == SEQ
    assert core.run(online, back + timedelta(seconds=30)) == []


def test_a_sign_back_online_never_gets_a_lease_past_the_deadline(network: Network) -> None:
    core = lit_core(network)
    core.run(DeviceStatusReported(LINE, DeviceKind.SIGN, PMV_CALAIS_1, online=False), T0)
    back = T0 + timedelta(minutes=29, seconds=30)
    effects = core.run(DeviceStatusReported(LINE, DeviceKind.SIGN, PMV_CALAIS_1, True), back)
    assert effects[-1] == ShowOnSign(
        LINE, PMV_CALAIS_1, SignDisplay(ms(back), LIT, T0 + timedelta(minutes=30))
    )


def test_a_blank_sign_back_online_is_sent_blank(network: Network) -> None:
    core = Core(network)
    core.restart([], T0)
    core.run(DeviceStatusReported(LINE, DeviceKind.SIGN, PMV_MARCK, online=False), T0)
    at = T0 + timedelta(minutes=1)
    effects = core.run(DeviceStatusReported(LINE, DeviceKind.SIGN, PMV_MARCK, online=True), at)
    assert effects == [
        presence(DeviceKind.SIGN, PMV_MARCK, True, at),
        ClearAlert(AlertKind.DEVICE_OFFLINE, LINE, PMV_MARCK),
        ShowOnSign(LINE, PMV_MARCK, SignDisplay(ms(at), (), at + LEASE)),
    ]


def test_a_sign_first_heard_online_is_not_re_sent_what_it_was_just_sent(
    network: Network,
) -> None:
    # The connection's resync published its display, retained: the sign has it on subscribing.
    # After a restart every device's retained status arrives at once; re-sending would double
    # the re-assertion.
    core = lit_core(network)
    at = T0 + timedelta(seconds=3)
    # Only its presence is stored: nothing is sent to it.
    assert core.run(DeviceStatusReported(LINE, DeviceKind.SIGN, PMV_CALAIS_2, True), at) == [
        presence(DeviceKind.SIGN, PMV_CALAIS_2, True, at)
    ]
    assert core.run(DeviceStatusReported(LINE, DeviceKind.SIGN, PMV_MARCK, True), at) == [
        presence(DeviceKind.SIGN, PMV_MARCK, True, at)
    ]
    # Once heard offline, its return is a return: told its display again. (Offline for the
    # line's settle time at least: a shorter blip is a flap, tested below.)
    core.run(DeviceStatusReported(LINE, DeviceKind.SIGN, PMV_CALAIS_2, False), at)
    back = at + SETTLE
    effects = core.run(DeviceStatusReported(LINE, DeviceKind.SIGN, PMV_CALAIS_2, True), back)
    assert effects[-1] == ShowOnSign(LINE, PMV_CALAIS_2, SignDisplay(ms(back), LIT, back + LEASE))


def test_a_terminal_offline_alerts_and_back_online_clears(network: Network) -> None:
    core = lit_core(network)
    offline = DeviceStatusReported(LINE, DeviceKind.TERMINAL, T_CALAIS, online=False)
    assert core.run(offline, T0 + timedelta(seconds=4)) == [
        presence(DeviceKind.TERMINAL, T_CALAIS, False, T0 + timedelta(seconds=4)),
        offline_alert(DeviceKind.TERMINAL, T_CALAIS, 4),
    ]
    assert core.run(offline, T0 + timedelta(seconds=5)) == []
    online = DeviceStatusReported(LINE, DeviceKind.TERMINAL, T_CALAIS, online=True)
    # Back after the settle time (10 s offline): the alert clears at once.
    back = T0 + timedelta(seconds=4) + SETTLE
    assert core.run(online, back) == [
        presence(DeviceKind.TERMINAL, T_CALAIS, True, back),
        ClearAlert(AlertKind.DEVICE_OFFLINE, LINE, T_CALAIS),
    ]
    assert core.run(online, back + timedelta(seconds=1)) == []


@pytest.mark.parametrize(
    ("line", "kind", "device"),
    [
        (LINE, DeviceKind.SIGN, "pmv-nowhere"),
        (LINE, DeviceKind.TERMINAL, "t-nowhere"),
        (LINE, DeviceKind.SIGN, PMV_BOULOGNE),  # a device of another line
        (LINE, DeviceKind.TERMINAL, T_BOULOGNE),
        (OTHER_LINE, DeviceKind.SIGN, PMV_CALAIS_1),
        (LINE, DeviceKind.TERMINAL, PMV_CALAIS_1),  # a sign reported as a terminal
        (LINE, DeviceKind.SIGN, T_CALAIS),
    ],
)
@pytest.mark.parametrize("online", [True, False])
def test_status_of_an_unknown_device_is_rejected(
    line: LineId, kind: DeviceKind, device: str, online: bool, network: Network
) -> None:
    core = lit_core(network)
    before = core.state
    assert core.run(DeviceStatusReported(line, kind, device, online), T0) == [
        RejectEvent(RejectionReason.UNKNOWN_DEVICE, device)
    ]
    assert core.state is before


def test_a_flapping_sign_raises_one_alert_per_episode_and_gets_no_display_per_flap(
    network: Network,
) -> None:
    core = lit_core(network)
    offline = DeviceStatusReported(LINE, DeviceKind.SIGN, PMV_CALAIS_1, online=False)
    online = DeviceStatusReported(LINE, DeviceKind.SIGN, PMV_CALAIS_1, online=True)
    effects = []
    at = T0 + timedelta(seconds=10)
    for flap in range(50):  # 50 offline/online cycles, 100 ms apart
        effects += core.run(offline, at + timedelta(milliseconds=200 * flap))
        effects += core.run(online, at + timedelta(milliseconds=200 * flap + 100))
    assert [e for e in effects if isinstance(e, RaiseAlert)] == [
        offline_alert(DeviceKind.SIGN, PMV_CALAIS_1, 10)
    ]
    assert not [e for e in effects if isinstance(e, ClearAlert | ShowOnSign)]
    assert all(isinstance(e, SaveDevicePresence | RaiseAlert) for e in effects)
    last_back = at + timedelta(milliseconds=200 * 49 + 100)

    # A refresh before it stayed online for the settle time keeps the alert on.
    early = core.run(LeaseRefreshDue(), last_back + SETTLE - timedelta(seconds=1))
    assert not [e for e in early if isinstance(e, ClearAlert)]
    # The first refresh after it: one clear, and the lease refresh is the sign's one re-send.
    settled_at = last_back + SETTLE
    settled = core.run(LeaseRefreshDue(), settled_at)
    assert settled[0] == ClearAlert(AlertKind.DEVICE_OFFLINE, LINE, PMV_CALAIS_1)
    assert ShowOnSign(LINE, PMV_CALAIS_1, SignDisplay(ms(settled_at), LIT, T0 + LEASE)) not in (
        settled
    )
    assert [e.sign_id for e in settled if isinstance(e, ShowOnSign)].count(PMV_CALAIS_1) == 1
    assert core.state.alerts == {}
    assert core.state.settling == {}


def test_a_blip_shorter_than_the_settle_time_clears_at_the_next_refresh(
    network: Network,
) -> None:
    core = lit_core(network)
    core.run(DeviceStatusReported(LINE, DeviceKind.TERMINAL, T_CALAIS, False), T0)
    back = T0 + timedelta(seconds=2)
    assert core.run(DeviceStatusReported(LINE, DeviceKind.TERMINAL, T_CALAIS, True), back) == [
        presence(DeviceKind.TERMINAL, T_CALAIS, True, back)
    ]
    # Offline again while settling: the same episode, no second alert.
    again = back + timedelta(seconds=5)
    assert core.run(DeviceStatusReported(LINE, DeviceKind.TERMINAL, T_CALAIS, False), again) == [
        presence(DeviceKind.TERMINAL, T_CALAIS, False, again)
    ]
    assert core.state.settling == {}
    # A long outage ending an episode that flapped still waits for the settle time.
    final = again + timedelta(minutes=5)
    core.run(DeviceStatusReported(LINE, DeviceKind.TERMINAL, T_CALAIS, True), final)
    assert (AlertKind.DEVICE_OFFLINE, T_CALAIS) in core.state.alerts
    assert core.run(LeaseRefreshDue(), final + SETTLE)[0] == ClearAlert(
        AlertKind.DEVICE_OFFLINE, LINE, T_CALAIS
    )


def test_a_flood_episode_raises_once_and_clears_once(network: Network) -> None:
    core = lit_core(network)
    flooding = DeviceFloodReported(LINE, DeviceKind.TERMINAL, T_CALAIS, flooding=True)
    calm = DeviceFloodReported(LINE, DeviceKind.TERMINAL, T_CALAIS, flooding=False)
    message = f"terminal {T_CALAIS} sends too fast: messages dropped"
    assert core.run(flooding, T0) == [
        RaiseAlert(
            Alert(AlertKind.DEVICE_FLOODING, LINE, DeviceKind.TERMINAL, T_CALAIS, message, T0)
        )
    ]
    assert core.run(flooding, T0 + timedelta(seconds=1)) == []
    assert core.run(calm, T0 + timedelta(seconds=20)) == [
        ClearAlert(AlertKind.DEVICE_FLOODING, LINE, T_CALAIS)
    ]
    assert core.run(calm, T0 + timedelta(seconds=21)) == []
    unknown = DeviceFloodReported(LINE, DeviceKind.SIGN, T_CALAIS, flooding=True)
    assert core.run(unknown, T0) == [RejectEvent(RejectionReason.UNKNOWN_DEVICE, T_CALAIS)]
