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
        trained: list[Path] = typer.Option(
            None,
            "--trained",
            help="Folders with packs made by `remora train` (NAME.remorapack): used instead "
            "of building the pack source of the same name. Repeatable.",
        ),
    ) -> None:
        """Show packs activating from imports in a real editor session against `remora serve`."""
        for label, path in (("--project", project), ("--packs", packs)):
            if not path.is_dir():
                raise typer.BadParameter(f"{path} is not a folder", param_hint=label)
        from remora_lsp.server.demo import main

        folders = tuple(p.resolve() for p in trained or ())
        raise typer.Exit(main(project.resolve(), packs.resolve(), home.resolve(), folders))
