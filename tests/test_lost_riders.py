"""A lines file that drops what waiting riders need: listed by `check-config --database`,
refused at `serve` start (a rider at a dropped stop would wait forever, unseen)."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import yaml

from dispatcher.request_machine import Cause, RequestState
from line_service.network.lines_file import load_network
from line_service.network.orphans import Orphans, orphans
from line_service.storage.store import Store
from tests.support.brokers import Mosquitto
from tests.support.requests import ride_request
from tests.support.service import CARPOOL_LINE, LINE, REPO, ServiceProcess, write_lines_file
from tests.support.waiting import wait_until

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DROPPED = "gravelines-est"


def without_stop(path: Path, stop_id: str) -> Path:
    """The same lines file, one stop (and everything naming it) left out."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for line in data["lines"]:
        for direction in line["directions"]:
            direction["stops"] = [stop for stop in direction["stops"] if stop["id"] != stop_id]
    cut = path.with_name("cut.yaml")
    cut.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return cut


def store_riders(
    url: str, *requests: tuple[str, str, RequestState], phone: str | None = None, at: datetime = NOW
) -> None:
    store = Store(url)
    store.create_schema()
    store.save(
        (ride_request(request_id, at, stop=stop, state=state, phone=phone), None)
        for request_id, stop, state in requests
    )
    store.dispose()


def told(service: ServiceProcess, request_id: str) -> bool:
    """Whether the console SMS provider sent this request's rider the operator's cancel."""
    for line in service.log().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:  # a line being written, or not JSON
            continue
        if (
            isinstance(entry, dict)
            and entry.get("event") == "sms.console"
            and entry.get("ref") == request_id
            and "annulée par l'exploitant" in str(entry.get("body"))
        ):
            return True
    return False


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CARPOOL_LINE), *args], capture_output=True, text=True, timeout=60, cwd=REPO
    )


def test_orphans_names_each_lost_place_with_its_waiting_riders(tmp_path: Path) -> None:
    full = write_lines_file(tmp_path)
    cut = load_network(without_stop(full, DROPPED))
    requests = [
        ride_request("a", NOW, stop=DROPPED),
        ride_request("b", NOW, stop=DROPPED),
        ride_request("c", NOW, stop=DROPPED, state=RequestState.CANCELLED),  # over: no matter
        ride_request("d", NOW, stop="marck-est", destination=DROPPED),
        ride_request("e", NOW, line="gone-line"),
        ride_request("f", NOW, stop="marck-est", terminal="t-old"),
        ride_request("g", NOW, stop="marck-est"),  # fine
    ]
    assert orphans(cut, requests) == [
        Orphans(kind="stop", line_id=LINE, name=DROPPED, waiting=2),
        Orphans(kind="destination", line_id=LINE, name=DROPPED, waiting=1),
        Orphans(kind="line", line_id="gone-line", name="gone-line", waiting=1),
        Orphans(kind="terminal", line_id=LINE, name="t-old", waiting=1),
    ]
    assert str(orphans(cut, requests)[0]) == (
        f"stop {DROPPED} of line {LINE} is gone from the lines file but 2 waiting riders there"
    )
    assert orphans(load_network(full), requests[:4] + requests[5:]) == [
        Orphans(kind="terminal", line_id=LINE, name="t-old", waiting=1)
    ]


def test_check_config_against_the_database_lists_what_the_file_lost(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/carpool.sqlite3"
    store_riders(url, ("a", DROPPED, RequestState.WAITING), ("b", DROPPED, RequestState.WAITING))
    full = write_lines_file(tmp_path)
    cut = without_stop(full, DROPPED)
    assert run("check-config", str(cut)).returncode == 0  # alone, the file is fine
    result = run("check-config", str(cut), "--database", url)
    assert result.returncode == 1
    assert f"stop {DROPPED} of line {LINE}" in result.stderr
    assert "2 waiting riders" in result.stderr
    fine = run("check-config", str(full), "--database", url)
    assert fine.returncode == 0, fine.stderr
    assert "2 waiting rider(s) in the database" in fine.stdout
    broken = run("check-config", str(full), "--database", "postgresql+psycopg://x@127.0.0.1:1/x")
    assert broken.returncode == 2
    assert "cannot read the database" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_serve_refuses_a_lines_file_that_dropped_a_stop_where_riders_wait(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/carpool.sqlite3"
    store_riders(
        url, ("a", DROPPED, RequestState.WAITING), ("b", "marck-est", RequestState.WAITING)
    )
    service = ServiceProcess(
        broker_url="mqtt://127.0.0.1:1",  # never reached: the service stops before
        database_url=url,
        lines_file=without_stop(write_lines_file(tmp_path), DROPPED),
        directory=tmp_path,
    )
    service.start(wait_ready=False)
    process = service.process
    assert process is not None
    wait_until(lambda: process.poll() is not None, 30, "serve exits")
    assert process.returncode == 2
    log = service.log()
    assert f"stop {DROPPED} of line {LINE} is gone from the lines file but 1 waiting rider" in log
    assert "refusing to start" in log
    assert "Traceback" not in log


def test_serve_end_orphans_cancels_them_as_the_operator_and_tells_them(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/carpool.sqlite3"
    store_riders(
        url,
        ("lost", DROPPED, RequestState.WAITING),
        ("kept", "marck-est", RequestState.WAITING),
        phone="+33612345678",
        at=datetime.now(UTC),
    )
    service = ServiceProcess(
        broker_url=mosquitto.url,
        database_url=url,
        lines_file=without_stop(write_lines_file(tmp_path), DROPPED),
        directory=tmp_path,
        serve_args=("--end-orphans",),
    )
    service.start()
    try:
        store = Store(url)
        lost, kept = store.request("lost"), store.request("kept")
        assert lost is not None
        assert (lost.state, lost.cause) == (RequestState.CANCELLED, Cause.OPERATOR_CANCELLED)
        assert [event.to_state for event in store.history("lost")][-1] == "cancelled"
        assert kept is not None
        assert kept.state is RequestState.WAITING
        store.dispose()
        wait_until(lambda: told(service, "lost"), 10, "the rider told")
        assert not told(service, "kept")
        assert '"service.lost_riders_ended"' in service.log()
    finally:
        service.stop()
