"""Adapter: Mosquitto configuration from lines.yaml — one account per device, locked to its topics.

Writes into one directory:
- `mosquitto.conf`: no anonymous access, the client id forced to the username (no account can
  take over another's session), password and ACL files, TCP_NODELAY, bounded in-flight and
  queued messages per client, persistence, a plain listener and an optional TLS listener;
- `passwords`: one line per account in Mosquitto's `$7$` format (PBKDF2-SHA512, what
  `mosquitto_passwd` writes);
- `acl`: a terminal may write only its own request, cancel and status and read only its own
  screen; a sign may write only its own state and status and read only its display; every
  device may read the dispatcher's presence; the dispatcher's account may do anything under
  `carpool/v1/#`; the observer's account may read everything and write nothing;
- `credentials.json`: the clear passwords, for provisioning the devices, mode 0600.

What the broker reads (`mosquitto.conf`, `passwords`, `acl`) is mode 0640 and, when an owner is
given (or we run as root and a `mosquitto` user exists), owned by the broker's user and group:
Mosquitto drops root privileges to that user before reading them. Nothing is world-readable.

Re-running keeps the passwords of accounts that already exist in `credentials.json` (devices in
the field keep working) and creates passwords only for new devices.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pwd
import secrets
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from dispatcher.model import DeviceKind, Network
from stop_devices import topics

CONFIG_FILE = "mosquitto.conf"
PASSWORD_FILE = "passwords"
ACL_FILE = "acl"
CREDENTIALS_FILE = "credentials.json"
DISPATCHER_ROLE = "dispatcher"
OBSERVER_ROLE = "observer"
DEFAULT_DISPATCHER_USER = "carpool-dispatcher"
"""Equal to the service's default `CARPOOL_MQTT_CLIENT_ID`: the broker uses it as client id."""
DEFAULT_OBSERVER_USER = "carpool-observer"
BROKER_USER = "mosquitto"
"""The user Debian's Mosquitto drops root privileges to."""

MAX_INFLIGHT_MESSAGES = 20
"""Outgoing QoS 1 messages in flight per client (Mosquitto's default, written down)."""
MAX_QUEUED_MESSAGES = 10000
"""Queued per client beyond those in flight: a restart re-asserts one display per sign and one
screen per terminal to the dispatcher's subscribers at once; a device's queue holds its own
downlink only, so one client's backlog is bounded and never grows into another's."""

PBKDF2_ITERATIONS = 101
"""Mosquitto's default. Passwords here are 128-bit random tokens: a brute force is out of reach
whatever the count, and a low count keeps thousands of reconnections after a restart cheap."""

_UPLINKS = {
    DeviceKind.TERMINAL: (topics.Suffix.REQUEST, topics.Suffix.CANCEL, topics.Suffix.STATUS),
    DeviceKind.SIGN: (topics.Suffix.STATE, topics.Suffix.STATUS),
}
_DOWNLINK = {DeviceKind.TERMINAL: topics.Suffix.SCREEN, DeviceKind.SIGN: topics.Suffix.DISPLAY}


@dataclass(frozen=True, slots=True)
class FileOwner:
    """Who owns what the broker reads: its user and group ids."""

    uid: int
    gid: int

    @classmethod
    def of(cls, username: str) -> FileOwner:
        """The user `username` and its primary group (BrokerConfigError if no such user)."""
        try:
            entry = pwd.getpwnam(username)
        except KeyError as exc:
            raise BrokerConfigError(f"no user {username!r} to own the broker files") from exc
        return cls(entry.pw_uid, entry.pw_gid)


def default_owner() -> FileOwner | None:
    """The `mosquitto` user when we run as root and it exists; else None (files stay ours)."""
    if os.geteuid() != 0:
        return None
    try:
        return FileOwner.of(BROKER_USER)
    except BrokerConfigError:
        return None


class BrokerConfigError(ValueError):
    """The line file cannot be turned into broker accounts (e.g. two devices, one name)."""


@dataclass(frozen=True, slots=True)
class Account:
    """One broker login: the dispatcher's, or a device's."""

    username: str
    password: str
    role: str
    """`dispatcher`, `observer`, `terminal` or `sign`."""
    line_id: str | None = None


@dataclass(frozen=True, slots=True)
class TlsListener:
    """A TLS listener (paths as seen by the broker)."""

    port: int
    certfile: Path
    keyfile: Path
    cafile: Path | None = None


