"""The server's state and the one place it changes: open documents, their imports, installed
packs, and which of them are active.

``Session`` runs on the server's asyncio loop and knows nothing of pygls: it is given two
callbacks (publish a pack-status payload; show one short message) so a test can drive it
directly. Document edits are applied at once (our own bytes + incremental tree-sitter tree);
re-deciding the active packs is debounced; loading a pack (verifying signature and digests)
runs in a worker thread and is checked against the latest decision before it counts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from remora_lsp.config import Config
from remora_lsp.core.documents import (
    Document,
    DocumentStore,
    TextChange,
    UnknownDocumentError,
)
from remora_lsp.core.imports import ImportRef, ImportTracker
from remora_lsp.errors import PackError, RemoraError
from remora_lsp.packs.activation import ActivationManager, Want, matches_trigger
from remora_lsp.packs.store import InstalledPack, active_versions
from remora_lsp.packs.verify import VerifiedPack, verify_pack_dir
from remora_lsp.packs.watcher import StoreWatcher

__all__ = ["PackListener", "PackState", "Session"]

log = logging.getLogger(__name__)

State = Literal["loading", "ready", "error", "inactive"]
RESCAN_DELAY_S = 0.3


class PackListener(Protocol):
    """A layer that loads its part of a pack (index, adapter, templates) when the pack activates.

    ``pack_loaded`` runs in a worker thread after the pack verified; it returns an optional note
    for the status (e.g. why an adapter was skipped) or raises ``PackError`` to mark the pack
    ``error``. ``pack_unloaded`` runs on the event loop and must be cheap. ``status_fields``
    adds keys to the pack's ``remora/packStatus`` entry (e.g. ``{"adapter": "resident"}``).
    """

    def pack_loaded(self, pack: VerifiedPack) -> str | None: ...

    def pack_unloaded(self, name: str) -> None: ...

    def status_fields(self, name: str) -> dict[str, Any]: ...


@dataclass
class PackState:
    """Runtime state of one installed pack (the version the store says is active)."""

    installed: InstalledPack
    state: State = "inactive"
    reason: str | None = None
    triggered_by: tuple[str, ...] = ()
    loaded: VerifiedPack | None = None
    load_note: str | None = None  # what the layers said while loading (e.g. adapter skipped)
    generation: int = 0  # bumps on every load/unload so a late worker result is discarded

    @property
    def name(self) -> str:
        return self.installed.name

    def to_status(self) -> dict[str, Any]:
        """The ``remora/packStatus`` entry for this pack."""
        manifest = self.installed.manifest
        signed = bool(manifest and manifest.signature)
        return {
            "name": self.installed.name,
            "version": self.installed.version,
            "state": self.state,
            "reason": self.reason,
            "triggeredBy": list(self.triggered_by),
            "signed": signed,
        }


class Session:
    """Owns documents, import trackers, the pack catalog and the activation decisions."""

    def __init__(
        self,
        config: Config,
        *,
        publish_status: Callable[[dict[str, Any]], None],
        show_message: Callable[[str, str], None],
    ) -> None:
        self.config = config
        self._publish = publish_status
        self._show = show_message
        self.documents = DocumentStore(max_bytes=config.max_document_bytes)
        self.trackers: dict[str, ImportTracker] = {}
        self.activation = ActivationManager(
            max_active=config.max_active_packs, grace_seconds=config.deactivate_grace_seconds
        )
        self.packs: dict[str, PackState] = {}
        self._last_status: dict[str, Any] | None = None
        self._decide_handle: asyncio.TimerHandle | None = None
        self._deadline_handle: asyncio.TimerHandle | None = None
        self._rescan_handle: asyncio.TimerHandle | None = None
        self._watcher: StoreWatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self.status_events = 0  # how many payloads were published (benchmarks, tests)
        self.listeners: list[PackListener] = []

    def add_listener(self, listener: PackListener) -> None:
        """Register a layer that loads its part of each pack (see :class:`PackListener`)."""
        self.listeners.append(listener)

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Scan the store, start the watcher and publish the first status."""
        self._loop = asyncio.get_running_loop()
        # Watch first, then scan: a pack installed in between is seen by one or the other.
        if self.config.watch_packs:
            self._start_watcher()
        await self.rescan()

    def _start_watcher(self) -> None:
        loop = self._loop
        assert loop is not None

        def changed() -> None:
            loop.call_soon_threadsafe(self.schedule_rescan)

        self._watcher = StoreWatcher([self.config.packs_dir, self.config.trust_dir], changed)
        self._watcher.start()

    def stop(self) -> None:
        """Stop the watcher and pending timers."""
        if self._watcher:
            self._watcher.stop()
            self._watcher = None
        for handle in (self._decide_handle, self._deadline_handle, self._rescan_handle):
            if handle:
                handle.cancel()

    def apply_config(self, config: Config) -> None:
        """Take new settings; re-verify packs if the trust policy or the store moved."""
        old = self.config
        self.config = config
        self.activation.configure(
            max_active=config.max_active_packs, grace_seconds=config.deactivate_grace_seconds
        )
        self.documents.max_bytes = config.max_document_bytes
        if (old.allow_unsigned, old.remora_home) != (config.allow_unsigned, config.remora_home):
            if old.remora_home != config.remora_home and self._watcher:
                self._watcher.stop()
                self._start_watcher()
            for pack in self.packs.values():
                self._unload(pack, "settings changed")
            self.schedule_rescan()
        else:
            self.schedule_decide(0)

    # -- documents ------------------------------------------------------------------------------
    def open_document(self, uri: str, language_id: str | None, version: int, text: str) -> None:
        """A buffer was opened: parse it, detect its imports and decide at once."""
        doc = self.documents.open(uri, language_id, version, text)
        tracker = self.trackers[uri] = ImportTracker()
        tracker.reset(doc)
        self.activation.update_document(uri, self.imports_of(uri))
        self.schedule_decide(0)

    def change_document(self, uri: str, version: int, changes: Sequence[TextChange]) -> None:
        """Apply edits now (bytes + tree + imports of the changed region); decide later."""
        try:
            result = self.documents.change(uri, version, changes)
        except UnknownDocumentError:
            log.warning("change for %s, which is not open, ignored", uri)
            return
        self.trackers[uri].update(result)
        self.activation.update_document(uri, self.imports_of(uri))
        self.schedule_decide(self.config.debounce_ms / 1000)

    def close_document(self, uri: str) -> None:
        """A buffer was closed: its packs start their grace period."""
        self.documents.close(uri)
        self.trackers.pop(uri, None)
        self.activation.close_document(uri)
        self.schedule_decide(0)

    def imports_of(self, uri: str) -> list[ImportRef]:
        """The current imports of an open document (empty if unparsed or unknown)."""
        tracker = self.trackers.get(uri)
        return list(tracker.imports) if tracker is not None else []

    def document(self, uri: str) -> Document | None:
        """The open document with this URI, if any."""
        return self.documents.get(uri)

    def pack_for_import(self, ref: ImportRef) -> PackState | None:
        """The installed pack one import triggers (the most specific trigger wins)."""
        best: tuple[int, PackState] | None = None
        for pack in self.packs.values():
            manifest = pack.installed.manifest
            if manifest is None:
                continue
            if not matches_trigger(ref.ecosystem, ref.module, ref.names, manifest.triggers):
                continue
            length = max(
                (
                    len(t)
                    for t in (*manifest.triggers.python_imports, *manifest.triggers.js_imports)
                ),
                default=0,
            )
            if best is None or length > best[0]:
                best = (length, pack)
        return best[1] if best else None

    # -- packs ----------------------------------------------------------------------------------
    def schedule_rescan(self) -> None:
        """Coalesce store changes: rescan once things have been quiet for a moment."""
        if self._loop is None:
            return
        if self._rescan_handle:
            self._rescan_handle.cancel()
        self._rescan_handle = self._loop.call_later(RESCAN_DELAY_S, self._spawn, self.rescan())

    async def rescan(self) -> None:
        """Re-read the store; changed packs are reloaded, removed ones dropped."""
        packs_dir = self.config.packs_dir
        try:
            found = await asyncio.to_thread(active_versions, packs_dir)
        except RemoraError as exc:
            log.error("%s", exc)
            self._show("error", f"Remora: {exc}")
            found = {}
        for name in list(self.packs):
            if name not in found:
                pack = self.packs.pop(name)
                pack.generation += 1
                log.info("pack %s removed from the store", pack.installed.key)
        for name, installed in found.items():
            old = self.packs.get(name)
            if old is not None and old.installed == installed and old.state != "error":
                continue
            if old is not None:
                old.generation += 1
            state = PackState(installed)
            if installed.error:
                state.state, state.reason = "error", installed.error
                log.error("pack %s: %s", installed.key, installed.error)
            self.packs[name] = state
        self.activation.set_catalog(
            {
                name: p.installed.manifest.triggers
                for name, p in self.packs.items()
                if p.installed.manifest is not None
            }
        )
        self._decide()

    def force(self, name: str, active: bool) -> str:
        """Manual activate/deactivate from the editor; returns a one-line confirmation."""
        if name not in self.packs:
            known = ", ".join(sorted(self.packs)) or "none installed"
            raise PackError(f"no installed pack named {name!r} (installed: {known})")
        want = self.activation.decide().get(name)
        triggered = bool(want and want.triggered_by)
        # Reversing an override returns to automatic when automatic already gives the wish.
        if active:
            self.activation.force(name, None if triggered else True)
        else:
            self.activation.force(name, None if not triggered else False)
        self._decide()
        return f"{name} {'activated' if active else 'deactivated'}"

    def schedule_decide(self, delay: float) -> None:
        """Re-decide the active set after ``delay`` seconds (debounce: a newer call wins)."""
        if self._loop is None:
            return
        if self._decide_handle:
            self._decide_handle.cancel()
        self._decide_handle = self._loop.call_later(delay, self._decide)

    def _decide(self) -> None:
        self._decide_handle = None
        wants = self.activation.decide()
        for name, pack in self.packs.items():
            want = wants.get(name)
            if pack.installed.error:
                continue
            if want is None:
                want = Want(name, False, "not imported by any open file", ())
            pack.triggered_by = want.triggered_by
            if want.active and pack.state in {"inactive"}:
                self._load(pack)
            elif want.active and pack.state == "ready":
                why = None if want.reason == "imported" else want.reason
                pack.reason = "; ".join(x for x in (why, pack.load_note) if x) or None
            elif not want.active and pack.state in {"loading", "ready", "error"}:
                # An error stays visible while the pack is wanted; it is retried when wanted again.
                self._unload(pack, want.reason)
            elif not want.active and pack.state == "inactive":
                pack.reason = want.reason
        self._arm_deadline()
        self.publish()

    def _arm_deadline(self) -> None:
        if self._loop is None:
            return
        if self._deadline_handle:
            self._deadline_handle.cancel()
            self._deadline_handle = None
        deadline = self.activation.next_deadline()
        if deadline is not None:
            delay = max(0.0, deadline - time.monotonic()) + 0.01
            self._deadline_handle = self._loop.call_later(delay, self._decide)

    def _load(self, pack: PackState) -> None:
        pack.generation += 1
        pack.state, pack.reason = "loading", None
        generation = pack.generation
        config = self.config

        async def run() -> None:
            try:
                verified = await asyncio.to_thread(
                    verify_pack_dir,
                    pack.installed.path,
                    config.trust_dir,
                    allow_unsigned=config.allow_unsigned,
                )
            except PackError as exc:
                outcome: tuple[State, str | None, VerifiedPack | None] = ("error", str(exc), None)
            except Exception as exc:  # a bug in loading must not kill the session
                log.exception("loading pack %s failed", pack.installed.key)
                outcome = ("error", f"internal error while loading: {exc}", None)
            else:
                outcome = await self._load_parts(verified)
            if pack.generation != generation or self.packs.get(pack.name) is not pack:
                # Superseded by a newer decision or a rescan: drop what the layers loaded,
                # unless a newer load of the same pack is under way (it replaces them).
                current = self.packs.get(pack.name)
                if outcome[0] == "ready" and (current is None or current.state == "inactive"):
                    for listener in self.listeners:
                        listener.pack_unloaded(pack.name)
                return
            pack.state, pack.reason, pack.loaded = outcome
            pack.load_note = pack.reason if pack.state == "ready" else None
            if pack.state == "error":
                log.error("pack %s: %s", pack.installed.key, pack.reason)
            else:
                log.info("pack %s ready", pack.installed.key)
            self.publish()

        self._spawn(run())

    async def _load_parts(
        self, verified: VerifiedPack
    ) -> tuple[State, str | None, VerifiedPack | None]:
        notes: list[str] = []
        for listener in self.listeners:
            try:
                note = await asyncio.to_thread(listener.pack_loaded, verified)
            except PackError as exc:
                return ("error", str(exc), None)
            except Exception as exc:
                log.exception("%s failed to load its part of %s", listener, verified.manifest.key)
                return ("error", f"internal error while loading: {exc}", None)
            if note:
                notes.append(note)
        return ("ready", "; ".join(notes) or None, verified)

    def _unload(self, pack: PackState, reason: str) -> None:
        was_loaded = pack.loaded is not None
        pack.generation += 1
        pack.state, pack.reason, pack.loaded = "inactive", reason, None
        if was_loaded:
            for listener in self.listeners:
                try:
                    listener.pack_unloaded(pack.name)
                except Exception:
                    log.exception("%s failed to unload %s", listener, pack.name)

    def spawn(self, coro: Any) -> None:
        """Run a background coroutine owned by the session (errors are logged by the caller)."""
        self._spawn(coro)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until no load or rescan task is running (tests and benchmarks)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- status ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The ``remora/packStatus`` / ``remora/listPacks`` payload."""
        entries = []
        for name in sorted(self.packs):
            entry = self.packs[name].to_status()
            for listener in self.listeners:
                try:
                    entry.update(listener.status_fields(name))
                except Exception:
                    log.exception("%s failed to report status of %s", listener, name)
            entries.append(entry)
        return {"packs": entries}

    def publish(self, *, force: bool = False) -> None:
        """Send the status if it differs from the last one sent."""
        payload = self.status()
        if not force and payload == self._last_status:
            return
        self._last_status = payload
        self.status_events += 1
        self._publish(payload)

    def active_packs(self) -> Mapping[str, PackState]:
        """Packs that are ready."""
        return {n: p for n, p in self.packs.items() if p.state == "ready"}
