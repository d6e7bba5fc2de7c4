"""The registry commands of ``remora``: run a registry (``registry serve``), manage its tokens
(``registry token create|revoke|list``), yank versions, and talk to registries as a user
(``publish``, ``search``, ``update``; ``install pack:NAME[@RANGE]`` lives with ``install``).

Like the pack commands, every failure is one red ``error:`` line and exit code 1; registry
answers (401, 403, 404, 409, 413, 422) and an unreachable registry become such a line. Tokens
are read from options or the environment and never printed, except once by ``token create``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from remora_lsp.cli.packs import _command, _config, _print_json, _progress, _stderr, _stdout

if TYPE_CHECKING:
    from remora_lsp.registry.storage import Storage

__all__ = ["install_from_registry", "register"]

registry_app = typer.Typer(help="Run a pack registry and manage its tokens.", no_args_is_help=True)
token_app = typer.Typer(help="Registry access tokens (stored hashed).", no_args_is_help=True)
registry_app.add_typer(token_app, name="token")

StorageOpt = Annotated[
    str,
    typer.Option(
        "--storage",
        metavar="URL",
        help="Where packs are kept: a folder, file://DIR or s3://BUCKET[/PREFIX].",
    ),
]
S3EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--s3-endpoint",
        envvar="REMORA_S3_ENDPOINT",
        metavar="URL",
        help="S3-compatible endpoint (default: AWS).",
    ),
]
RegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--registry",
        metavar="URL",
        help="Registry URL (default: REMORA_REGISTRY, then config.yaml `registries:`).",
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        metavar="TOKEN",
        help="Registry token (default: REMORA_REGISTRY_TOKEN or config.yaml).",
        show_default=False,
    ),
]


def _storage(url: str, s3_endpoint: str | None) -> Storage:
    from remora_lsp.registry.storage import open_storage

    return open_storage(url, s3_endpoint=s3_endpoint)


# ---------------------------------------------------------------------------------------------
# remora registry ...


@registry_app.command("serve")
@_command
def serve_command(
    storage: StorageOpt = "./remora-registry",
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8750,
    publish_token: Annotated[
        str | None,
        typer.Option(
            "--publish-token",
            envvar="REMORA_PUBLISH_TOKEN",
            help="A token that may publish to every namespace (besides stored tokens).",
            show_default=False,
        ),
    ] = None,
    max_upload: Annotated[
        int, typer.Option("--max-upload-bytes", help="Largest accepted upload.")
    ] = 2 * 1024**3,
    s3_endpoint: S3EndpointOpt = None,
) -> None:
    """Run the registry's HTTP API (OpenAPI at /docs) until interrupted."""
    from remora_lsp.registry.server import serve

    store = _storage(storage, s3_endpoint)
    _stdout().print(Text(f"remora registry on http://{host}:{port} storing in {store.url}"))
    serve(store, host, port, publish_token=publish_token, max_upload_bytes=max_upload)


