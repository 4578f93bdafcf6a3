"""Pure: how many lines each process of a cluster should dispatch, and which to take or give.

Every process runs the same rule on what PostgreSQL says (who is connected, who holds which
line's lock), so they agree without talking to each other: with N processes connected, each
dispatches at most ⌈lines / N⌉ lines. A process below its share takes free lines (nobody
holds them); one above it gives the excess back. N × ⌈lines / N⌉ ≥ lines, so no line stays
free once every process has looked once; and a process never takes a line another holds.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Moves:
    """What one process does at one look: lines to try to lock, lines to hand back."""

    take: tuple[str, ...] = ()
    give: tuple[str, ...] = ()


def fair_share(lines: int, processes: int) -> int:
    """The most lines one of `processes` processes dispatches."""
    return math.ceil(lines / max(processes, 1))


def _preference(node: str, line: str) -> bytes:
    """A node's own order of the lines (rendezvous hashing): two processes starting together
    reach for different lines first, and a line mostly goes back to the same process."""
    return hashlib.blake2b(f"{node}/{line}".encode(), digest_size=8).digest()


def moves(
    lines: Sequence[str],
    node: str,
    mine: Sequence[str],
    held_elsewhere: Mapping[str, str],
    processes: int,
) -> Moves:
    """This process's moves: `mine` are the lines it holds, `held_elsewhere` line → holder for
    the others, `processes` how many are connected (this one included)."""
    share = fair_share(len(lines), processes)
    held = set(mine)
    own = [line for line in lines if line in held]
    if len(own) > share:
        # Give back the lines this process likes least: the newcomer's preferred ones, mostly.
        ranked = sorted(own, key=lambda line: _preference(node, line))
        return Moves(give=tuple(ranked[share:]))
    free = [line for line in lines if line not in held_elsewhere and line not in held]
    wanted = sorted(free, key=lambda line: _preference(node, line))[: share - len(own)]
    return Moves(take=tuple(wanted))
