"""The placement rule (line_service/cluster/placement.py): pure, every process applying it to
what PostgreSQL shows ends with each line held once and nobody above its share."""

from __future__ import annotations

import random

from line_service.cluster.placement import Moves, fair_share, moves

LINES = tuple(f"line-{n:03d}" for n in range(100))


def test_the_share_is_the_lines_over_the_processes_rounded_up() -> None:
    assert fair_share(100, 1) == 100
    assert fair_share(100, 2) == 50
    assert fair_share(100, 3) == 34
    assert fair_share(1, 2) == 1
    assert fair_share(3, 0) == 3  # nobody seen yet: this process counts itself


def test_a_process_alone_takes_every_line() -> None:
    planned = moves(LINES, "a", (), {}, 1)
    assert set(planned.take) == set(LINES)
    assert planned.give == ()


def test_a_line_someone_holds_is_never_taken() -> None:
    held = {line: "b" for line in LINES[:60]}
    planned = moves(LINES, "a", (), held, 2)
    assert len(planned.take) == 40  # the free ones, within its share of 50
    assert not set(planned.take) & set(held)


def test_a_process_above_its_share_gives_the_excess_back() -> None:
    planned = moves(LINES, "a", LINES, {}, 2)  # a newcomer connected
    assert planned.take == ()
    assert len(planned.give) == 50
    assert moves(LINES, "a", LINES[:50], {}, 2) == Moves()  # at its share: stays


def test_two_processes_reaching_at_once_start_with_different_lines() -> None:
    first = moves(LINES, "a", (), {}, 2).take
    second = moves(LINES, "b", (), {}, 2).take
    assert len(set(first) & set(second)) < 35  # not the same fifty: few lock races


def _settle(nodes: list[str], holders: dict[str, str], rounds: int = 20) -> dict[str, str]:
    """Every node looks in turn (in a random order each round), as their loops do."""
    rng = random.Random(7)
    for _ in range(rounds):
        for node in rng.sample(nodes, len(nodes)):
            mine = [line for line in LINES if holders.get(line) == node]
            others = {line: who for line, who in holders.items() if who != node}
            planned = moves(LINES, node, mine, others, len(nodes))
            for line in planned.give:
                del holders[line]
            for line in planned.take:
                holders.setdefault(line, node)  # a lock: the first to try wins
    return holders


def test_processes_joining_and_leaving_end_with_every_line_held_once_within_shares() -> None:
    holders = _settle(["a"], {})
    assert set(holders) == set(LINES)
    assert set(holders.values()) == {"a"}
    holders = _settle(["a", "b", "c"], holders)
    assert set(holders) == set(LINES)
    counts = {node: list(holders.values()).count(node) for node in "abc"}
    assert max(counts.values()) <= fair_share(len(LINES), 3)
    assert min(counts.values()) >= len(LINES) - 2 * fair_share(len(LINES), 3)
    # "b" dies: its locks go with its session; the two others share its lines.
    holders = {line: node for line, node in holders.items() if node != "b"}
    holders = _settle(["a", "c"], holders)
    assert set(holders) == set(LINES)
    assert sorted(list(holders.values()).count(node) for node in "ac") == [50, 50]
