"""The pack commands of ``remora``: build, sign, verify and inspect archives; keys and trust;
install, list, remove and choose the active version of installed packs.

Every command exits 0 only on success; a refusal prints one red line (the error's message) on
stderr and exits 1, never a traceback. ``--json`` prints machine-readable output on stdout.
Progress bars (hashing, extracting) go to stderr and only when it is a terminal. The store is
the one named by the merged config (``REMORA_HOME``, ``$REMORA_HOME/config.yaml``, env vars).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from remora_lsp.cli.common import command, fail, stderr, stdout
from remora_lsp.config import Config, merge_config

__all__ = ["register"]

P = ParamSpec("P")
R = TypeVar("R")

pack_app = typer.Typer(
    help="Build, sign, verify and inspect .remorapack archives.", no_args_is_help=True
)
key_app = typer.Typer(help="Ed25519 signing keys for packs.", no_args_is_help=True)
trust_app = typer.Typer(
    help="Public keys whose pack signatures you accept (the trust store).", no_args_is_help=True
)


# ---------------------------------------------------------------------------------------------
# Plumbing


# Shared with the other command modules (remora_lsp.cli.common).
_stdout, _stderr, _fail, _command = stdout, stderr, fail, command


def _config() -> Config:
    config, problems = merge_config()
    for problem in problems:
        _stderr().print(Text(f"warning: {problem}", style="yellow"))
    return config


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=False))


class _Bar:
    """Adapts a rich progress display to :class:`remora_lsp.packs.archive.Progress`."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._task: Any = None

    def begin(self, label: str, total_bytes: int) -> None:
        self._task = self._progress.add_task(label, total=max(total_bytes, 1))

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, nbytes)

    def end(self) -> None:
        if self._task is not None:
            task = self._task
            self._progress.update(task, completed=self._progress.tasks[task].total)
            self._task = None


@contextmanager
def _progress() -> Iterator[Any]:
    """A progress sink: rich bars on an interactive stderr, silence otherwise."""
    from remora_lsp.packs.archive import SILENT_PROGRESS

    console = _stderr()
    if not console.is_terminal:
        yield SILENT_PROGRESS
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        yield _Bar(bar)


def _split_key(spec: str, *, need_version: bool) -> tuple[str, str | None]:
    name, sep, version = spec.partition("@")
    if need_version and not (sep and version):
        raise typer.BadParameter(f"expected NAME@VERSION, e.g. fastapi@0.1.0, got {spec!r}")
    if sep and not version:
        raise typer.BadParameter(f"missing version after '@' in {spec!r}")
    return name, version or None


# ---------------------------------------------------------------------------------------------
# remora pack ...


@pack_app.command("build")
@_command
def pack_build(
    src: Annotated[Path, typer.Argument(help="Pack source folder (holds manifest.yaml).")],
    out: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Archive to write (default NAME-VERSION.remorapack)."),
    ] = None,
    sign: Annotated[
        Path | None, typer.Option("--sign", metavar="KEYFILE", help="Sign with this private key.")
    ] = None,
) -> None:
    """Build a .remorapack from a pack source folder, computing every file's digest."""
    from remora_lsp.packs.archive import PACK_SUFFIX, build_pack
    from remora_lsp.packs.manifest import load_manifest
    from remora_lsp.packs.signing import load_private_key

    if sign is not None:
        load_private_key(sign)  # fail before hashing anything
    if out is None:
        source_manifest = load_manifest(src)
        out = Path(f"{source_manifest.name}-{source_manifest.version}{PACK_SUFFIX}")
    with _progress() as progress:
        manifest = build_pack(src, out, sign_key=sign, progress=progress)
    size = sum(e.size for e in manifest.files.values())
    signed = f"signed with key {manifest.signature.key_id}" if manifest.signature else "UNSIGNED"
    _stdout().print(
        Text(f"built {manifest.key} → {out} ({len(manifest.files)} files, {size} bytes, {signed})")
    )


