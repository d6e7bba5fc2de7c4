"""Watches the pack store and the trust folder and calls back when anything in them changes.

A thin wrapper over ``watchdog``: events arrive on watchdog's thread and are handed to the
callback, which must be thread-safe (the server passes ``loop.call_soon_threadsafe``). Bursts are
not coalesced here; the receiver debounces. Events under hidden folders (the install staging area
``.tmp``, lock files in ``.locks``) are ignored, so a half-extracted pack never causes a rescan of
its own; a rename out of them (the atomic install) does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

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
        roots = [str(f) for f in self._folders]

        def hidden(path: str) -> bool:
            # Staging (.tmp), lock files (.locks) and temporary markers never count as changes.
            for root in roots:
                if path == root or path.startswith(root + "/"):
                    return any(part.startswith(".") for part in path[len(root) :].split("/"))
            return False

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in {"opened", "closed_no_write"}:
                    return
                path = str(event.src_path)
                dest = str(getattr(event, "dest_path", "") or "")
                if hidden(path) and (not dest or hidden(dest)):
                    return
                log.debug("store change: %s %s", event.event_type, dest or path)
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
