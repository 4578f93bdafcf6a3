"""The core's persistent map behaves exactly like a dict that is never mutated."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.persistent_map import PersistentMap

KEYS = st.one_of(
    st.integers(-50, 50), st.text(max_size=3), st.tuples(st.integers(0, 3), st.text(max_size=2))
)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), KEYS, st.integers()),
        st.tuples(st.just("delete"), KEYS, st.none()),
    ),
    max_size=200,
)


@given(start=st.dictionaries(KEYS, st.integers(), max_size=50), operations=OPERATIONS)
def test_every_operation_matches_a_dict_and_leaves_older_maps_untouched(
    start: dict[object, int], operations: list[tuple[str, object, int | None]]
) -> None:
    model = dict(start)
    current = PersistentMap(start)
    history = [(current, dict(model))]
    for name, key, value in operations:
        if name == "set":
            assert value is not None
            current = current.set(key, value)
            model[key] = value
        else:
            current = current.delete(key)
            model.pop(key, None)
        history.append((current, dict(model)))
    for snapshot, expected in history:  # every version still holds what it held
        assert snapshot == expected
        assert len(snapshot) == len(expected)
        assert set(snapshot) == set(expected)
        for key, value in expected.items():
            assert key in snapshot
            assert snapshot[key] == value
            assert snapshot.get(key) == value


def test_missing_keys_behave_like_a_dict() -> None:
    empty: PersistentMap[str, int] = PersistentMap()
    assert "x" not in empty
    assert empty.get("x") is None
    assert empty.get("x", 3) == 3
    unhashable: object = []
    assert unhashable not in empty  # simply absent, as in a dict lookup that cannot match
    assert empty.delete("x") is empty
    with pytest.raises(KeyError, match="x"):
        empty["x"]


def test_bulk_helpers() -> None:
    base = PersistentMap({"a": 1, "b": 2})
    assert base.update({"b": 20, "c": 3}) == {"a": 1, "b": 20, "c": 3}
    assert base.discard(["a", "zzz"]) == {"b": 2}
    assert base == {"a": 1, "b": 2}
