"""Which packs should be active, given the imports of every open document.

This is ImportGenie's decision step, kept pure (no I/O, no LSP, an injected clock) so it can be
tested as a table of events. The rules, in order:

1. A pack is *triggered* by a document when one of the document's imports matches one of the
   pack's triggers: a Python import matches trigger ``t`` when the module is ``t`` or a submodule
   of it (``fastapi.routing`` matches ``fastapi``; ``from a import b`` also matches ``a.b``); a JS
   import matches when its package name equals the trigger.
2. A manual override wins: ``force(name, True)`` keeps a pack active with no trigger,
   ``force(name, False)`` keeps it inactive whatever imports it; ``force(name, None)`` clears.
3. A pack stays active while any open document triggers it, and for ``grace_seconds`` after the
   last one stops (closing a file, deleting the import), so that a quick undo or re-open does
   not unload and reload it.
4. At most ``max_active`` packs are active; beyond that the least recently used are left out
   (use = a document that triggers it was opened or changed, or it was forced on).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from remora_lsp.packs.manifest import Triggers

__all__ = ["ActivationManager", "ImportLike", "Want", "matches_trigger", "triggered_packs"]


class ImportLike(Protocol):
    """What activation needs of an import (``remora_lsp.core.imports.ImportRef`` has it)."""

    @property
    def module(self) -> str: ...
    @property
    def names(self) -> tuple[str, ...]: ...
    @property
    def ecosystem(self) -> str: ...


def matches_trigger(ecosystem: str, module: str, names: Iterable[str], triggers: Triggers) -> bool:
    """Whether one import (ecosystem, module, imported names) matches a pack's triggers."""
    if ecosystem == "js":
        return module in triggers.js_imports
    candidates = [module, *(f"{module}.{n}" for n in names if n != "*")]
    for trig in triggers.python_imports:
        for cand in candidates:
            if cand == trig or cand.startswith(trig + "."):
                return True
    return False


def triggered_packs(imports: Iterable[ImportLike], catalog: Mapping[str, Triggers]) -> set[str]:
    """Names of the packs in ``catalog`` that any of ``imports`` (ImportRef-like) triggers."""
    hits: set[str] = set()
    refs = list(imports)
    for name, triggers in catalog.items():
        for ref in refs:
            if matches_trigger(ref.ecosystem, ref.module, ref.names, triggers):
                hits.add(name)
                break
    return hits


@dataclass(frozen=True)
class Want:
    """The decision for one pack: active or not, and why."""

    name: str
    active: bool
    reason: str
    triggered_by: tuple[str, ...]


@dataclass
class _PackTrack:
    last_used: float = 0.0
    released_at: float | None = None  # when the last triggering document stopped importing it
    forced: bool | None = None
    docs: set[str] = field(default_factory=set)


class ActivationManager:
    """Tracks documents' triggered packs and decides the active set (see module docstring)."""

    def __init__(
        self,
        *,
        max_active: int = 8,
        grace_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_active = max_active
        self.grace_seconds = grace_seconds
        self._clock = clock
        self._catalog: dict[str, Triggers] = {}
        self._doc_imports: dict[str, list[ImportLike]] = {}
        self._tracks: dict[str, _PackTrack] = {}

    # -- inputs ---------------------------------------------------------------------------------
    def configure(self, *, max_active: int, grace_seconds: float) -> None:
        """Apply new limits (from a configuration change)."""
        self.max_active = max_active
        self.grace_seconds = grace_seconds

    def set_catalog(self, catalog: Mapping[str, Triggers]) -> None:
        """Replace the installed packs' triggers and re-match every open document."""
        self._catalog = dict(catalog)
        for name in list(self._tracks):
            if name not in self._catalog:
                del self._tracks[name]
        for uri, imports in self._doc_imports.items():
            self._rematch(uri, imports, touch=False)

    def update_document(self, uri: str, imports: Iterable[ImportLike]) -> None:
        """Record a document's current imports (on open and after each analysed change)."""
        refs = list(imports)
        self._doc_imports[uri] = refs
        self._rematch(uri, refs, touch=True)

    def close_document(self, uri: str) -> None:
        """Forget a closed document; packs it alone triggered start their grace period."""
        self._doc_imports.pop(uri, None)
        self._rematch(uri, [], touch=False)

    def force(self, name: str, active: bool | None) -> None:
        """Manual override: True keeps the pack on, False keeps it off, None clears it."""
        track = self._tracks.setdefault(name, _PackTrack())
        track.forced = active
        if active:
            track.last_used = self._clock()

    def forced(self, name: str) -> bool | None:
        """The current manual override of a pack."""
        track = self._tracks.get(name)
        return track.forced if track else None

    def _rematch(self, uri: str, imports: list[ImportLike], *, touch: bool) -> None:
        now = self._clock()
        hits = triggered_packs(imports, self._catalog) if imports else set()
        for name in self._catalog:
            track = self._tracks.get(name)
            if name in hits:
                track = track or self._tracks.setdefault(name, _PackTrack())
                if uri not in track.docs or touch:
                    track.last_used = now
                track.docs.add(uri)
                track.released_at = None
            elif track and uri in track.docs:
                track.docs.discard(uri)
                if not track.docs:
                    track.released_at = now

    # -- outputs --------------------------------------------------------------------------------
    def decide(self) -> dict[str, Want]:
        """The decision for every known pack at the current time."""
        now = self._clock()
        candidates: list[tuple[float, str, str]] = []
        wants: dict[str, Want] = {}
        for name in self._catalog:
            track = self._tracks.get(name) or _PackTrack()
            docs = tuple(sorted(track.docs))
            if track.forced is False:
                wants[name] = Want(name, False, "deactivated manually", docs)
            elif track.forced is True:
                candidates.append((track.last_used, name, "activated manually"))
            elif docs:
                candidates.append((track.last_used, name, "imported"))
            elif track.released_at is not None and now - track.released_at < self.grace_seconds:
                candidates.append((track.last_used, name, "no longer imported (grace period)"))
            else:
                wants[name] = Want(name, False, "not imported by any open file", docs)
        candidates.sort(reverse=True)
        for rank, (_, name, reason) in enumerate(candidates):
            docs = tuple(sorted(self._tracks[name].docs)) if name in self._tracks else ()
            if rank < self.max_active:
                wants[name] = Want(name, True, reason, docs)
            else:
                wants[name] = Want(
                    name, False, f"left out: max_active_packs={self.max_active} reached", docs
                )
        return wants

    def next_deadline(self) -> float | None:
        """Clock time at which a grace period ends next (when :meth:`decide` may change)."""
        ends = [
            t.released_at + self.grace_seconds
            for t in self._tracks.values()
            if t.released_at is not None and not t.docs and t.forced is None
        ]
        now = self._clock()
        future = [e for e in ends if e > now]
        return min(future) if future else None
