"""The semantic-layer commands of ``remora``: search the installed packs' indexes, build an
index from source folders.

``remora search-index QUERY`` searches the active version of every installed pack (each
verified exactly as the server would before loading it) and prints the best chunks with their
scores and locations (``--json`` for machine-readable output). ``remora index build SRC... -o
DIR`` builds a pack's ``embeddings/`` folder; ``SRC`` may be a folder, a file, or ``pkg:NAME``
for an installed Python package; it prints the manifest's ``embeddings:`` block.
``remora index info DIR`` describes a built folder. Failures print one red line and exit 1.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from remora_lsp.cli.common import command, stderr
from remora_lsp.errors import RemoraError

__all__ = ["index_app", "register", "resolve_source", "search_index_command"]


index_app = typer.Typer(
    help="Build and inspect vector indexes (a pack's embeddings/ folder).", no_args_is_help=True
)


# Shared with the other command modules (remora_lsp.cli.common).
_stderr, _command = stderr, command


def resolve_source(spec: str) -> Path:
    """A source argument as a path: ``pkg:NAME`` is the folder of an installed package."""
    if spec.startswith("pkg:"):
        name = spec[4:]
        try:
            found = importlib.util.find_spec(name) if "." not in name else None
        except (ImportError, ValueError):
            found = None
        if found is None or not found.origin:
            raise typer.BadParameter(f"{spec}: no installed Python package named {name!r}")
        origin = Path(found.origin)
        return origin.parent if origin.name.startswith("__init__.") else origin
    path = Path(spec).expanduser()
    if not path.exists():
        raise typer.BadParameter(f"{spec}: no such file or folder")
    return path


@index_app.command("build")
@_command
def build_command(
    sources: Annotated[
        list[str], typer.Argument(help="Folders, files or pkg:NAME to chunk and index.")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="The folder to write.")],
    library: Annotated[
        str | None,
        typer.Option("--library", help="Keep usage types of this library's family (+ builtins)."),
    ] = None,
    usages_from: Annotated[
        list[str] | None,
        typer.Option("--usages-from", help="Extra sources mined for usage windows only."),
    ] = None,
    model: Annotated[
        str, typer.Option("--model", help="Search model: 'default' or a local folder.")
    ] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Build an index folder (search + usage collections) from source folders."""
    from remora_lsp.retrieval.build import build_embeddings
    from remora_lsp.retrieval.embedding import load_embedder

    paths = [resolve_source(s) for s in sources]
    extra = [resolve_source(s) for s in usages_from or []]
    console = _stderr()

    def progress(stage: str, done: int, total: int) -> None:
        if console.is_terminal and (done == total or done % 200 == 0):
            console.print(f"{stage}: {done}/{total}", end="\r")

    report = build_embeddings(
        paths,
        output,
        library=library,
        usage_sources=extra,
        search_embedder=load_embedder(model),
        progress=progress,
    )
    block = report.manifest_block()
    if as_json:
        data = {
            "folder": str(report.folder),
            "collections": report.collections,
            "bytes": report.bytes,
            "labels": report.labels,
            "embeddings": block,
        }
        typer.echo(json.dumps(data, indent=2))
        return
    out = Console(soft_wrap=True, highlight=False)
    sizes = ", ".join(f"{name}: {n} chunks" for name, n in report.collections.items())
    out.print(f"built {report.folder} ({sizes}; {report.bytes / 1e6:.1f} MB)")
    top = list(report.labels.items())[:8]
    if top:
        out.print("usage types: " + ", ".join(f"{label} ({n})" for label, n in top))
    out.print("manifest block:")
    import yaml

    out.print(yaml.safe_dump({"embeddings": block}, sort_keys=False).rstrip())


@index_app.command("info")
@_command
def info_command(
    folder: Annotated[Path, typer.Argument(help="An index folder or a pack's embeddings/.")],
) -> None:
    """Describe the index collections in a folder."""
    from remora_lsp.retrieval.index import INDEX_FILE, VectorIndex

    found = [folder] if (folder / INDEX_FILE).is_file() else sorted(
        p for p in folder.iterdir() if (p / INDEX_FILE).is_file()
    )  # fmt: skip
    if not found:
        raise typer.BadParameter(f"{folder}: no index.json here or in its sub-folders")
    for path in found:
        meta = VectorIndex.read_meta(path)
        typer.echo(
            f"{path}: {meta['count']} chunks, model {meta['model']} ({meta['dims']} dims), "
            f"fast tier {meta['fast']['kind']} {meta['fast']['dims']}"
        )


@_command
def search_index_command(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    pack: Annotated[
        list[str] | None, typer.Option("--pack", help="Only this pack (repeatable).")
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help="function, method, class, section or usage (repeatable)."),
    ] = None,
    k: Annotated[int, typer.Option("-k", "--top", min=1, max=200, help="How many hits.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
) -> None:
    """Search the indexes of the installed packs (their active versions)."""
    from remora_lsp.config import load_config_file, merge_config
    from remora_lsp.packs.store import active_versions
    from remora_lsp.packs.verify import verify_pack_dir
    from remora_lsp.retrieval.index import ChunkFilter
    from remora_lsp.retrieval.service import SemanticService, load_settings

    config, problems = merge_config()
    console = _stderr()
    for problem in problems:
        console.print(Text(f"warning: {problem}", style="yellow"))
    raw = load_config_file(config.remora_home / "config.yaml").get("semantic")
    settings, problems = load_settings(raw)
    for problem in problems:
        console.print(Text(f"warning: {problem}", style="yellow"))
    service = SemanticService(settings, remora_home=config.remora_home)
    installed = active_versions(config.packs_dir)
    wanted = set(pack) if pack else None
    if wanted:
        missing = sorted(wanted - installed.keys())
        if missing:
            raise typer.BadParameter(f"no installed pack named {', '.join(missing)}")
    for name, item in sorted(installed.items()):
        if wanted is not None and name not in wanted:
            continue
        try:
            verified = verify_pack_dir(
                item.path, config.trust_dir, allow_unsigned=config.allow_unsigned
            )
        except RemoraError as exc:
            console.print(Text(f"warning: skipping {item.key}: {exc}", style="yellow"))
            continue
        note = service.pack_loaded(verified)
        if note:
            console.print(Text(f"warning: {item.key}: {note}", style="yellow"))
    flt = ChunkFilter(
        packs=frozenset(pack) if pack else None, kinds=frozenset(kind) if kind else None
    )
    hits = service.search(query, flt, k)
    if as_json:
        typer.echo(json.dumps([_hit_data(h) for h in hits], indent=2, ensure_ascii=False))
        return
    if not hits:
        typer.echo("no results (no installed pack has an index, or nothing matched)")
        return
    table = Table(show_header=True, header_style="bold")
    for column in ("score", "pack", "kind", "label", "location"):
        table.add_column(column)
    for hit in hits:
        c = hit.chunk
        table.add_row(f"{hit.score:.3f}", hit.index, c.kind, c.label, c.location)
    Console(soft_wrap=True, highlight=False).print(table)


def _hit_data(hit: Any) -> dict[str, Any]:
    c = hit.chunk
    return {
        "score": round(hit.score, 4),
        "pack": hit.index,
        "kind": c.kind,
        "label": c.label,
        "name": c.name,
        "file": c.file,
        "start_line": c.start_line,
        "end_line": c.end_line,
        "text": c.text,
    }


def register(app: typer.Typer) -> None:
    """Add ``remora search-index`` and ``remora index ...`` to ``app``."""
    app.command("search-index")(search_index_command)
    app.add_typer(index_app, name="index")