@pack_app.command("verify")
@_command
def pack_verify(
    target: Annotated[Path, typer.Argument(help="A .remorapack file or an installed pack folder.")],
    allow_unsigned: Annotated[
        bool, typer.Option("--allow-unsigned", help="Accept a pack that carries no signature.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check signature, trust and every digest, without installing or extracting anything."""
    from remora_lsp.packs.archive import verify_archive
    from remora_lsp.packs.verify import verify_pack_dir

    config = _config()
    allow = allow_unsigned or config.allow_unsigned
    if target.is_dir():
        verified = verify_pack_dir(target, config.trust_dir, allow_unsigned=allow)
        manifest, signer = verified.manifest, verified.signed_by
    else:
        with _progress() as progress:
            manifest, signer = verify_archive(
                target, config.trust_dir, allow_unsigned=allow, progress=progress
            )
    if as_json:
        _print_json(
            {
                "ok": True,
                "pack": manifest.key,
                "signed_by": signer,
                "key_id": manifest.signature.key_id if manifest.signature else None,
                "files": len(manifest.files),
            }
        )
        return
    who = f"signed by trusted key {signer!r}" if signer else "UNSIGNED (allowed)"
    _stdout().print(
        Text(f"OK {manifest.key}: {who}; {len(manifest.files)} files match their digests")
    )


def _signature_status(manifest: Any, trust_dir: Path) -> dict[str, Any]:
    from remora_lsp.errors import SignatureError
    from remora_lsp.packs.signing import verify_manifest_signature

    if manifest.signature is None:
        return {"signed": False, "key_id": None, "trusted_as": None, "problem": "unsigned"}
    status: dict[str, Any] = {"signed": True, "key_id": manifest.signature.key_id}
    try:
        status.update(trusted_as=verify_manifest_signature(manifest, trust_dir), problem=None)
    except SignatureError as exc:
        status.update(trusted_as=None, problem=str(exc))
    return status


@pack_app.command("inspect")
@_command
def pack_inspect(
    file: Annotated[Path, typer.Argument(help="A .remorapack file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Show a pack's manifest, files and signature status (digests are not re-hashed)."""
    from remora_lsp.packs.archive import PackArchive

    config = _config()
    with PackArchive(file) as archive:
        manifest = archive.manifest
        members = {
            name: {"size": info.file_size, "compressed": info.compress_size}
            for name, info in sorted(archive.members.items())
        }
        stats = {
            "members": len(archive.members),
            "uncompressed_bytes": archive.total_bytes,
            "compressed_bytes": archive.compressed_bytes,
        }
    signature = _signature_status(manifest, config.trust_dir)
    if as_json:
        _print_json(
            {
                "manifest": manifest.to_data(),
                "archive": {**stats, "files": members},
                "signature": signature,
            }
        )
        return
    out = _stdout()
    out.print(Text(f"{manifest.key}", style="bold"), Text(f" (format {manifest.format})"))
    if manifest.description:
        out.print(Text(manifest.description))
    if manifest.library:
        lib = manifest.library
        out.print(Text(f"library: {lib.name} ({lib.ecosystem}) {lib.versions or 'any version'}"))
    triggers = [*manifest.triggers.python_imports, *manifest.triggers.js_imports]
    out.print(Text(f"triggers: {', '.join(triggers) or '-'}"))
    for adapter in manifest.adapters:
        out.print(
            Text(
                f"adapter {adapter.role}: {adapter.path} for {adapter.base_model.id} "
                f"(r={adapter.rank}, alpha={adapter.alpha:g})"
            )
        )
    if manifest.embeddings:
        emb = manifest.embeddings
        out.print(Text(f"embeddings: {emb.model}, {emb.dims} dims, {emb.chunks} chunks"))
    out.print(Text(f"templates: {', '.join(manifest.templates) or '-'}"))
    out.print(Text(f"tools: {', '.join(t.name for t in manifest.tools) or '-'}"))
    if signature["trusted_as"]:
        sig = f"signed by trusted key {signature['trusted_as']!r} ({signature['key_id']})"
    elif signature["signed"]:
        sig = f"signed with key {signature['key_id']}, NOT accepted: {signature['problem']}"
    else:
        sig = "UNSIGNED"
    out.print(Text(f"signature: {sig}"))
    table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
    table.add_column("file")
    table.add_column("bytes", justify="right")
    table.add_column("sha256")
    for name, entry in sorted(manifest.files.items()):
        table.add_row(name, str(entry.size), entry.sha256[:16] + "…")
    out.print(table)
    out.print(
        Text(
            f"{stats['members']} members, {stats['uncompressed_bytes']} bytes "
            f"({stats['compressed_bytes']} compressed); run `remora pack verify` to check digests"
        )
    )


@pack_app.command("sign")
@_command
def pack_sign(
    file: Annotated[Path, typer.Argument(help="A .remorapack file, re-signed in place.")],
    key: Annotated[Path, typer.Option("--key", metavar="KEYFILE", help="Private key file.")],
) -> None:
    """Sign (or re-sign) an archive in place; its digests are checked first."""
    from remora_lsp.packs.archive import sign_archive

    with _progress() as progress:
        manifest = sign_archive(file, key, progress=progress)
    assert manifest.signature is not None
    _stdout().print(Text(f"signed {manifest.key} with key {manifest.signature.key_id} → {file}"))


# ---------------------------------------------------------------------------------------------
# remora key ... / remora trust ...


@key_app.command("generate")
@_command
def key_generate(
    out: Annotated[
        Path, typer.Option("--output", "-o", metavar="KEYFILE", help="Private key file to write.")
    ],
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing key files.")] = False,
) -> None:
    """Create an ed25519 key pair: KEYFILE (private, mode 0600) and KEYFILE.pub."""
    from remora_lsp.packs.signing import generate_keypair

    kid = generate_keypair(out, overwrite=force)
    _stdout().print(Text(f"key {kid}: private key {out}, public key {out}.pub"))


@trust_app.command("add")
@_command
def trust_add(
    pubkey: Annotated[Path, typer.Argument(help="Public key file (KEYFILE.pub).")],
    name: Annotated[
        str | None, typer.Option("--name", help="Name for the key (default: the file name).")
    ] = None,
) -> None:
    """Trust packs signed by this public key."""
    from remora_lsp.packs.trust import add_trusted_key

    key = add_trusted_key(_config().trust_dir, pubkey, name=name)
    _stdout().print(Text(f"trusted key {key.key_id} as {key.name!r}"))


@trust_app.command("list")
@_command
def trust_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print the keys as JSON.")] = False,
) -> None:
    """Show the trusted keys."""
    from remora_lsp.packs.trust import list_trusted_keys

    keys = list_trusted_keys(_config().trust_dir)
    if as_json:
        _print_json([k.to_data() for k in keys])
        return
    if not keys:
        _stdout().print("no trusted keys; add one with `remora trust add KEYFILE.pub`")
        return
    table = Table(box=None, padding=(0, 2), header_style="bold")
    for column in ("name", "key id", "file"):
        table.add_column(column)
    for k in keys:
        table.add_row(k.name, k.key_id, str(k.path))
    _stdout().print(table)


@trust_app.command("remove")
@_command
def trust_remove(
    name: Annotated[str, typer.Argument(help="Name (or key id) of the trusted key.")],
) -> None:
    """Stop trusting a key; packs it signed no longer load."""
    from remora_lsp.packs.trust import remove_trusted_key

    key = remove_trusted_key(_config().trust_dir, name)
    _stdout().print(Text(f"removed trusted key {key.name!r} ({key.key_id})"))


# ---------------------------------------------------------------------------------------------
# remora install / list / remove / use


@_command
def install_command(
    source: Annotated[
        str,
        typer.Argument(
            metavar="FILE|DIR|pack:NAME[@RANGE]",
            help="A .remorapack, a pack folder, or pack:NAME[@RANGE] from a registry "
            "(ranges: ^1.2, ~1.2.3, >=1.0,<2, 1.2.3).",
        ),
    ],
    allow_unsigned: Annotated[
        bool,
        typer.Option("--allow-unsigned", help="Install a pack with no signature (development)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            metavar="URL",
            help="Registry for pack:NAME (default: REMORA_REGISTRY, then config.yaml).",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            metavar="TOKEN",
            help="Registry read token (default: REMORA_REGISTRY_TOKEN or config.yaml).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Verify and install a pack from a file, a folder or a registry (pack:NAME[@RANGE])."""
    from remora_lsp.packs.install import install_pack_result

    origin = ""
    if source.startswith("pack:"):
        from remora_lsp.cli.registry import install_from_registry

        result, where = install_from_registry(source, registry, token, allow_unsigned)
        origin = f" from {where}"
    else:
        if registry or token:
            raise typer.BadParameter("--registry and --token apply only to pack:NAME[@RANGE]")
        config = _config()
        with _progress() as progress:
            result = install_pack_result(Path(source), config, allow_unsigned, progress=progress)
    signer = result.signed_by
    if as_json:
        _print_json(
            {
                "pack": result.pack.key,
                "path": str(result.pack.path),
                "action": result.action,
                "signed_by": signer,
            }
        )
        return
    label = f"signed by {signer!r}" if signer else "UNSIGNED"
    verb = {"installed": "installed", "replaced": "reinstalled", "unchanged": "already installed"}
    _stdout().print(
        Text(f"{verb[result.action]} {result.pack.key}{origin} ({label}) in {result.pack.path}")
    )


@_command
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the packs as JSON.")] = False,
) -> None:
    """Show installed packs: versions, which is active, and who signed them."""
    from remora_lsp.packs.install import list_packs

    listing = list_packs(_config())
    if as_json:
        _print_json([p.to_data() for p in listing])
        return
    if not listing:
        _stdout().print("no packs installed; install one with `remora install FILE.remorapack`")
        return
    table = Table(box=None, padding=(0, 2), header_style="bold")
    for column in ("", "name", "version", "signed by", "description"):
        table.add_column(column)
    for p in listing:
        mark = "*" if p.active else ""
        if p.error:
            who = Text(f"ERROR: {p.error}", style="red")
        elif p.signed_by:
            who = Text(p.signed_by, style="green")
        elif not p.signed:
            who = Text("UNSIGNED", style="bold yellow")
        else:
            who = Text(f"NOT TRUSTED: {p.trust}", style="red")
        table.add_row(
            mark,
            p.name,
            p.version + (" (pinned)" if p.pinned else ""),
            who,
            Text(p.description[:60]),
        )
    _stdout().print(table)
    _stdout().print("* = active version")


@_command
def remove_command(
    spec: Annotated[str, typer.Argument(metavar="NAME[@VERSION]", help="What to remove.")],
) -> None:
    """Remove one version of a pack, or all its versions."""
    from remora_lsp.packs.install import remove_pack

    name, version = _split_key(spec, need_version=False)
    removed = remove_pack(name, version, _config())
    _stdout().print(Text(f"removed {', '.join(removed)}"))


@_command
def use_command(
    spec: Annotated[str, typer.Argument(metavar="NAME@VERSION", help="Version to make active.")],
) -> None:
    """Make one installed version of a pack the active one."""
    from remora_lsp.packs.install import use_pack

    name, version = _split_key(spec, need_version=True)
    assert version is not None
    pack = use_pack(name, version, _config())
    _stdout().print(Text(f"{pack.key} is now the active version of {pack.name}"))


def register(app: typer.Typer) -> None:
    """Add ``pack``, ``key``, ``trust``, ``install``, ``list``, ``remove`` and ``use``."""
    app.add_typer(pack_app, name="pack")
    app.add_typer(key_app, name="key")
    app.add_typer(trust_app, name="trust")
    app.command("install")(install_command)
    app.command("list")(list_command)
    app.command("remove")(remove_command)
    app.command("use")(use_command)
