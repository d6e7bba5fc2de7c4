"""``remora demo``: the scripted editor session on the sample project (the README's main job)."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]

REPO = Path(__file__).resolve().parents[2]


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the root app."""

    @app.command()
    def demo(
        project: Path = typer.Option(
            REPO / "examples" / "sample-project", help="The project the scripted editor opens."
        ),
        packs: Path = typer.Option(REPO / "packs", help="Pack source folders to install."),
        home: Path = typer.Option(
            REPO / ".remora-demo", help="A private REMORA_HOME for the demo (wiped first)."
        ),
    ) -> None:
        """Show packs activating from imports in a real editor session against `remora serve`."""
        for label, path in (("--project", project), ("--packs", packs)):
            if not path.is_dir():
                raise typer.BadParameter(f"{path} is not a folder", param_hint=label)
        from remora_lsp.server.demo import main

        raise typer.Exit(main(project.resolve(), packs.resolve(), home.resolve()))
