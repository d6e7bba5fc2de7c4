"""Suggestions already generated, so typing through one costs no new generation.

An entry remembers where a suggestion was made: the document, the adapter, a digest of all
text before the cursor and of all text after it. When the user then types the first characters
of the suggestion, the new prefix is the old one plus those characters and the suffix is
unchanged; :meth:`SuggestionCache.lookup` recognises that and returns the rest of the
suggestion. Entries are kept per document, most recent first, up to ``capacity`` in all.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["CacheHit", "SuggestionCache"]


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class _Entry:
    uri: str
    adapter: str | None
    prefix_len: int
    prefix_digest: bytes
    suffix_digest: bytes
    suggestion: str


@dataclass(frozen=True, slots=True)
class CacheHit:
    """The part of a cached suggestion not typed yet, and how much of it was typed."""

    remainder: str
    typed: int


class SuggestionCache:
    """A bounded LRU of suggestions keyed on (document, adapter, prefix, suffix)."""

    def __init__(self, capacity: int = 128) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, bytes, bytes, str | None], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def store(
        self, uri: str, adapter: str | None, prefix: str, suffix: str, suggestion: str
    ) -> None:
        """Remember ``suggestion`` made with ``prefix`` before and ``suffix`` after the cursor."""
        if not suggestion:
            return
        entry = _Entry(uri, adapter, len(prefix), _digest(prefix), _digest(suffix), suggestion)
        key = (uri, entry.prefix_digest, entry.suffix_digest, adapter)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def lookup(self, uri: str, adapter: str | None, prefix: str, suffix: str) -> CacheHit | None:
        """The untyped rest of a suggestion this prefix/suffix is typing through, if any."""
        suffix_digest = _digest(suffix)
        with self._lock:
            candidates = [
                e
                for e in reversed(self._entries.values())
                if e.uri == uri
                and e.adapter == adapter
                and e.suffix_digest == suffix_digest
                and e.prefix_len <= len(prefix) < e.prefix_len + len(e.suggestion)
            ]
        for entry in candidates:
            typed = prefix[entry.prefix_len :]
            if not entry.suggestion.startswith(typed):
                continue
            if _digest(prefix[: entry.prefix_len]) != entry.prefix_digest:
                continue
            with self._lock:
                self.hits += 1
            return CacheHit(entry.suggestion[len(typed) :], len(typed))
        with self._lock:
            self.misses += 1
        return None

    def forget(self, uri: str) -> None:
        """Drop every entry of a closed document."""
        with self._lock:
            for key in [k for k, e in self._entries.items() if e.uri == uri]:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
