"""``remora serve``: run the language server over stdio (default) or TCP."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the root app."""

    @app.command()
    def serve(
        tcp: str = typer.Option(
            "", "--tcp", metavar="HOST:PORT", help="Listen on TCP instead of stdio."
        ),
        log_level: str = typer.Option(
            "",
            "--log-level",
            help="DEBUG, INFO, WARNING or ERROR (default: REMORA_LOG_LEVEL or INFO).",
        ),
        stdio: bool = typer.Option(
            False, "--stdio", help="Use stdio (the default; accepted because clients pass it)."
        ),
        log_file: str = typer.Option(
            "", "--log-file", help="Write the log to this file instead of stderr (REMORA_LOG_FILE)."
        ),
    ) -> None:
        """Run the Remora language server (stdio unless --tcp is given)."""
        host, port = "", 0
        if tcp and stdio:
            raise typer.BadParameter("choose one of --stdio and --tcp", param_hint="--tcp")
        if tcp:
            host, sep, port_text = tcp.rpartition(":")
            if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise typer.BadParameter(
                    "expected HOST:PORT, e.g. 127.0.0.1:2087", param_hint="--tcp"
                )
            host, port = host or "127.0.0.1", int(port_text)
        from remora_lsp.server.app import run_server

        run_server(host=host, port=port, log_level=log_level or None, log_file=log_file or None)
