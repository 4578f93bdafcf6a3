"""Shell: `python -m bench.profiled OUT serve …` — the service under cProfile, kept on SIGTERM.

uvicorn re-raises SIGTERM after its graceful shutdown, which would kill the process before
cProfile writes anything: the stats are dumped at that moment instead.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys

from line_service.cli import main


def run(out: str, argv: list[str]) -> None:
    """Run the CLI with `argv` under the profiler; write the stats to `out` on the way out."""
    profiler = cProfile.Profile()

    def dump_and_exit(_signal: int) -> None:
        profiler.disable()
        profiler.dump_stats(out)
        os._exit(0)

    signal.raise_signal = dump_and_exit
    sys.argv = ["carpool-line", *argv]
    profiler.enable()
    try:
        main()
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    run(f"{sys.argv[1]}.{os.getpid()}", sys.argv[2:])