@dataclass(frozen=True, slots=True)
class Written:
    """What `write_broker_config` produced."""

    directory: Path
    accounts: tuple[Account, ...]
    created: tuple[str, ...]
    """Usernames that got a new password this time."""

    @property
    def config_file(self) -> Path:
        """The mosquitto.conf to start the broker with."""
        return self.directory / CONFIG_FILE

    def account(self, username: str) -> Account:
        """The account of `username` (KeyError when absent)."""
        for account in self.accounts:
            if account.username == username:
                return account
        raise KeyError(username)


def new_password() -> str:
    """A fresh broker password: 128 random bits, URL-safe (fits in mqtt://user:pass@ URLs)."""
    return secrets.token_urlsafe(16)


def password_hash(password: str, salt: bytes | None = None) -> str:
    """The `$7$` PBKDF2-SHA512 hash Mosquitto 2 reads from its password file."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    encoded_salt = base64.b64encode(salt).decode()
    return f"$7${PBKDF2_ITERATIONS}${encoded_salt}${base64.b64encode(digest).decode()}"


def device_roles(network: Network) -> list[tuple[str, DeviceKind, str]]:
    """(username, kind, line id) for every device, in a stable order."""
    seen: dict[str, DeviceKind] = {}
    roles: list[tuple[str, DeviceKind, str]] = []
    for (kind, device_id), place in sorted(
        network.devices().items(), key=lambda item: (item[0][0].value, item[0][1])
    ):
        if device_id in seen:
            raise BrokerConfigError(
                f"{kind.value} {device_id!r} has the same id as a {seen[device_id].value}: "
                "broker usernames must be unique"
            )
        seen[device_id] = kind
        roles.append((device_id, kind, place.line_id))
    return roles


def dispatcher_users(first: str, processes: int = 1) -> tuple[str, ...]:
    """The dispatcher accounts of a service run by `processes` processes (CARPOOL_CLUSTER):
    `first`, then `first-2`, `first-3`… Each process needs its own, since the broker takes the
    username as the client id and one session per client id."""
    return (first, *(f"{first}-{n}" for n in range(2, processes + 1)))


def acl_text(
    network: Network,
    dispatcher_user: str | tuple[str, ...],
    observer_user: str = DEFAULT_OBSERVER_USER,
) -> str:
    """The Mosquitto ACL file: each device locked to its own topics."""
    dispatchers = (dispatcher_user,) if isinstance(dispatcher_user, str) else dispatcher_user
    blocks = [
        "# Generated by `carpool-line mosquitto-config` from lines.yaml: do not edit by hand.",
        *(f"user {user}\ntopic readwrite {topics.PREFIX}/#" for user in dispatchers),
        f"user {observer_user}\ntopic read {topics.PREFIX}/#",
    ]
    for username, kind, line_id in device_roles(network):
        build = topics.terminal if kind is DeviceKind.TERMINAL else topics.sign
        rules = [f"user {username}"]
        rules += [f"topic write {build(line_id, username, channel)}" for channel in _UPLINKS[kind]]
        rules.append(f"topic read {build(line_id, username, _DOWNLINK[kind])}")
        rules.append(f"topic read {topics.DISPATCHER_STATUS}")
        blocks.append("\n".join(rules))
    return "\n\n".join(blocks) + "\n"


def conf_text(
    broker_dir: Path,
    *,
    port: int = 1883,
    bind: str = "0.0.0.0",
    tls: TlsListener | None = None,
    run_as: str | None = None,
    persistence: bool = True,
) -> str:
    """mosquitto.conf pointing at the password and ACL files under `broker_dir`."""
    lines = [
        "# Generated by `carpool-line mosquitto-config` from lines.yaml: do not edit by hand.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {broker_dir / PASSWORD_FILE}",
        f"acl_file {broker_dir / ACL_FILE}",
        "# QoS 1 + Nagle + delayed ACK would add ~40 ms to every press-to-sign round.",
        "set_tcp_nodelay true",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "max_packet_size 65536",
    ]
    if run_as:
        lines.append(f"user {run_as}")
    if persistence:
        lines += ["persistence true", f"persistence_location {broker_dir / 'data'}/"]
    else:
        lines.append("persistence false")
    # The client id is the username: no account can connect as another and take its session.
    # A listener option: set before any `listener` line, Mosquitto would open a default
    # listener on 1883 to carry it.
    lines += [f"listener {port} {bind}", "use_username_as_clientid true"]
    if tls is not None:
        lines += [
            f"listener {tls.port} {bind}",
            "use_username_as_clientid true",
            f"certfile {tls.certfile}",
            f"keyfile {tls.keyfile}",
        ]
        if tls.cafile is not None:
            lines.append(f"cafile {tls.cafile}")
        lines.append("tls_version tlsv1.2")
    return "\n".join(lines) + "\n"


def read_credentials(path: Path) -> dict[str, Account]:
    """Accounts of an earlier run, by username (empty when there is no such file)."""
    if not path.exists():
        return {}
    try:
        rows = json.loads(path.read_text())["accounts"]
        return {row["username"]: Account(**row) for row in rows}
    except (ValueError, KeyError, TypeError) as exc:
        raise BrokerConfigError(f"{path}: not a credentials file of ours ({exc})") from exc


def _write_private(path: Path, text: str, owner: FileOwner | None = None) -> None:
    """Write a file never world-readable: 0600, or 0640 owned by `owner` (the broker's user).

    Created 0600 and handed over before it is renamed into place: never briefly readable by
    anyone else.
    """
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    if owner is not None:
        os.chown(temporary, owner.uid, owner.gid)
    os.chmod(temporary, 0o600 if owner is None else 0o640)
    os.replace(temporary, path)


def _accounts(
    network: Network,
    service_users: tuple[tuple[str, ...], str],
    known: dict[str, Account],
    make: Callable[[], str],
) -> tuple[list[Account], list[str]]:
    dispatchers, observer_user = service_users
    if observer_user in dispatchers:
        raise BrokerConfigError("the dispatcher and the observer need two usernames")
    wanted: list[tuple[str, str, str | None]] = [
        *((user, DISPATCHER_ROLE, None) for user in dispatchers),
        (observer_user, OBSERVER_ROLE, None),
    ]
    taken = {*dispatchers, observer_user}
    for username, kind, line_id in device_roles(network):
        if username in taken:
            raise BrokerConfigError(f"device {username!r} has the username of a service account")
        wanted.append((username, kind.value, line_id))
    accounts: list[Account] = []
    created: list[str] = []
    for username, role, line in wanted:
        previous = known.get(username)
        if previous is not None and previous.role == role:
            password = previous.password
        else:
            password = make()
            created.append(username)
        accounts.append(Account(username, password, role, line))
    return accounts, created


def write_broker_config(
    network: Network,
    out_dir: Path,
    *,
    dispatcher_user: str = DEFAULT_DISPATCHER_USER,
    observer_user: str = DEFAULT_OBSERVER_USER,
    processes: int = 1,
    broker_dir: Path | None = None,
    port: int = 1883,
    bind: str = "0.0.0.0",
    tls: TlsListener | None = None,
    run_as: str | None = None,
    persistence: bool = True,
    owner: FileOwner | None = None,
    make_password: Callable[[], str] = new_password,
) -> Written:
    """Write mosquitto.conf, passwords, acl and credentials.json into `out_dir`.

    `broker_dir` is where the broker will find these files (default: `out_dir`, resolved).
    `owner` gets what the broker reads (mode 0640) and the persistence directory; without one
    the files stay the caller's (0600), for a broker run as the caller. `processes`: one
    dispatcher account for each process of a cluster (`dispatcher_users`).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    broker_dir = broker_dir or out_dir.resolve()
    known = read_credentials(out_dir / CREDENTIALS_FILE)
    dispatchers = dispatcher_users(dispatcher_user, processes)
    accounts, created = _accounts(network, (dispatchers, observer_user), known, make_password)
    if persistence and broker_dir == out_dir.resolve():
        data = out_dir / "data"
        data.mkdir(mode=0o750, exist_ok=True)
        if owner is not None:
            os.chown(data, owner.uid, owner.gid)
    _write_private(
        out_dir / CREDENTIALS_FILE,
        json.dumps({"accounts": [asdict(a) for a in accounts]}, indent=2) + "\n",
    )
    _write_private(out_dir / PASSWORD_FILE, _password_lines(accounts), owner)
    _write_private(out_dir / ACL_FILE, acl_text(network, dispatchers, observer_user), owner)
    conf = conf_text(
        broker_dir, port=port, bind=bind, tls=tls, run_as=run_as, persistence=persistence
    )
    _write_private(out_dir / CONFIG_FILE, conf, owner)
    return Written(out_dir, tuple(accounts), tuple(created))


def _password_lines(accounts: Iterable[Account]) -> str:
    return "".join(f"{a.username}:{password_hash(a.password)}\n" for a in accounts)
