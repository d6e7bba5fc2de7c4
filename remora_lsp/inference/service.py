"""The generative layer as the server sees it: one engine kept alive, pack adapters in it.

:class:`GenerativeService` owns the engine's life: it builds and starts it in the background
(loading a model takes seconds to a minute), watches its health, and when it fails to start or
dies, restarts it with exponential backoff and loads the wanted adapters again. While the
engine is down :meth:`GenerativeService.ready_engine` is None and completions answer empty;
the server itself never waits for it.

It is also a ``PackListener`` (see :mod:`remora_lsp.server.session`): when a pack activates,
:meth:`pack_loaded` checks that the pack's ``generation`` adapter was trained for the base model
the engine runs (id and config fingerprint) and loads it; a mismatch is a note ("adapter
skipped: trained for X, engine runs Y") and the rest of the pack stays usable. Deactivation
releases the adapter: it stays loaded (a re-activation is cheap) but is evicted first.
:meth:`status_fields` adds ``adapter`` (``resident``, ``cached``, ``loading``, ``skipped`` or
``error``) and ``adapterReason`` to the pack's status.

**Which adapter serves a request** (:meth:`adapter_for`), when several active packs match a
buffer's imports: (1) the pack whose import binds a name used nearest before the cursor (after
``pd.`` the pack that ``import pandas as pd`` triggers); (2) else the most specific trigger (the
longest matching module path, ``fastapi.security`` over ``fastapi``); (3) else the import that
comes first in the file; ties go to the pack name in alphabetical order. No match: the base
model.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from remora_lsp.core.imports import ImportRef
from remora_lsp.inference.config import EngineConfig
from remora_lsp.inference.engine import AdapterRef, Engine, ModelIdentity
from remora_lsp.inference.errors import AdapterError, EngineError, ModelNotFoundError
from remora_lsp.inference.system import rss_bytes
from remora_lsp.packs.activation import matches_trigger
from remora_lsp.packs.manifest import Triggers
from remora_lsp.packs.verify import VerifiedPack

__all__ = ["AdapterStatus", "GenerativeService", "ServiceState"]

log = logging.getLogger(__name__)

AdapterStatus = Literal["resident", "cached", "loading", "skipped", "error"]
ServiceState = Literal["stopped", "starting", "ready", "down", "failed"]

_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_NEAR_CURSOR_CHARS = 600
_HEALTHY_AFTER_S = 60.0


@dataclass
class _PackAdapter:
    """What the service knows about one active pack's generation adapter."""

    pack: str
    key: str
    ref: AdapterRef
    triggers: Triggers
    base_id: str
    base_sha: str
    rank: int
    state: AdapterStatus = "loading"
    reason: str | None = None
    wanted: bool = True
    activated: float = field(default_factory=time.monotonic)


