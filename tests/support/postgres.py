"""Test support: a throwaway PostgreSQL server on a free port, started and removed here."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy

from tests.support.brokers import accepts_connections, free_port
from tests.support.waiting import wait_until

BINARY_GLOB = "/usr/lib/postgresql/*/bin/initdb"
DATABASE = "test"


class PostgresMissingError(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def server_binaries() -> Path:
    """The directory of the newest installed `initdb` and `postgres`."""
    found = sorted(glob.glob(BINARY_GLOB), key=lambda path: int(Path(path).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path is not None:
        return Path(on_path).parent
    raise PostgresMissingError(
        f"no PostgreSQL server binaries ({BINARY_GLOB} or initdb on PATH): install Debian's "
        "postgresql package (`apt-get install -y postgresql`; `make system-deps` does it) or set "
        "CARPOOL_TEST_POSTGRES_URL to a server of yours"
    )


def _unprivileged_account() -> tuple[int, int] | None:
    """Who runs the server: PostgreSQL refuses root, so root hands it to `postgres` or `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            continue
        return account.pw_uid, account.pw_gid
    raise PostgresMissingError("running as root: no `postgres` or `nobody` account for the server")


@dataclass
class ThrowawayPostgres:
    """A PostgreSQL cluster of our own: initdb in a temp dir, trust auth, 127.0.0.1 only."""

    port: int = 0
    directory: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its `test` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> None:
        """initdb, start the server, wait for it, create the database."""
        binaries = server_binaries()
        account = _unprivileged_account()
        # Not under pytest's temp dirs: those are root-only (0700), the server user cannot enter.
        self.directory = Path(tempfile.mkdtemp(prefix="carpool-pg-"))
        data = self.directory / "data"
        as_user: list[str] = []
        if account is not None:
            uid, gid = account
            os.chown(self.directory, uid, gid)
            as_user = _setpriv(uid, gid)
        log_path = self.directory / "postgres.log"
        with log_path.open("ab") as log:
            subprocess.run(
                [
                    *as_user,
                    str(binaries / "initdb"),
                    "--pgdata",
                    str(data),
                    "--username",
                    "postgres",
                    "--auth",
                    "trust",
                    "--encoding",
                    "UTF8",
                    "--no-sync",
                ],
                stdout=log,
                stderr=log,
                check=True,
            )
        self.port = free_port()
        self._launch()
        admin = sqlalchemy.create_engine(
            f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres",
            isolation_level="AUTOCOMMIT",
        )
        try:
            wait_until(lambda: _answers(admin), 30, f"postgres on {self.port} to answer")
            with admin.connect() as connection:
                connection.execute(sqlalchemy.text(f'CREATE DATABASE "{DATABASE}"'))
        finally:
            admin.dispose()

    def _launch(self) -> None:
        """Run the server on `self.port` over the existing data directory; wait for it."""
        assert self.directory is not None
        binaries = server_binaries()
        account = _unprivileged_account()
        as_user = [] if account is None else _setpriv(*account)
        data = self.directory / "data"
        log_path = self.directory / "postgres.log"
        # setpriv execs the server itself: signals sent to the process reach PostgreSQL.
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *as_user,
                    str(binaries / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.directory),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                ],
                stdout=log,
                stderr=log,
            )
        wait_until(
            lambda: self._alive() and accepts_connections(self.port), 30, f"postgres on {self.port}"
        )

    def restart(self) -> None:
        """Fast shutdown (every session ended, as a server restart does), then start again on
        the same port and data; return once it accepts connections."""
        self._shut_down()
        self._launch()

    def _alive(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            log = (self.directory or Path()) / "postgres.log"
            raise RuntimeError(f"postgres exited at start-up: {log.read_text()[-2000:]}")
        return True

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then SIGKILL; remove its directory."""
        self._shut_down()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def _shut_down(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None


def _setpriv(uid: int, gid: int) -> list[str]:
    """The command prefix that runs the rest as this account (PostgreSQL refuses root)."""
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]


def _answers(engine: sqlalchemy.Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.OperationalError:
        return False
    return True
