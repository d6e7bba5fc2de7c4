"""The ``remora`` command line: one typer app; each feature registers its own sub-commands.

Heavy modules (the server, engines, FAISS) are imported inside the command that needs them so
that ``remora --help`` stays instant.
"""

from __future__ import annotations

import typer

from remora_lsp import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="remora",
    help="Remora: library-specialised AI help for any LSP editor, running on your own machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"remora {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        callback=_version_callback,
        is_eager=True,
    ),
) -> None:
    """Remora language server and Language Pack tools."""


def _register_commands() -> None:
    from remora_lsp.cli.demo import register as register_demo
    from remora_lsp.cli.models import register as register_models
    from remora_lsp.cli.packs import register as register_packs
    from remora_lsp.cli.registry import register as register_registry
    from remora_lsp.cli.search import register as register_search
    from remora_lsp.cli.serve import register as register_serve
    from remora_lsp.cli.train import register as register_train

    for register in (
        register_serve,
        register_demo,
        register_packs,
        register_registry,
        register_search,
        register_models,
        register_train,
    ):
        register(app)


_register_commands()


def main() -> None:
    """Entry point of the ``remora`` console script."""
    app()
