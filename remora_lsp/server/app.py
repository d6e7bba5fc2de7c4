"""Builds and runs the Remora language server.

:func:`create_server` is a factory (no module-level server object), so every test gets a fresh
server. Features live in ``remora_lsp.server.features.*`` modules, each with a ``register(ls)``
hook; every handler they register goes through :func:`guarded`, which turns an exception into an
LSP error response (requests) or a log line plus one short message (notifications), so a bug in
one feature never takes the server down.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInternalError
from pygls.lsp.server import LanguageServer

from remora_lsp import __version__
from remora_lsp.config import Config, merge_config
from remora_lsp.errors import RemoraError
from remora_lsp.server.protocol import RemoraProtocol
from remora_lsp.server.session import Session

__all__ = ["RemoraServer", "create_server", "guarded", "run_server"]

log = logging.getLogger("remora_lsp.server")

F = TypeVar("F", bound=Callable[..., Any])

MESSAGE_INTERVAL_S = 30.0
FEATURES = ("documents", "packs", "hover", "semantic", "completion", "scaffold")
# Settings owned by other layers (engine, semantic): not "unknown" to the core config.
FOREIGN_KEYS = frozenset(
    {
        "semantic",
        "registries",
        "engine",
        "model",
        "model_id",
        "device",
        "dtype",
        "max_loras",
        "max_cpu_loras",
        "max_lora_rank",
        "max_model_len",
        "kv_cache_gib",
        "merge_adapter",
        "threads",
        "zero_adapter_for_base",
        "remote_url",
        "remote_model",
        "remote_api_key",
        "remote_timeout_s",
        "restart_backoff_s",
        "restart_backoff_max_s",
    }
)


class RemoraServer(LanguageServer):
    """The pygls server plus the Remora session and settings layers."""

    def __init__(self) -> None:
        super().__init__(
            "remora",
            __version__,
            protocol_cls=RemoraProtocol,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
        self.init_options: dict[str, Any] = {}
        self.client_settings: dict[str, Any] = {}
        config, problems = merge_config()
        self.pending_problems: list[str] = problems
        self.session = Session(config, publish_status=self.publish_status, show_message=self.show)
        self._last_message: dict[str, float] = {}
        # Extension points the feature modules fill in (see remora_lsp.server.features).
        self.hover_providers: list[Callable[[Any, int], Awaitable[str | None]]] = []
        self.code_action_providers: list[
            Callable[[types.CodeActionParams], Awaitable[list[types.CodeAction]]]
        ] = []
        self.code_action_resolvers: list[
            Callable[[types.CodeAction], Awaitable[types.CodeAction | None]]
        ] = []
        self.startup_tasks: list[Callable[[], Awaitable[None]]] = []
        self.shutdown_hooks: list[Callable[[], None]] = []
        self.semantic: Any = None
        self.generative: Any = None
        self.templates: Any = None

    # -- messages to the client -----------------------------------------------------------------
    def publish_status(self, payload: dict[str, Any]) -> None:
        """Send ``remora/packStatus``."""
        try:
            self.protocol.notify("remora/packStatus", payload)
        except Exception:  # no client attached yet, or the pipe closed
            log.debug("could not send remora/packStatus", exc_info=True)

    def show(self, level: str, message: str) -> None:
        """One short ``window/showMessage``; the same text is not repeated within 30 s."""
        now = time.monotonic()
        if now - self._last_message.get(message, -1e9) < MESSAGE_INTERVAL_S:
            return
        self._last_message[message] = now
        kind = {
            "error": types.MessageType.Error,
            "warning": types.MessageType.Warning,
        }.get(level, types.MessageType.Info)
        try:
            self.window_show_message(types.ShowMessageParams(type=kind, message=message))
        except Exception:
            log.debug("could not show message", exc_info=True)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Malformed input and handler bugs: log it, tell the user once, keep serving."""
        log.error("server error (%s): %s", getattr(source, "__name__", source), error)
        self.show("error", "Remora: ignored a malformed message from the editor (see the log)")

    # -- configuration --------------------------------------------------------------------------
    def reload_config(self) -> Config:
        """Re-merge settings from every source; show each problem once."""
        config, problems = merge_config(
            self.init_options, self.client_settings, foreign_keys=FOREIGN_KEYS
        )
        for problem in problems:
            log.warning("config: %s", problem)
            self.show("warning", f"Remora: {problem}")
        logging.getLogger("remora_lsp").setLevel(config.log_level)
        return config


def guarded(ls: RemoraServer, *, request: bool) -> Callable[[F], F]:
    """Wrap a handler so that its exceptions never escape into pygls' loop."""

    def wrap(func: F) -> F:
        def on_error(exc: Exception) -> Any:
            if isinstance(exc, JsonRpcException):
                raise exc
            if isinstance(exc, RemoraError):
                log.warning("%s: %s", func.__name__, exc)
                if request:
                    raise JsonRpcInternalError(str(exc)) from exc
                ls.show("error", f"Remora: {exc}")
                return None
            log.exception("%s failed", func.__name__)
            if request:
                raise JsonRpcInternalError(f"{func.__name__} failed: {exc}") from exc
            ls.show("error", f"Remora: internal error in {func.__name__} (see the log)")
            return None

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await func(*args, **kwargs)
                except Exception as exc:
                    return on_error(exc)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                return on_error(exc)

        return wrapper  # type: ignore[return-value]

    return wrap


def create_server(features: tuple[str, ...] = FEATURES) -> RemoraServer:
    """A fresh server with the given feature modules registered."""
    import importlib

    ls = RemoraServer()
    for name in features:
        module = importlib.import_module(f"remora_lsp.server.features.{name}")
        module.register(ls)
    return ls


def configure_logging(level: str | None, log_file: str | None = None) -> None:
    """Log to stderr (stdout carries the LSP stream), or to ``log_file`` when given."""
    import os

    level = level or os.environ.get("REMORA_LOG_LEVEL") or "INFO"
    log_file = log_file or os.environ.get("REMORA_LOG_FILE")
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8")
        if log_file
        else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("remora_lsp").setLevel(level.upper())
    logging.getLogger("pygls").setLevel(logging.WARNING)


def run_server(
    *, host: str = "", port: int = 0, log_level: str | None = None, log_file: str | None = None
) -> None:
    """Run until the client disconnects: stdio, or TCP when ``port`` is given."""
    configure_logging(log_level, log_file)
    ls = create_server()
    if port:
        ls.start_tcp(host or "127.0.0.1", port)
    else:
        ls.start_io()
