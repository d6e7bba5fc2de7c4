"""Which adapters are where: on disk, in the CPU cache, or resident in an active slot.

:class:`AdapterSlots` is the bookkeeping every backend shares. It hands out one stable integer
id per adapter folder (vLLM keys its caches by it), and keeps two LRU tiers: the CPU cache
(``max_cached`` adapters whose weights are in memory) and the resident set (``max_resident``
adapters in active slots, a subset of the cache). :meth:`AdapterSlots.use` promotes an adapter
to resident and :meth:`AdapterSlots.cache` loads it into the cache; both return the
:class:`SlotMove` evictions the backend must carry out. An adapter whose pack was deactivated is
:meth:`AdapterSlots.release`\\ d: it stays loaded (a re-activation is cheap) but is the first to
go when room is needed. The class holds no weights and is thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["AdapterSlots", "SlotMove", "Tier"]

Tier = Literal["disk", "cached", "resident"]


@dataclass(frozen=True, slots=True)
class SlotMove:
    """An eviction: ``name`` moves down to tier ``to`` (``"cached"`` or ``"disk"``)."""

    name: str
    to: Tier


class AdapterSlots:
    """Stable ids and the two LRU tiers (cache ⊇ resident) of a backend's adapters."""

    def __init__(self, max_resident: int, max_cached: int) -> None:
        if max_resident < 1:
            raise ValueError(f"max_resident must be >= 1, got {max_resident}")
        self.max_resident = max_resident
        self.max_cached = max(max_cached, max_resident)
        self._lock = threading.Lock()
        self._next_id = 1
        self._ids: dict[tuple[str, Path], int] = {}
        self._paths: dict[str, Path] = {}
        self._cached: OrderedDict[str, None] = OrderedDict()  # least recently used first
        self._resident: OrderedDict[str, None] = OrderedDict()
        self._released: set[str] = set()

    # -- identity -------------------------------------------------------------------------------
    def register(self, name: str, path: Path, int_id: int | None = None) -> int:
        """The stable id of adapter ``name`` at ``path`` (the same pair always gets the same id).

        ``int_id`` adopts an id chosen by the caller (an :class:`AdapterRef`'s); without it one
        is allocated. Registering a known name with a new path (a new pack version) gives a new
        id; the old adapter must be dropped by the caller first.
        """
        key = (name, Path(path))
        with self._lock:
            self._paths[name] = key[1]
            self._released.discard(name)
            if int_id is not None:
                self._ids[key] = int_id
                self._next_id = max(self._next_id, int_id + 1)
                return int_id
            found = self._ids.get(key)
            if found is None:
                found = self._ids[key] = self._next_id
                self._next_id += 1
            return found

    def id_of(self, name: str) -> int | None:
        """The id of the registered adapter ``name``, if any."""
        with self._lock:
            path = self._paths.get(name)
            return None if path is None else self._ids[(name, path)]

    def path_of(self, name: str) -> Path | None:
        """The folder of the registered adapter ``name``, if any."""
        with self._lock:
            return self._paths.get(name)

    def registered(self) -> tuple[str, ...]:
        """Every registered adapter name."""
        with self._lock:
            return tuple(self._paths)

    # -- tiers ----------------------------------------------------------------------------------
    def tier(self, name: str) -> Tier | None:
        """Where ``name`` is now; None if it was never registered (or was dropped)."""
        with self._lock:
            if name in self._resident:
                return "resident"
            if name in self._cached:
                return "cached"
            return "disk" if name in self._paths else None

    def cache(self, name: str) -> list[SlotMove]:
        """Bring ``name`` into the CPU cache (no demotion if it is resident)."""
        with self._lock:
            self._require(name)
            self._released.discard(name)
            self._cached[name] = None
            self._cached.move_to_end(name)
            return self._shrink_cache(keep=name)

    def use(self, name: str) -> list[SlotMove]:
        """Make ``name`` resident (most recently used) and return the evictions this causes."""
        with self._lock:
            self._require(name)
            self._released.discard(name)
            self._cached[name] = None
            self._cached.move_to_end(name)
            self._resident[name] = None
            self._resident.move_to_end(name)
            moves: list[SlotMove] = []
            while len(self._resident) > self.max_resident:
                victim = self._victim(self._resident, keep=name)
                del self._resident[victim]
                moves.append(SlotMove(victim, "cached"))
            moves += self._shrink_cache(keep=name)
            return moves

    def release(self, name: str) -> None:
        """``name`` is no longer wanted: keep it loaded, but evict it before anything else."""
        with self._lock:
            if name in self._paths:
                self._released.add(name)

    def is_released(self, name: str) -> bool:
        """Whether ``name`` was released and not used or registered since."""
        with self._lock:
            return name in self._released

    def drop(self, name: str) -> Tier | None:
        """Forget ``name`` entirely; returns the tier it was in (None if unknown)."""
        with self._lock:
            tier: Tier | None = (
                "resident"
                if name in self._resident
                else "cached"
                if name in self._cached
                else "disk"
                if name in self._paths
                else None
            )
            self._resident.pop(name, None)
            self._cached.pop(name, None)
            self._paths.pop(name, None)
            self._released.discard(name)
            return tier

    def demote(self, name: str, to: Tier) -> None:
        """Record an eviction the backend made on its own (``to`` is ``cached`` or ``disk``)."""
        with self._lock:
            self._resident.pop(name, None)
            if to == "disk":
                self._cached.pop(name, None)

    def resident(self) -> tuple[str, ...]:
        """Resident adapters, most recently used first."""
        with self._lock:
            return tuple(reversed(self._resident))

    def cached(self) -> tuple[str, ...]:
        """Adapters in memory (resident included), most recently used first."""
        with self._lock:
            return tuple(reversed(self._cached))

    def clear(self) -> None:
        """The backend restarted: everything is back on disk (ids and paths are kept)."""
        with self._lock:
            self._resident.clear()
            self._cached.clear()

    # -- internals ------------------------------------------------------------------------------
    def _require(self, name: str) -> None:
        if name not in self._paths:
            raise KeyError(f"adapter {name!r} is not registered")

    def _victim(self, tier: OrderedDict[str, None], keep: str) -> str:
        for candidate in tier:  # released first, in LRU order
            if candidate in self._released and candidate != keep:
                return candidate
        return next(c for c in tier if c != keep)

    def _shrink_cache(self, keep: str) -> list[SlotMove]:
        moves: list[SlotMove] = []
        while len(self._cached) > self.max_cached:
            victim = self._victim(self._cached, keep=keep)
            del self._cached[victim]
            if victim in self._resident:
                del self._resident[victim]
            moves.append(SlotMove(victim, "disk"))
        return moves