class GenerativeService:
    """Keeps one engine running and the active packs' adapters loaded in it."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        engine_factory: Callable[[], Engine] | None = None,
        on_change: Callable[[], None] | None = None,
        load_timeout_s: float = 60.0,
        monitor_interval_s: float = 0.5,
    ) -> None:
        self.config = config
        self._factory = engine_factory or self._default_factory
        self._on_change = on_change
        self.load_timeout_s = load_timeout_s
        self.monitor_interval_s = monitor_interval_s
        self._lock = threading.Lock()
        self._adapters: dict[str, _PackAdapter] = {}
        self._ids: dict[tuple[str, Path], int] = {}
        self._engine: Engine | None = None
        self._identity: ModelIdentity | None = None
        self.state: ServiceState = "stopped"
        self.reason: str | None = None
        self.restarts = 0
        self.started_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._load_lock: asyncio.Lock | None = None

    def _default_factory(self) -> Engine:
        from remora_lsp.inference.selection import select_engine

        return select_engine(self.config)

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the engine in the background and return at once."""
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._load_lock = asyncio.Lock()
        self._task = asyncio.create_task(self._supervise(), name="remora-engine-supervisor")

    async def stop(self) -> None:
        """Stop supervising and close the engine."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        engine, self._engine = self._engine, None
        if engine is not None:
            with contextlib.suppress(Exception):
                await engine.close()
        self.state = "stopped"

    async def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the engine is ready (True) or ``timeout`` passes (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.state != "ready":
            if deadline is not None and time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    def ready_engine(self) -> Engine | None:
        """The engine when it can serve now, else None (answer completions empty)."""
        engine = self._engine
        if self.state != "ready" or engine is None:
            return None
        return engine if engine.health().state == "ready" else None

    def identity(self) -> ModelIdentity | None:
        """The running engine's base model (None until it started once)."""
        return self._identity

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                log.exception("status callback failed")

    def _backoff(self) -> float:
        base = self.config.restart_backoff_s
        return float(min(self.config.restart_backoff_max_s, base * 2 ** max(0, self.restarts - 1)))

    async def _supervise(self) -> None:
        assert self._wake is not None
        while True:
            self.state, self.reason = "starting", None
            self._changed()
            engine: Engine | None = None
            try:
                engine = await asyncio.to_thread(self._factory)
                self._engine = engine
                await engine.start()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                permanent = isinstance(exc, ModelNotFoundError)
                await self._engine_lost(engine, str(exc), failed=permanent)
                self.restarts += 1
                wait = self.config.restart_backoff_max_s if permanent else self._backoff()
                log.error("engine failed to start: %s (retrying in %.0f s)", exc, wait)
                await self._sleep(wait)
                continue
            self._identity = engine.identity()
            self.state, self.reason = "ready", None
            self.started_at = time.monotonic()
            log.info("%s engine ready: %s", engine.backend, self._identity.model_id)
            self._changed()
            await self._load_wanted()
            while engine.health().state == "ready":
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.monitor_interval_s)
            detail = engine.health().detail or "the engine stopped"
            if time.monotonic() - self.started_at > _HEALTHY_AFTER_S:
                self.restarts = 0
            self.restarts += 1
            wait = self._backoff()
            log.error("engine died: %s (restarting in %.1f s)", detail, wait)
            await self._engine_lost(engine, f"engine restarting after: {detail}", failed=False)
            await self._sleep(wait)

    async def _sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def _engine_lost(self, engine: Engine | None, reason: str, *, failed: bool) -> None:
        self.state, self.reason = ("failed" if failed else "down"), reason
        self._engine = None
        if engine is not None:
            with contextlib.suppress(Exception):
                await engine.close()
        with self._lock:
            for entry in self._adapters.values():
                if entry.state in {"resident", "cached", "loading", "error"}:
                    entry.state = "error" if failed else "loading"
                    entry.reason = reason
        self._changed()

    def engine_failed(self) -> None:
        """Tell the supervisor to look at the engine's health now (after a failed request)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    # -- adapters -------------------------------------------------------------------------------
    def _int_id(self, name: str, path: Path) -> int:
        with self._lock:
            return self._ids.setdefault((name, path), len(self._ids) + 1)

    def _compatibility(self, entry: _PackAdapter, identity: ModelIdentity) -> str | None:
        if identity.is_encoder_decoder:
            return (
                f"adapter skipped: trained for {entry.base_id}, engine runs the "
                f"encoder-decoder model {identity.model_id}"
            )
        if entry.base_id != identity.model_id:
            return f"adapter skipped: trained for {entry.base_id}, engine runs {identity.model_id}"
        sha = identity.config_sha256
        if sha is not None and entry.base_sha != sha.lower():
            return (
                f"adapter skipped: trained for {entry.base_id} (config {entry.base_sha[:12]}), "
                f"engine runs {identity.model_id} (config {sha[:12]})"
            )
        if entry.rank > self.config.max_lora_rank:
            return (
                f"adapter skipped: rank {entry.rank} is above max_lora_rank "
                f"{self.config.max_lora_rank}"
            )
        return None

    async def _load_entry(self, entry: _PackAdapter) -> None:
        engine = self.ready_engine()
        identity = self._identity
        if engine is None or identity is None:
            return  # loaded when the engine is up
        note = self._compatibility(entry, identity)
        if note is not None:
            entry.state, entry.reason = "skipped", note
            self._changed()
            return
        assert self._load_lock is not None
        async with self._load_lock:
            if not entry.wanted or self._adapters.get(entry.pack) is not entry:
                return
            try:
                await engine.load_adapter(entry.ref)
            except AdapterError as exc:
                entry.state, entry.reason = "error", str(exc)
                log.error("pack %s: %s", entry.key, exc)
            except EngineError as exc:
                entry.state, entry.reason = "loading", f"waiting for the engine: {exc}"
                self.engine_failed()
            else:
                entry.state, entry.reason = "cached", None
        self._changed()

    async def _load_wanted(self) -> None:
        with self._lock:
            entries = [e for e in self._adapters.values() if e.wanted]
        for entry in sorted(entries, key=lambda e: e.activated):
            await self._load_entry(entry)

    def pack_loaded(self, pack: VerifiedPack) -> str | None:
        """Load the pack's generation adapter (runs in a worker thread; see the module doc)."""
        manifest = pack.manifest
        adapter = manifest.adapter("generation")
        name = manifest.name
        if adapter is None:
            with self._lock:
                self._adapters.pop(name, None)
            return None
        path = (pack.path / adapter.path).resolve()
        if not path.is_relative_to(pack.path.resolve()):
            raise AdapterError(f"{manifest.key}: adapter path {adapter.path!r} leaves the pack")
        entry = _PackAdapter(
            pack=name,
            key=manifest.key,
            ref=AdapterRef(
                name, self._int_id(name, path), path, "generation", adapter.base_model.id
            ),
            triggers=manifest.triggers,
            base_id=adapter.base_model.id,
            base_sha=adapter.base_model.config_sha256,
            rank=adapter.rank,
        )
        with self._lock:
            self._adapters[name] = entry
        if self._identity is not None:
            note = self._compatibility(entry, self._identity)
            if note is not None:
                entry.state, entry.reason = "skipped", note
                return note
        loop = self._loop
        if loop is None or self.ready_engine() is None:
            if self.state == "failed":
                entry.state, entry.reason = "error", self.reason
            else:
                entry.reason = f"waiting for the engine ({self.state})"
            return None
        future = asyncio.run_coroutine_threadsafe(self._load_entry(entry), loop)
        with contextlib.suppress(concurrent.futures.TimeoutError):
            future.result(timeout=self.load_timeout_s)
        if entry.state == "skipped":
            return entry.reason
        if entry.state == "error":
            return f"adapter error: {entry.reason}"
        return None

    def pack_unloaded(self, name: str) -> None:
        """Release the pack's adapter: still loaded, but the first to be evicted."""
        with self._lock:
            entry = self._adapters.pop(name, None)
        if entry is None:
            return
        entry.wanted = False
        engine = self._engine
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.release_adapter(name)

    def status_fields(self, name: str) -> dict[str, Any]:
        """``adapter`` and ``adapterReason`` for the pack's status entry (empty: no adapter)."""
        with self._lock:
            entry = self._adapters.get(name)
        if entry is None:
            return {}
        state, reason = entry.state, entry.reason
        engine = self._engine
        if state in {"cached", "resident"} and engine is not None:
            if name in engine.resident_adapters():
                state = "resident"
            elif name in engine.cached_adapters():
                state = "cached"
            else:
                state, reason = "cached", "evicted to disk (cache full); reloaded on next use"
        return {"adapter": state, "adapterReason": reason}

    def adapters(self) -> dict[str, dict[str, Any]]:
        """Every active pack's adapter status, by pack name."""
        with self._lock:
            names = list(self._adapters)
        return {name: self.status_fields(name) for name in names}

    # -- routing --------------------------------------------------------------------------------
    def adapter_for(self, imports: Sequence[ImportRef], text: bytes, offset: int) -> str | None:
        """The adapter for a completion at byte ``offset`` (policy in the module docstring)."""
        with self._lock:
            usable = {
                n: e
                for n, e in self._adapters.items()
                if e.wanted and e.state in {"resident", "cached"}
            }
        if not usable:
            return None
        start = max(0, offset - _NEAR_CURSOR_CHARS)
        window = text[start:offset].decode("utf-8", errors="ignore")
        first_line = text.count(b"\n", 0, start)
        import_lines = {ref.line for ref in imports}
        last_use: dict[str, int] = {}
        line, seen = first_line, 0
        for match in _IDENT.finditer(window):
            line += window.count("\n", seen, match.start())
            seen = match.start()
            if line not in import_lines:  # an import statement is no use of the name
                last_use[match.group()] = match.start()
        ranked: list[tuple[int, int, int, str]] = []
        for position, ref in enumerate(imports):
            if ref.start_byte <= offset <= ref.end_byte:
                continue  # the import being typed does not count as a use
            for name, entry in usable.items():
                if not matches_trigger(ref.ecosystem, ref.module, ref.names, entry.triggers):
                    continue
                near = max((last_use.get(b, -1) for b in _bound_names(ref)), default=-1)
                ranked.append((-near, -_specificity(ref, entry.triggers), position, name))
        return min(ranked)[3] if ranked else None

    # -- diagnostics ----------------------------------------------------------------------------
    def doctor(self) -> dict[str, Any]:
        """Engine, base model, device, adapters and memory, as plain data."""
        engine = self._engine
        health = engine.health() if engine is not None else None
        ident = self._identity
        return {
            "state": self.state,
            "reason": self.reason,
            "engine": engine.backend if engine is not None else self.config.engine,
            "engineState": health.state if health else None,
            "device": health.device if health else None,
            "model": {
                "id": ident.model_id,
                "path": str(ident.path) if ident.path else None,
                "configSha256": ident.config_sha256,
                "architecture": ident.architecture,
                "fim": ident.fim is not None,
            }
            if ident
            else {"setting": self.config.model},
            "residentAdapters": list(health.resident_adapters) if health else [],
            "cachedAdapters": list(health.cached_adapters) if health else [],
            "packs": self.adapters(),
            "restarts": self.restarts,
            "rssBytes": (health.rss_bytes if health else None) or rss_bytes(),
        }


def _bound_names(ref: ImportRef) -> set[str]:
    """Local names an import binds (``np`` for ``import numpy as np``; ``FastAPI`` for
    ``from fastapi import FastAPI``)."""
    names = {n for n in ref.names if n != "*"}
    if ref.alias:
        names.add(ref.alias)
    elif not names:
        names.add(ref.module.split(".")[0] if ref.ecosystem == "python" else ref.module)
    return names


def _specificity(ref: ImportRef, triggers: Triggers) -> int:
    """Depth of the deepest trigger ``ref`` matches (``fastapi.security`` 2, ``fastapi`` 1)."""
    if ref.ecosystem != "python":
        return 1 if ref.module in triggers.js_imports else 0
    candidates = [ref.module, *(f"{ref.module}.{n}" for n in ref.names if n != "*")]
    best = 0
    for trigger in triggers.python_imports:
        for cand in candidates:
            if cand == trigger or cand.startswith(trigger + "."):
                best = max(best, trigger.count(".") + 1)
    return best