@token_app.command("create")
@_command
def token_create(
    storage: StorageOpt,
    scope: Annotated[str, typer.Option("--scope", help="read or publish.")] = "read",
    namespace: Annotated[
        list[str] | None,
        typer.Option("--namespace", "-n", help="Namespace it covers (repeatable; default: all)."),
    ] = None,
    label: Annotated[str, typer.Option("--label", help="A note to recognise it by.")] = "",
    s3_endpoint: S3EndpointOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create a token; it is printed once and stored only as a hash."""
    from remora_lsp.registry.service import create_token

    if scope not in ("read", "publish"):
        raise typer.BadParameter(f"--scope must be read or publish, got {scope!r}")
    record, secret = create_token(
        _storage(storage, s3_endpoint),
        "publish" if scope == "publish" else "read",
        namespace or ["*"],
        label,
    )
    if as_json:
        _print_json({**record.to_data(), "token": secret})
        return
    spaces = ", ".join(record.namespaces)
    _stdout().print(Text(f"token {record.token_id} ({record.scope}; namespaces: {spaces}):"))
    typer.echo(secret)


@token_app.command("revoke")
@_command
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (from `token create`/`list`).")],
    storage: StorageOpt,
    s3_endpoint: S3EndpointOpt = None,
) -> None:
    """Revoke a token (takes effect within 2 seconds on running servers)."""
    from remora_lsp.registry.service import revoke_token

    record = revoke_token(_storage(storage, s3_endpoint), token_id)
    _stdout().print(Text(f"revoked token {record.token_id} ({record.scope})"))


@token_app.command("list")
@_command
def token_list(
    storage: StorageOpt,
    s3_endpoint: S3EndpointOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tokens as JSON.")] = False,
) -> None:
    """Show token ids, scopes and namespaces (never the tokens)."""
    from remora_lsp.registry.service import list_tokens

    records = list_tokens(_storage(storage, s3_endpoint))
    if as_json:
        _print_json([r.to_data() for r in records])
        return
    table = Table(box=None, padding=(0, 2), header_style="bold")
    for column in ("id", "scope", "namespaces", "label"):
        table.add_column(column)
    for r in records:
        table.add_row(r.token_id, r.scope, ", ".join(r.namespaces), r.label)
    _stdout().print(table)


def _one_registry(registry: str | None, token: str | None) -> Any:
    from remora_lsp.registry.client import RegistryClient, resolve_registries

    return RegistryClient(resolve_registries(_config(), registry, token)[0])


@registry_app.command("yank")
@_command
def yank_command(
    spec: Annotated[str, typer.Argument(metavar="NAME@VERSION", help="The version to yank.")],
    registry: RegistryOpt = None,
    token: TokenOpt = None,
    undo: Annotated[bool, typer.Option("--undo", help="Unyank instead.")] = False,
) -> None:
    """Yank a version: range resolution skips it; pinned installs still work."""
    name, _, version = spec.partition("@")
    if not version:
        raise typer.BadParameter(f"expected NAME@VERSION, got {spec!r}")
    with _one_registry(registry, token) as client:
        meta = client.set_yanked(name, version, not undo)
    state = "yanked" if meta["yanked"] else "unyanked"
    _stdout().print(Text(f"{name}@{version} {state}"))


# ---------------------------------------------------------------------------------------------
# remora publish / search / update


@_command
def publish_command(
    file: Annotated[Path, typer.Argument(help="The .remorapack to publish.")],
    registry: RegistryOpt = None,
    token: TokenOpt = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", help="Namespace of a new pack (default public)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Upload a pack archive to a registry (needs a publish token)."""
    if not file.is_file():
        raise typer.BadParameter(f"{file}: no such file")
    with _one_registry(registry, token) as client:
        status, data = client.publish(file, namespace)
    if as_json:
        _print_json(data)
        return
    key = f"{data['name']}@{data['version']}"
    verb = "published" if status == 201 else "already published (identical bytes)"
    _stdout().print(Text(f"{verb} {key} in namespace {data['namespace']} ({data['size']} bytes)"))


@_command
def search_command(
    text: Annotated[str, typer.Argument(help="Words to look for (empty: everything).")] = "",
    registry: RegistryOpt = None,
    token: TokenOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Search the registries for packs."""
    from remora_lsp.registry.client import RegistryClient, resolve_registries
    from remora_lsp.registry.errors import RegistryUnreachable

    found: list[dict[str, Any]] = []
    refs = resolve_registries(_config(), registry, token)
    for ref in refs:
        with RegistryClient(ref) as client:
            try:
                found += [{**p, "registry": ref.url} for p in client.search(text)]
            except RegistryUnreachable as exc:
                if len(refs) == 1:
                    raise
                _stderr().print(Text(f"warning: {exc}", style="yellow"))
    if as_json:
        _print_json(found)
        return
    if not found:
        _stdout().print(f"no packs match {text!r}")
        return
    table = Table(box=None, padding=(0, 2), header_style="bold")
    for column in ("name", "latest", "namespace", "description"):
        table.add_column(column)
    for p in found:
        table.add_row(p["name"], p["latest"], p["namespace"], Text(p["description"][:60]))
    _stdout().print(table)


@_command
def update_command(
    name: Annotated[str | None, typer.Argument(help="Pack to update (default: all).")] = None,
    registry: RegistryOpt = None,
    token: TokenOpt = None,
    major: Annotated[
        bool, typer.Option("--major", help="Also move to a newer major version.")
    ] = False,
    allow_unsigned: Annotated[
        bool, typer.Option("--allow-unsigned", help="Accept unsigned packs (development).")
    ] = False,
) -> None:
    """Install newer versions of installed packs (within the same major by default)."""
    from remora_lsp.registry.client import resolve_registries, update_from_registries

    config = _config()
    refs = resolve_registries(config, registry, token)
    with _progress() as progress:
        changes = update_from_registries(
            [name] if name else None,
            refs,
            config,
            allow_major=major,
            allow_unsigned=allow_unsigned,
            progress=progress,
        )
    if not changes:
        _stdout().print("no packs installed")
    for pack, old, new in changes:
        line = f"updated {pack} {old} → {new}" if new else f"{pack} {old} is up to date"
        _stdout().print(Text(line))


def install_from_registry(
    spec: str, registry: str | None, token: str | None, allow_unsigned: bool
) -> tuple[Any, str]:
    """``remora install pack:NAME[@RANGE]``: resolve, download, install; return the result and
    the registry it came from."""
    from remora_lsp.registry.client import (
        install_from_registries,
        parse_pack_spec,
        resolve_registries,
    )

    config = _config()
    parsed = parse_pack_spec(spec)
    refs = resolve_registries(config, registry, token)
    with _progress() as progress:
        result, resolved = install_from_registries(
            parsed, refs, config, allow_unsigned=allow_unsigned, progress=progress
        )
    note = " (yanked)" if resolved.yanked else ""
    return result, f"{resolved.ref.label}{note}"


def register(app: typer.Typer) -> None:
    """Add ``registry`` (serve, token, yank), ``publish``, ``search`` and ``update``."""
    app.add_typer(registry_app, name="registry")
    app.command("publish")(publish_command)
    app.command("search")(search_command)
    app.command("update")(update_command)
