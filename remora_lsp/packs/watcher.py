"""Watches the pack store and the trust folder and calls back when anything in them changes.

A thin wrapper over ``watchdog``: events arrive on watchdog's thread and are handed to the
callback, which must be thread-safe (the server passes ``loop.call_soon_threadsafe``). Bursts are
not coalesced here; the receiver debounces. Events inside the install staging area are ignored,
so a half-extracted pack never causes a rescan of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from remora_lsp.packs.store import STAGING_DIR

__all__ = ["StoreWatcher"]

log = logging.getLogger(__name__)


class StoreWatcher:
    """Runs a watchdog observer over some folders; ``on_change()`` is called from its thread."""

    def __init__(self, folders: Iterable[Path], on_change: Callable[[], None]) -> None:
        self._folders = [Path(f) for f in folders]
        self._on_change = on_change
        self._observer: Any = None

    def start(self) -> None:
        """Create missing folders and start watching; failures are logged, never raised."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        callback = self._on_change

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                path = str(event.src_path)
                if f"/{STAGING_DIR}/" in path or path.endswith(f"/{STAGING_DIR}"):
                    dest = str(getattr(event, "dest_path", "") or "")
                    if not dest or f"/{STAGING_DIR}/" in dest:
                        return
                if event.event_type in {"opened", "closed_no_write"}:
                    return
                log.debug("store change: %s %s", event.event_type, path)
                try:
                    callback()
                except Exception:  # the callback must never kill the observer thread
                    log.exception("pack store change callback failed")

        try:
            observer = Observer()
            for folder in self._folders:
                folder.mkdir(parents=True, exist_ok=True)
                observer.schedule(_Handler(), str(folder), recursive=True)
            observer.daemon = True
            observer.start()
        except Exception as exc:
            log.warning(
                "cannot watch %s (%s); restart the server to see new packs",
                ", ".join(map(str, self._folders)),
                exc,
            )
            return
        self._observer = observer
        log.info("watching %s for pack changes", ", ".join(map(str, self._folders)))

    def stop(self) -> None:
        """Stop the observer thread."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=2)
            self._observer = None
