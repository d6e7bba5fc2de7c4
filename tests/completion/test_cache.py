"""The suggestion cache: typing through a suggestion returns its remainder."""

from __future__ import annotations

from remora_lsp.completion.cache import SuggestionCache


def test_typing_through_a_suggestion() -> None:
    cache = SuggestionCache()
    cache.store("u", "fastapi", "x = ", "\nprint(x)", "load(path)")
    assert cache.lookup("u", "fastapi", "x = ", "\nprint(x)").remainder == "load(path)"  # type: ignore[union-attr]
    hit = cache.lookup("u", "fastapi", "x = lo", "\nprint(x)")
    assert hit is not None and (hit.remainder, hit.typed) == ("ad(path)", 2)
    # typed something else, a different suffix, another adapter or document: no hit
    assert cache.lookup("u", "fastapi", "x = li", "\nprint(x)") is None
    assert cache.lookup("u", "fastapi", "x = lo", "\nother") is None
    assert cache.lookup("u", None, "x = lo", "\nprint(x)") is None
    assert cache.lookup("v", "fastapi", "x = lo", "\nprint(x)") is None
    # typed all of it: nothing left to suggest from this entry
    assert cache.lookup("u", "fastapi", "x = load(path)", "\nprint(x)") is None
    # an edit before the cursor changes the prefix even when its length matches
    assert cache.lookup("u", "fastapi", "y = lo", "\nprint(x)") is None
    assert cache.hits == 2


def test_bounded_and_forget() -> None:
    cache = SuggestionCache(capacity=2)
    for i in range(3):
        cache.store("u", None, f"p{i}", "", "abc")
    assert len(cache) == 2
    assert cache.lookup("u", None, "p0a", "") is None
    assert cache.lookup("u", None, "p2a", "") is not None
    cache.forget("u")
    assert len(cache) == 0
