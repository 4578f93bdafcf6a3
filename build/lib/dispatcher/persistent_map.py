"""Pure: an immutable mapping whose updates copy a small leaf, not the whole map.

The dispatcher's state is a value replaced at every step. With plain dicts each step copied
maps that grow with the devices and the requests of a region (thousands of entries), so the
cost of one event grew with the load. Here keys hash into a fixed two-level trie of 64 × 64
leaves: `set` and `delete` copy two 64-slot tuples and one leaf dict (about n / 4096 entries).
Reads cost one hash and three lookups. Iteration order follows hashes, not insertion.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, ItemsView, Iterable, Iterator, Mapping, ValuesView
from typing import Any, Generic, TypeVar, overload

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")

_BITS = 6
_WIDTH = 1 << _BITS
_MASK = _WIDTH - 1

Leaf = dict[K, V]
Branch = tuple[Leaf[K, V] | None, ...]
Root = tuple[Branch[K, V] | None, ...]


class PersistentMap(Mapping[K, V], Generic[K, V]):
    """An immutable map with cheap functional updates (`set`, `delete`, `update`, `discard`)."""

    __slots__ = ("_root", "_size")

    _root: Root[K, V]
    _size: int

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        leaves: dict[tuple[int, int], Leaf[K, V]] = {}
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            leaves.setdefault(_slots(key), {})[key] = value
        branches: list[list[Leaf[K, V] | None] | None] = [None] * _WIDTH
        for (high, low), leaf in leaves.items():
            branch = branches[high]
            if branch is None:
                branch = branches[high] = [None] * _WIDTH
            branch[low] = leaf
        self._root = tuple(None if b is None else tuple(b) for b in branches)
        self._size = sum(len(leaf) for leaf in leaves.values())

    @classmethod
    def _made(cls, root: Root[K, V], size: int) -> PersistentMap[K, V]:
        made = cls.__new__(cls)
        made._root = root
        made._size = size
        return made

    def _leaf(self, key: K) -> Leaf[K, V] | None:
        high, low = _slots(key)
        branch = self._root[high]
        return None if branch is None else branch[low]

    def __getitem__(self, key: K) -> V:
        leaf = self._leaf(key)
        if leaf is None:
            raise KeyError(key)
        return leaf[key]

    def __contains__(self, key: object) -> bool:
        try:
            leaf = self._leaf(key)  # type: ignore[arg-type]
        except TypeError:
            return False
        return leaf is not None and key in leaf

    def __iter__(self) -> Iterator[K]:
        for leaf in self._leaves():
            yield from leaf

    def __len__(self) -> int:
        return self._size

    def _leaves(self) -> Iterator[Leaf[K, V]]:
        for branch in self._root:
            if branch is not None:
                for leaf in branch:
                    if leaf is not None:
                        yield leaf

    def items(self) -> ItemsView[K, V]:
        """The pairs, read leaf by leaf (no lookup per key)."""
        return _Items(self)

    def values(self) -> ValuesView[V]:
        """The values, read leaf by leaf (no lookup per key)."""
        return _Values(self)

    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, default: V, /) -> V: ...
    @overload
    def get(self, key: K, default: T, /) -> V | T: ...
    def get(self, key: K, default: object = None, /) -> object:
        """The value of `key`, or `default` (no exception raised on the way)."""
        leaf = self._leaf(key)
        return default if leaf is None else leaf.get(key, default)

    def __repr__(self) -> str:
        return f"PersistentMap({dict(self.items())!r})"

    def set(self, key: K, value: V) -> PersistentMap[K, V]:
        """A map like this one with `key` bound to `value`."""
        return self._with_leaf(key, lambda leaf: {**leaf, key: value})

    def delete(self, key: K) -> PersistentMap[K, V]:
        """A map like this one without `key` (the same map if it was absent)."""
        if key not in self:
            return self
        return self._with_leaf(key, lambda leaf: {k: v for k, v in leaf.items() if k != key})

    def update(self, pairs: Mapping[K, V] | Iterable[tuple[K, V]]) -> PersistentMap[K, V]:
        """A map like this one with every pair set."""
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        result = self
        for key, value in items:
            result = result.set(key, value)
        return result

    def discard(self, keys: Iterable[K]) -> PersistentMap[K, V]:
        """A map like this one without any of `keys`."""
        result = self
        for key in keys:
            result = result.delete(key)
        return result

    def _with_leaf(self, key: K, change: Callable[[Leaf[K, V]], Leaf[K, V]]) -> PersistentMap[K, V]:
        high, low = _slots(key)
        branch = self._root[high]
        old_leaf = (None if branch is None else branch[low]) or {}
        new_leaf = change(old_leaf)
        slots: list[Leaf[K, V] | None] = list(branch) if branch is not None else [None] * _WIDTH
        slots[low] = new_leaf or None
        new_branch = tuple(slots) if any(slot is not None for slot in slots) else None
        root = list(self._root)
        root[high] = new_branch
        size = self._size + len(new_leaf) - len(old_leaf)
        return self._made(tuple(root), size)


class _Items(ItemsView[K, V]):
    _mapping: PersistentMap[K, V]

    def __iter__(self) -> Iterator[tuple[K, V]]:
        for leaf in self._mapping._leaves():
            yield from leaf.items()


class _Values(ValuesView[V]):
    _mapping: PersistentMap[Any, V]

    def __iter__(self) -> Iterator[V]:
        for leaf in self._mapping._leaves():
            yield from leaf.values()


def _slots(key: Hashable) -> tuple[int, int]:
    digest = hash(key)
    return digest & _MASK, (digest >> _BITS) & _MASK
