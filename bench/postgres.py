"""Shell: a PostgreSQL server of the benchmark's own — Debian's binaries, a temporary data
directory, trust authentication on 127.0.0.1, removed afterwards."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.processes import Child, free_port, wait_for

DATABASE = "bench"


def _binaries() -> Path:
    """The directory of the newest installed `initdb` and `postgres`."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3])
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path is None:
        raise RuntimeError(
            "the failover bench needs PostgreSQL's server binaries: `apt-get install postgresql`"
        )
    return Path(on_path).parent


def _as_server_user(directory: Path) -> list[str]:
    """PostgreSQL refuses to run as root: as root, hand the server to `postgres` or `nobody`."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            continue
        os.chown(directory, account.pw_uid, account.pw_gid)
        return [
            "setpriv",
            f"--reuid={account.pw_uid}",
            f"--regid={account.pw_gid}",
            "--clear-groups",
            "--",
        ]
    raise RuntimeError("running as root without a `postgres` or `nobody` account for PostgreSQL")


class BenchPostgres:
    """initdb, start, `CREATE DATABASE bench`; `stop` removes everything."""

    def __init__(self) -> None:
        # Not under the bench's own temporary directory: the server's account must enter it.
        self.directory = Path(tempfile.mkdtemp(prefix="carpool-bench-pg-"))
        self.port = free_port()
        self.child: Child | None = None

    @property
    def url(self) -> str:
        """The service's CARPOOL_DATABASE_URL."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> None:
        """Create the cluster and its database; return once it answers."""
        binaries = _binaries()
        as_user = _as_server_user(self.directory)
        data = self.directory / "data"
        log = self.directory / "postgres.log"
        with log.open("ab") as output:
            subprocess.run(
                [
                    *as_user,
                    str(binaries / "initdb"),
                    *("-D", str(data), "-U", "postgres", "--auth", "trust"),
                    *("--encoding", "UTF8", "--no-sync"),
                ],
                stdout=output,
                stderr=output,
                check=True,
            )
        settings = ["listen_addresses=127.0.0.1", "fsync=off", "synchronous_commit=off"]
        self.child = Child(
            [
                *as_user,
                str(binaries / "postgres"),
                *("-D", str(data), "-p", str(self.port), "-k", str(self.directory)),
                *(f"-c{setting}" for setting in settings),
            ],
            log,
        )
        self.child.spawn()
        wait_for(self._created, 60, f"PostgreSQL on {self.port} (log: {log})")

    def _created(self) -> bool:
        assert self.child is not None
        self.child.alive()
        import psycopg  # the service's own driver

        try:
            with psycopg.connect(
                f"postgresql://postgres@127.0.0.1:{self.port}/postgres",
                autocommit=True,
                connect_timeout=2,
            ) as connection:
                connection.execute(f'CREATE DATABASE "{DATABASE}"')
        except psycopg.OperationalError:
            time.sleep(0.05)  # the server is still starting: poll again
            return False
        return True

    def stop(self) -> None:
        """Stop the server (SIGTERM: smart shutdown, the services are gone) and remove it."""
        if self.child is not None:
            self.child.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
