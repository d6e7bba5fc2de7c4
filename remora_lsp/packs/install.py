"""Changes the local pack store: install a pack, remove one, pick the active version, list them.

Install (see ``docs/pack-format.md``, "Installing") verifies the archive completely (trust
policy, every digest, every refusal rule) before writing anything, then, holding an exclusive
``flock`` on ``<packs>/.locks/<name>.lock``:

1. deletes stale staging folders of that pack left by a killed install;
2. returns at once if the same manifest is already installed and still verifies;
3. extracts into ``<packs>/.tmp/<name>@<random>/``, re-verifies the extracted folder with
   :func:`~remora_lsp.packs.verify.verify_pack_dir`, and ``rename``\\ s it to
   ``<packs>/<name>/<version>/`` (a previous copy of the same version is moved aside first and
   deleted after).

A failure at any step deletes the staging folder; a killed process leaves only a staging folder,
which the store reader never scans and the next install of that pack deletes. Removal moves the
folder into the staging area before deleting it, so readers never see half a pack.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

from remora_lsp.config import Config, merge_config
from remora_lsp.errors import PackError, StoreError
from remora_lsp.packs.archive import (
    DEFAULT_LIMITS,
    SILENT_PROGRESS,
    Limits,
    PackArchive,
    Progress,
    build_pack,
    write_pack_archive,
)
from remora_lsp.packs.manifest import MANIFEST_NAME, NAME_RE, SEMVER_RE, load_manifest
from remora_lsp.packs.store import (
    ACTIVE_FILE,
    STAGING_DIR,
    InstalledPack,
    active_versions,
    list_installed,
    read_active_marker,
    semver_key,
    write_active_marker,
)
from remora_lsp.packs.verify import pack_folder_files, verify_pack_dir

__all__ = [
    "LOCKS_DIR",
    "InstallResult",
    "PackListing",
    "StorePaths",
    "install_pack",
    "install_pack_result",
    "list_packs",
    "pack_lock",
    "remove_pack",
    "store_paths",
    "use_pack",
]

LOCKS_DIR = ".locks"
_SPOOL_BYTES = 64 * 1024 * 1024
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class StorePaths:
    """Where the store and the trust folder are, and whether unsigned packs are allowed."""

    packs_dir: Path
    trust_dir: Path
    allow_unsigned: bool = False

    @classmethod
    def from_config(cls, config: Config) -> StorePaths:
        """The paths a :class:`~remora_lsp.config.Config` names."""
        return cls(config.packs_dir, config.trust_dir, config.allow_unsigned)


def store_paths(config_or_paths: Config | StorePaths | None = None) -> StorePaths:
    """Normalise the store argument; None means the merged config (``REMORA_HOME`` etc.)."""
    if isinstance(config_or_paths, StorePaths):
        return config_or_paths
    if config_or_paths is None:
        config_or_paths, _ = merge_config()
    return StorePaths.from_config(config_or_paths)


def _unsigned_allowed(paths: StorePaths, requested: bool) -> bool:
    env = os.environ.get("REMORA_ALLOW_UNSIGNED", "").strip().lower() in _TRUE
    return requested or paths.allow_unsigned or env


def _check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise StoreError(f"{name!r} is not a pack name (a-z, 0-9, '_' or '-', at most 64)")


def _check_version(version: str) -> None:
    if not SEMVER_RE.match(version):
        raise StoreError(f"{version!r} is not a semantic version such as 1.2.3")


def _fsync_dir(path: Path) -> None:
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def pack_lock(packs_dir: Path, name: str, *, blocking: bool = True) -> Iterator[bool]:
    """Hold the per-pack exclusive lock; yields False if ``blocking`` is off and it is taken."""
    _check_name(name)
    locks = packs_dir / LOCKS_DIR
    locks.mkdir(parents=True, exist_ok=True)
    fd = os.open(locks / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _staging_root(packs_dir: Path) -> Path:
    root = packs_dir / STAGING_DIR
    root.mkdir(parents=True, exist_ok=True)
    return root


def _clean_staging(packs_dir: Path, holding: str) -> None:
    """Delete staging entries nobody is using: ours (we hold the lock) and unlocked ones."""
    root = packs_dir / STAGING_DIR
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return
    for entry in entries:
        owner = entry.name.partition("@")[0]
        if owner == holding or not NAME_RE.match(owner):
            _delete(entry)
            continue
        with pack_lock(packs_dir, owner, blocking=False) as free:
            if free:
                _delete(entry)


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(FileNotFoundError):
            path.unlink()


def _trash(packs_dir: Path, name: str, path: Path) -> Path:
    """Move ``path`` into the staging area (one atomic rename) so it can be deleted unseen."""
    trash = _staging_root(packs_dir) / f"{name}@old-{secrets.token_hex(8)}"
    os.rename(path, trash)
    return trash


@dataclass(frozen=True)
class InstallResult:
    """What :func:`install_pack_result` did."""

    pack: InstalledPack
    action: Literal["installed", "replaced", "unchanged"]
    signed_by: str | None


def _open_source(
    source: Path | BinaryIO, paths: StorePaths, limits: Limits, progress: Progress, stack: ExitStack
) -> PackArchive:
    """A :class:`PackArchive` over an archive file, or over a folder zipped into a spool."""
    if not isinstance(source, Path):
        return stack.enter_context(PackArchive(source, limits=limits))
    if source.is_file():
        return stack.enter_context(PackArchive(source, limits=limits))
    if not source.is_dir():
        raise StoreError(f"{source}: no such pack archive or pack folder")
    manifest = load_manifest(source)
    _staging_root(paths.packs_dir)  # a large spool spills to an unnamed file in there
    spool = stack.enter_context(
        tempfile.SpooledTemporaryFile(_SPOOL_BYTES, dir=str(paths.packs_dir / STAGING_DIR))  # noqa: SIM115
    )
    out = cast(BinaryIO, spool)
    if manifest.signature is None and not manifest.files:
        build_pack(source, out, limits=limits, progress=progress)  # a pack source folder
    else:  # an unpacked pack: keep its manifest byte for byte so its signature still holds
        files = [
            (rel, source.joinpath(*rel.split("/")))
            for rel in pack_folder_files(source, manifest.key)
        ]
        raw = (source / MANIFEST_NAME).read_bytes()
        write_pack_archive(out, manifest, files, manifest_bytes=raw, limits=limits)
    out.seek(0)
    return stack.enter_context(PackArchive(out, limits=limits, label=str(source)))


def _same_install(target: Path, archive: PackArchive, paths: StorePaths, allow: bool) -> bool:
    """True if ``target`` holds exactly this manifest and still verifies."""
    if not target.is_dir():
        return False
    try:
        current = load_manifest(target)
        if current.to_data() != archive.manifest.to_data():
            return False
        verify_pack_dir(target, paths.trust_dir, allow_unsigned=allow)
    except PackError:
        return False
    return True


def install_pack_result(
    source: Path | BinaryIO,
    config_or_paths: Config | StorePaths | None = None,
    allow_unsigned: bool = False,
    *,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> InstallResult:
    """Install a pack archive, an unpacked pack folder or a pack source folder; say what happened.

    Raises a :class:`~remora_lsp.errors.PackError` subclass on any refusal; the store is then
    exactly as before (apart from the staging area's lock and spool files).
    """
    paths = store_paths(config_or_paths)
    allow = _unsigned_allowed(paths, allow_unsigned)
    sink = progress or SILENT_PROGRESS
    with ExitStack() as stack:
        archive = _open_source(source, paths, limits, sink, stack)
        signer = archive.check_signature(paths.trust_dir, allow_unsigned=allow)
        archive.verify_contents(sink)
        manifest = archive.manifest
        packs_dir = paths.packs_dir
        with pack_lock(packs_dir, manifest.name):
            _clean_staging(packs_dir, manifest.name)
            target = packs_dir / manifest.name / manifest.version
            if _same_install(target, archive, paths, allow):
                pack = InstalledPack(manifest.name, manifest.version, target, manifest)
                return InstallResult(pack, "unchanged", signer)
            stage = _staging_root(packs_dir) / f"{manifest.name}@{secrets.token_hex(8)}"
            stage.mkdir()
            try:
                archive.extract(stage, sink)
                verified = verify_pack_dir(stage, paths.trust_dir, allow_unsigned=allow)
                _fsync_dir(stage)
                action = _swap_in(packs_dir, manifest.name, stage, target)
            except BaseException:
                _delete(stage)
                raise
        pack = InstalledPack(manifest.name, manifest.version, target, verified.manifest)
        return InstallResult(pack, action, verified.signed_by)
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


def _swap_in(
    packs_dir: Path, name: str, stage: Path, target: Path
) -> Literal["installed", "replaced"]:
    target.parent.mkdir(parents=True, exist_ok=True)
    old: Path | None = None
    if target.exists() or target.is_symlink():
        old = _trash(packs_dir, name, target)
    try:
        os.rename(stage, target)
    except OSError as exc:
        if old is not None:
            os.rename(old, target)
        raise StoreError(f"cannot move the new pack into {target}: {exc}") from exc
    _fsync_dir(target.parent)
    if old is not None:
        _delete(old)
        return "replaced"
    return "installed"


def install_pack(
    source: Path | BinaryIO,
    config_or_paths: Config | StorePaths | None = None,
    allow_unsigned: bool = False,
    *,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> InstalledPack:
    """Install a pack (see :func:`install_pack_result`); return the installed version."""
    result = install_pack_result(
        source, config_or_paths, allow_unsigned, limits=limits, progress=progress
    )
    return result.pack


def _versions(packs_dir: Path, name: str) -> list[str]:
    root = packs_dir / name
    try:
        found = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    return sorted(found, key=semver_key)


def remove_pack(
    name: str,
    version: str | None = None,
    config_or_paths: Config | StorePaths | None = None,
) -> list[str]:
    """Remove one version, or every version, of a pack; return the ``name@version`` removed.

    Removing the pinned version also removes the pin (the newest remaining version becomes
    active); removing the last version removes the pack's folder.
    """
    _check_name(name)
    if version is not None:
        _check_version(version)
    packs_dir = store_paths(config_or_paths).packs_dir
    with pack_lock(packs_dir, name):
        root = packs_dir / name
        installed = _versions(packs_dir, name)
        if not installed:
            raise StoreError(f"pack {name} is not installed; see `remora list`")
        if version is None:
            _delete(_trash(packs_dir, name, root))
            return [f"{name}@{v}" for v in installed]
        if version not in installed:
            raise StoreError(
                f"{name}@{version} is not installed; installed: {', '.join(installed)}"
            )
        _delete(_trash(packs_dir, name, root / version))
        if read_active_marker(root) == version:
            with suppress(FileNotFoundError):
                (root / ACTIVE_FILE).unlink()
        if not _versions(packs_dir, name):
            _delete(_trash(packs_dir, name, root))
        return [f"{name}@{version}"]


def use_pack(
    name: str, version: str, config_or_paths: Config | StorePaths | None = None
) -> InstalledPack:
    """Make ``name@version`` the active version (writes the ``ACTIVE`` pin)."""
    _check_name(name)
    _check_version(version)
    packs_dir = store_paths(config_or_paths).packs_dir
    with pack_lock(packs_dir, name):
        versions = [p for p in list_installed(packs_dir) if p.name == name]
        chosen = next((p for p in versions if p.version == version), None)
        if chosen is None:
            listed = ", ".join(p.version for p in versions) or "none"
            raise StoreError(f"{name}@{version} is not installed (installed versions: {listed})")
        if chosen.error:
            raise StoreError(f"{name}@{version} cannot be used: {chosen.error}")
        write_active_marker(packs_dir / name, version)
        return chosen


@dataclass(frozen=True)
class PackListing:
    """One installed version as ``remora list`` shows it.

    ``trust`` is the signer's trusted key name, ``"UNSIGNED"``, or a sentence saying why the
    signature is not accepted; ``error`` is set when the folder cannot be used at all.
    """

    name: str
    version: str
    path: Path
    active: bool
    pinned: bool
    signed: bool
    signed_by: str | None
    trust: str
    description: str
    error: str | None

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def to_data(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
            "active": self.active,
            "pinned": self.pinned,
            "signed": self.signed,
            "signed_by": self.signed_by,
            "trust": self.trust,
            "description": self.description,
            "error": self.error,
        }


def list_packs(config_or_paths: Config | StorePaths | None = None) -> list[PackListing]:
    """Every installed version with its active mark and signature status (digests unchecked)."""
    from remora_lsp.packs.signing import verify_manifest_signature

    paths = store_paths(config_or_paths)
    active = active_versions(paths.packs_dir)
    out = []
    for pack in list_installed(paths.packs_dir):
        manifest = pack.manifest
        signed = bool(manifest and manifest.signature)
        signed_by: str | None = None
        if manifest is None:
            trust = "error"
        elif manifest.signature is None:
            trust = "UNSIGNED"
        else:
            try:
                signed_by = verify_manifest_signature(manifest, paths.trust_dir)
                trust = signed_by
            except PackError as exc:
                trust = str(exc)
        chosen = active.get(pack.name)
        out.append(
            PackListing(
                name=pack.name,
                version=pack.version,
                path=pack.path,
                active=chosen is not None and chosen.version == pack.version,
                pinned=read_active_marker(paths.packs_dir / pack.name) == pack.version,
                signed=signed,
                signed_by=signed_by,
                trust=trust,
                description=manifest.description if manifest else "",
                error=pack.error,
            )
        )
    return out
