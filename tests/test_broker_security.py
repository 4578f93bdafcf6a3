"""Broker security: accounts and ACL generated from lines.yaml, enforced by a real Mosquitto."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import ssl
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from dispatcher.model import Network, RequestId
from line_service.broker.mosquitto_config import (
    DEFAULT_DISPATCHER_USER,
    DEFAULT_OBSERVER_USER,
    FileOwner,
    TlsListener,
    default_owner,
    password_hash,
    write_broker_config,
)
from line_service.network.lines_file import load_network
from stop_devices import translate
from stop_devices.mqtt_link import Received
from tests.support.brokers import MOSQUITTO, accepts_connections, free_port
from tests.support.faults import DeviceClient, SecureBroker
from tests.support.service import LINE, REPO, ServiceProcess, write_lines_file
from tests.support.waiting import wait_until

PREFIX = f"carpool/v1/{LINE}"
VICTIM, ATTACKER = "t-marck-est", "t-calais-est"
CARPOOL_LINE = Path(sys.executable).parent / "carpool-line"


def press_body(request_id: str, destination: str = "dunkerque-est") -> dict[str, Any]:
    return {"v": 1, "request_id": request_id, "destination": destination, "seats": 1}


@pytest.fixture
def network(tmp_path: Path) -> Network:
    return load_network(write_lines_file(tmp_path))


@pytest.fixture
def broker(network: Network, tmp_path: Path) -> Iterator[SecureBroker]:
    secure = SecureBroker(network, tmp_path / "broker")
    secure.start()
    yield secure
    secure.stop()


@pytest.fixture
def service(broker: SecureBroker, tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        broker_url=broker.url(),
        database_url=f"sqlite:///{tmp_path}/carpool.sqlite3",
        lines_file=tmp_path / "lines.yaml",
        directory=tmp_path,
    )
    process.start()
    yield process
    process.stop()


def device(broker: SecureBroker, username: str) -> DeviceClient:
    client = DeviceClient(broker.port, username, broker.password(username))
    assert client.wait_connected(), f"{username} could not log in"
    return client


def test_cli_writes_private_files_and_keeps_passwords_on_a_second_run(tmp_path: Path) -> None:
    out = tmp_path / "mosquitto"
    command = [str(CARPOOL_LINE), "mosquitto-config", "--out", str(out)]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    assert "26 new password(s)" in first.stdout  # 24 devices, the dispatcher, the observer
    assert DEFAULT_DISPATCHER_USER in first.stdout
    assert stat.S_IMODE((out / "credentials.json").stat().st_mode) == 0o600
    owner = default_owner()  # root with a `mosquitto` user: the broker's files are handed over
    for read_by_broker in ("passwords", "acl", "mosquitto.conf"):
        status = (out / read_by_broker).stat()
        if owner is None:
            assert stat.S_IMODE(status.st_mode) == 0o600, read_by_broker
        else:
            assert stat.S_IMODE(status.st_mode) == 0o640, read_by_broker
            assert (status.st_uid, status.st_gid) == (owner.uid, owner.gid), read_by_broker
    for anything in out.iterdir():
        assert not anything.stat().st_mode & stat.S_IRWXO, f"{anything} is world-accessible"
    before = json.loads((out / "credentials.json").read_text())
    second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    assert "0 new password(s)" in second.stdout
    assert json.loads((out / "credentials.json").read_text()) == before
    conf = (out / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf
    assert "use_username_as_clientid true" in conf
    assert "set_tcp_nodelay true" in conf
    assert "max_inflight_messages 20" in conf
    # Clear passwords are in credentials.json only, never in what the broker reads.
    secret = before["accounts"][1]["password"]
    assert secret not in (out / "passwords").read_text() + conf + (out / "acl").read_text()


@pytest.mark.skipif(
    os.geteuid() != 0 or default_owner() is None, reason="needs root and a `mosquitto` user"
)
def test_a_broker_started_as_root_reads_the_files_as_its_own_user(network: Network) -> None:
    # pytest's temporary directories are private to root: the broker's user could not enter.
    directory = Path(tempfile.mkdtemp(prefix="carpool-broker-"))
    try:
        directory.chmod(0o755)
        owner = FileOwner.of("mosquitto")
        port = free_port()
        written = write_broker_config(
            network, directory / "conf", port=port, bind="127.0.0.1", owner=owner
        )
        (directory / "conf").chmod(0o755)
        assert stat.S_IMODE((directory / "conf" / "data").stat().st_mode) == 0o750
        assert (directory / "conf" / "data").stat().st_uid == owner.uid
        log = (directory / "mosquitto.log").open("ab")
        # No `user` line: Mosquitto drops root to `mosquitto`, then reads passwords and ACL.
        process = subprocess.Popen(
            [MOSQUITTO, "-c", str(written.config_file)], stdout=log, stderr=log
        )
        try:
            wait_until(lambda: accepts_connections(port), 10, "mosquitto as its own user")
            client = DeviceClient(port, VICTIM, written.account(VICTIM).password)
            try:
                assert client.wait_connected(), "the password file was not readable"
            finally:
                client.close()
        finally:
            process.terminate()
            process.wait(10)
    finally:
        shutil.rmtree(directory)


def test_a_cluster_of_three_gets_three_dispatcher_accounts_which_keep_their_passwords(
    tmp_path: Path,
) -> None:
    out = tmp_path / "mosquitto"
    command = [str(CARPOOL_LINE), "mosquitto-config", "--out", str(out), "--processes", "3"]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    assert "28 new password(s)" in first.stdout  # 24 devices, 3 dispatchers, the observer
    names = [f"{DEFAULT_DISPATCHER_USER}{suffix}" for suffix in ("", "-2", "-3")]
    accounts = json.loads((out / "credentials.json").read_text())["accounts"]
    roles = {account["username"]: account["role"] for account in accounts}
    assert [roles.get(name) for name in names] == ["dispatcher"] * 3
    acl = (out / "acl").read_text()
    for name in names:  # each may do anything under the tree, as the single dispatcher does
        assert f"user {name}\ntopic readwrite carpool/v1/#" in acl
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    assert "0 new password(s)" in again.stdout
    refused = subprocess.run(
        [*command[:-1], "0"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert refused.returncode == 2


def test_cli_refuses_half_a_tls_listener(tmp_path: Path) -> None:
    command = [str(CARPOOL_LINE), "mosquitto-config", "--out", str(tmp_path), "--tls-port", "8883"]
    answer = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert answer.returncode == 2
    assert "--tls-cert" in answer.stderr


def test_password_hash_is_the_mosquitto_7_format() -> None:
    hashed = password_hash("secret", salt=b"\x00" * 12)
    assert hashed.startswith("$7$101$AAAAAAAAAAAAAAAA$")
    assert len(hashed.split("$")[-1]) == 88  # base64 of a 64-byte SHA-512 digest


def test_wrong_password_and_anonymous_logins_are_refused(broker: SecureBroker) -> None:
    wrong = DeviceClient(broker.port, VICTIM, "not-the-password")
    anonymous = DeviceClient(broker.port, None, None)
    try:
        assert not wrong.wait_connected()
        assert not anonymous.wait_connected()
    finally:
        wrong.close()
        anonymous.close()


def test_a_device_cannot_act_for_another_and_the_service_works_with_auth(
    broker: SecureBroker, service: ServiceProcess
) -> None:
    victim = device(broker, VICTIM)
    attacker = device(broker, ATTACKER)
    watcher = device(broker, DEFAULT_OBSERVER_USER)
    try:
        watcher.subscribe(f"{PREFIX}/#")
        victim.subscribe(f"{PREFIX}/terminals/{VICTIM}/screen")
        attacker.subscribe(f"{PREFIX}/#")  # granted, but the ACL filters what it may read

        victim.publish(f"{PREFIX}/terminals/{VICTIM}/request", press_body("rider-1"))
        wait_until(
            lambda: any(
                s["state"] == "waiting"
                for s in victim.received(f"{PREFIX}/terminals/{VICTIM}/screen")
            ),
            5,
            "the victim's rider waiting",
        )
        lit = [d for d in watcher.received(f"{PREFIX}/signs/pmv-marck-est-1/display") if d["pages"]]
        assert lit, "the rider's stop is lit"

        # The attacker holds valid credentials and tries to act for the victim's stop.
        attacker.publish(f"{PREFIX}/terminals/{VICTIM}/cancel", {"v": 1, "request_id": "rider-1"})
        attacker.publish(f"{PREFIX}/terminals/{VICTIM}/request", press_body("forged"))
        attacker.publish(
            f"{PREFIX}/signs/pmv-marck-est-1/display",
            {
                "v": 1,
                "seq": 10**9,
                "pages": [["COVOITURAGE", "LILLE"]],
                "expires_at": "2099-01-01T00:00:00Z",
            },
        )
        attacker.publish(f"{PREFIX}/terminals/{VICTIM}/status", {"v": 1, "online": False})
        # Barrier: its own press, sent after the forgeries on the same connection, is served.
        attacker.publish(f"{PREFIX}/terminals/{ATTACKER}/request", press_body("own-press"))
        wait_until(
            lambda: any(
                s["request_id"] == "own-press" and s["state"] == "waiting"
                for s in attacker.received(f"{PREFIX}/terminals/{ATTACKER}/screen")
            ),
            5,
            "the attacker's own press served",
        )

        live = httpx.get(f"{service.base_url}/api/v1/lines/{LINE}/live").json()
        assert sorted(r["stop_id"] for r in live["waiting"]) == ["calais-est", "marck-est"]
        assert "forged" not in service.log()
        assert all(
            page != ["COVOITURAGE", "LILLE"]
            for d in watcher.received(f"{PREFIX}/signs/pmv-marck-est-1/display")
            for page in d["pages"]
        )
        assert f"{PREFIX}/terminals/{VICTIM}/cancel" not in watcher.topics()
        assert f"{PREFIX}/terminals/{VICTIM}/status" not in watcher.topics() or all(
            s["online"] for s in watcher.received(f"{PREFIX}/terminals/{VICTIM}/status")
        )
        # It read nothing but its own screen (and the dispatcher's presence is outside the filter).
        assert attacker.topics() == {f"{PREFIX}/terminals/{ATTACKER}/screen"}
    finally:
        for client in (victim, attacker, watcher):
            client.close()


def test_no_account_can_take_the_session_of_another(
    broker: SecureBroker, service: ServiceProcess
) -> None:
    observer = device(broker, DEFAULT_OBSERVER_USER)
    sign_status = f"{PREFIX}/signs/pmv-calais-est-1/status"
    sign = DeviceClient(
        broker.port,
        "pmv-calais-est-1",
        broker.password("pmv-calais-est-1"),
        client_id="pmv-calais-est-1",
        will=(sign_status, b'{"v":1,"online":false}'),
    )
    rider = device(broker, VICTIM)
    intruders: list[DeviceClient] = []
    try:
        assert sign.wait_connected()
        observer.subscribe("carpool/v1/dispatcher/status", f"{PREFIX}/signs/+/status")
        sign.publish(sign_status, {"v": 1, "online": True})
        wait_until(lambda: bool(observer.received("carpool/v1/dispatcher/status")), 5, "presence")

        # A sign's credentials asking for the dispatcher's client id; a terminal's for the sign's.
        for username, client_id in (
            ("pmv-marck-est-1", DEFAULT_DISPATCHER_USER),
            (ATTACKER, "pmv-calais-est-1"),
        ):
            intruder = DeviceClient(
                broker.port, username, broker.password(username), client_id=client_id
            )
            intruders.append(intruder)
            assert intruder.wait_connected()  # in, but under its own name
            intruder.publish(f"{PREFIX}/terminals/{ATTACKER}/status", {"v": 1, "online": True})

        # Barrier: a press served after both intrusions proves the dispatcher is still there.
        rider.subscribe(f"{PREFIX}/terminals/{VICTIM}/screen")
        rider.publish(f"{PREFIX}/terminals/{VICTIM}/request", press_body("after-intrusions"))
        wait_until(
            lambda: any(
                s["request_id"] == "after-intrusions"
                for s in rider.received(f"{PREFIX}/terminals/{VICTIM}/screen")
            ),
            5,
            "a press served after the intrusions",
        )
        assert all(p["online"] for p in observer.received("carpool/v1/dispatcher/status"))
        assert all(p["online"] for p in observer.received(sign_status)), "the sign was kicked"
        assert not sign.disconnected.is_set()
        assert sign.client.is_connected()
        assert service.log().count('"mqtt.connected"') == 1, "the dispatcher had to reconnect"
        live = httpx.get(f"{service.base_url}/api/v1/lines/{LINE}/live").json()
        assert not any("pmv-calais-est-1" in str(alert) for alert in live["alerts"])
    finally:
        for client in (observer, sign, rider, *intruders):
            client.close()


def test_a_sign_reads_only_its_own_display(broker: SecureBroker, service: ServiceProcess) -> None:
    sign = device(broker, "pmv-calais-est-1")
    rider = device(broker, VICTIM)
    try:
        sign.subscribe("carpool/v1/#")
        rider.subscribe(f"{PREFIX}/terminals/{VICTIM}/screen")
        rider.publish(f"{PREFIX}/terminals/{VICTIM}/request", press_body("rider-2"))
        wait_until(lambda: bool(rider.received(f"{PREFIX}/terminals/{VICTIM}/screen")), 5, "screen")
        # The Marck signs were lit (and retained) before this barrier; none reached Calais' sign.
        allowed = {f"{PREFIX}/signs/pmv-calais-est-1/display", "carpool/v1/dispatcher/status"}
        wait_until(lambda: "carpool/v1/dispatcher/status" in sign.topics(), 5, "presence")
        assert sign.topics() <= allowed
    finally:
        sign.close()
        rider.close()


def test_dispatcher_itself_drops_a_payload_on_a_topic_of_another_kind_or_line(
    network: Network,
) -> None:
    ids = lambda: (RequestId("r1"), "1234")  # noqa: E731
    body = json.dumps(press_body("x")).encode()
    cases = {
        f"{PREFIX}/terminals/pmv-marck-est-1/request": translate.DropReason.UNKNOWN_DEVICE,
        f"carpool/v1/other-line/terminals/{VICTIM}/request": translate.DropReason.WRONG_LINE,
        f"{PREFIX}/terminals/t-nowhere/request": translate.DropReason.UNKNOWN_DEVICE,
        f"{PREFIX}/terminals/{VICTIM}/screen": translate.DropReason.NOT_AN_UPLINK,
        f"{PREFIX}/terminals/{VICTIM}/request/extra": translate.DropReason.NOT_OUR_TOPIC,
    }
    for topic, reason in cases.items():
        decoded = translate.decode(network, Received(topic, body, False), ids)
        assert isinstance(decoded, translate.Dropped), topic
        assert decoded.reason is reason, topic


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_listener_accepts_a_device_that_checks_the_certificate(
    network: Network, tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path)
    plain, tls_port = free_port(), free_port()
    written = write_broker_config(
        network,
        tmp_path / "tls",
        port=plain,
        bind="127.0.0.1",
        tls=TlsListener(tls_port, cert, key),
        run_as=getpass.getuser(),
        persistence=False,
    )
    log = (tmp_path / "mosquitto.log").open("ab")
    process = subprocess.Popen([MOSQUITTO, "-c", str(written.config_file)], stdout=log, stderr=log)
    try:
        wait_until(lambda: accepts_connections(tls_port), 10, "TLS listener")
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls-device")
        client.tls_set(ca_certs=str(cert), cert_reqs=ssl.CERT_REQUIRED)
        client.username_pw_set(VICTIM, written.account(VICTIM).password)
        client.connect("127.0.0.1", tls_port)
        client.loop_start()
        try:
            wait_until(client.is_connected, 10, "TLS session")
            info = client.publish(
                f"{PREFIX}/terminals/{VICTIM}/status", b'{"v":1,"online":true}', qos=1
            )
            info.wait_for_publish(10)
            assert info.is_published()
        finally:
            client.loop_stop()
            client.disconnect()
    finally:
        process.terminate()
        process.wait(10)
