"""AdapterSlots: stable ids and the cache ⊇ resident LRU tiers (pure, data-driven)."""

from __future__ import annotations

from pathlib import Path

import pytest

from remora_lsp.inference.slots import AdapterSlots, SlotMove


def slots(resident: int = 2, cached: int = 3, names: str = "abcde") -> AdapterSlots:
    s = AdapterSlots(resident, cached)
    for n in names:
        s.register(n, Path(f"/packs/{n}"))
    return s


def test_ids_are_stable_per_folder_and_new_for_a_new_folder() -> None:
    s = AdapterSlots(2, 4)
    a = s.register("a", Path("/p/a/1"))
    assert s.register("a", Path("/p/a/1")) == a
    b = s.register("b", Path("/p/b"))
    assert b != a
    a2 = s.register("a", Path("/p/a/2"))
    assert a2 not in {a, b}
    assert s.id_of("a") == a2
    assert s.path_of("a") == Path("/p/a/2")


@pytest.mark.parametrize(
    ("ops", "resident", "cached", "moves"),
    [
        ("u:a u:b", "ba", "ba", []),
        ("u:a u:b u:c", "cb", "cba", [SlotMove("a", "cached")]),
        ("u:a u:b u:a u:c", "ca", "cab", [SlotMove("b", "cached")]),
        ("c:a c:b c:c c:d", "", "dcb", [SlotMove("a", "disk")]),
        ("u:a u:b u:c u:d", "dc", "dcb", [SlotMove("b", "cached"), SlotMove("a", "disk")]),
        # a released adapter is evicted first, even when it was used most recently
        ("u:a u:b r:b u:c", "ca", "cba", [SlotMove("b", "cached")]),
        ("c:a c:b c:c r:c c:d", "", "dba", [SlotMove("c", "disk")]),
        # using a released adapter makes it wanted again
        ("u:a r:a u:a u:b u:c", "cb", "cba", [SlotMove("a", "cached")]),
    ],
)
def test_tiers(ops: str, resident: str, cached: str, moves: list[SlotMove]) -> None:
    s = slots()
    last: list[SlotMove] = []
    for op in ops.split():
        kind, name = op.split(":")
        if kind == "u":
            last = s.use(name)
        elif kind == "c":
            last = s.cache(name)
        else:
            s.release(name)
    assert "".join(s.resident()) == resident
    assert "".join(s.cached()) == cached
    assert last == moves


def test_tier_drop_demote_clear() -> None:
    s = slots()
    s.use("a")
    s.cache("b")
    assert (s.tier("a"), s.tier("b"), s.tier("c"), s.tier("zz")) == (
        "resident",
        "cached",
        "disk",
        None,
    )
    s.demote("a", "cached")
    assert s.tier("a") == "cached"
    assert s.drop("a") == "cached"
    assert s.tier("a") is None
    s.clear()
    assert s.tier("b") == "disk"
    assert s.id_of("b") is not None


def test_unregistered_use_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="not registered"):
        AdapterSlots(1, 1).use("x")
