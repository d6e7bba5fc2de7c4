"""Checks an installed pack folder before the server loads it.

:func:`verify_pack_dir` is the single gate between the store and the runtime: it re-reads the
manifest, requires a signature from a trusted key unless unsigned packs are allowed, and checks
the folder against the manifest's ``files`` block: every listed file present with its size and
sha256, nothing unlisted, no links or special files, and the payload rules of
:mod:`remora_lsp.packs.content` (safetensors only, no pickle). An unsigned development folder
whose manifest has no ``files`` block pins nothing, so only the payload and link rules apply to
it. Any failure raises a :class:`~remora_lsp.errors.PackError` subclass whose message is shown
in the pack status.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from remora_lsp.errors import ArchiveError, DigestError, SignatureError
from remora_lsp.packs.content import PayloadCheck, check_member_path
from remora_lsp.packs.manifest import MANIFEST_NAME, Manifest, load_manifest

__all__ = ["VerifiedPack", "file_sha256", "pack_folder_files", "verify_files", "verify_pack_dir"]

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


class VerifiedPack:
    """A pack folder whose manifest, signature policy and digests have been checked.

    ``signed_by`` is the name of the trusted key that signed it, or None for an unsigned pack
    admitted because unsigned packs are allowed.
    """

    __slots__ = ("manifest", "path", "signed_by")

    def __init__(self, path: Path, manifest: Manifest, signed_by: str | None) -> None:
        self.path = path
        self.manifest = manifest
        self.signed_by = signed_by


def pack_folder_files(pack_dir: Path, key: str) -> list[str]:
    """Relative paths of every file in an installed pack folder except ``manifest.yaml``.

    Raises if the folder holds a link or a special file anywhere.
    """
    found: list[str] = []
    for root, dirs, files in os.walk(pack_dir, followlinks=False):
        base = Path(root)
        for name in [*dirs, *files]:
            path = base / name
            mode = path.lstat().st_mode
            rel = path.relative_to(pack_dir).as_posix()
            if stat.S_ISLNK(mode):
                raise DigestError(f"{key}: {rel} is a symbolic link; packs hold regular files")
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise DigestError(f"{key}: {rel} is a special file; packs hold regular files")
            if stat.S_ISREG(mode) and rel != MANIFEST_NAME:
                found.append(rel)
    return sorted(found)


def _check_file(path: Path, rel: str, key: str) -> tuple[int, str]:
    """Size and sha256 of one pack file, applying the payload rules while reading it."""
    check_member_path(rel)
    digest = hashlib.sha256()
    payload = PayloadCheck(rel)
    size = 0
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError as exc:
        raise DigestError(f"{key}: listed file {rel} is missing") from exc
    except OSError as exc:
        raise DigestError(f"{key}: cannot read {rel}: {exc}") from exc
    with os.fdopen(fd, "rb") as fh:
        while block := fh.read(_CHUNK):
            size += len(block)
            digest.update(block)
            payload.feed(block)
    try:
        payload.finish(size)
    except ArchiveError as exc:
        raise ArchiveError(f"{key}: {exc}") from exc
    return size, digest.hexdigest()


def verify_files(pack_dir: Path, manifest: Manifest) -> None:
    """The folder holds exactly the listed files (plus the manifest), each with its size/sha256."""
    key = manifest.key
    present = pack_folder_files(pack_dir, key)
    unlisted = [rel for rel in present if rel not in manifest.files]
    if unlisted:
        raise DigestError(
            f"{key}: {unlisted[0]} is not listed in the manifest (added after install?)"
        )
    for rel, entry in sorted(manifest.files.items()):
        size, sha = _check_file(pack_dir.joinpath(*rel.split("/")), rel, key)
        if size != entry.size:
            raise DigestError(
                f"{key}: {rel} is {size} bytes, the manifest says {entry.size} (tampered?)"
            )
        if sha != entry.sha256:
            raise DigestError(f"{key}: {rel} does not match its sha256 (tampered?)")


def verify_pack_dir(pack_dir: Path, trust_dir: Path, *, allow_unsigned: bool) -> VerifiedPack:
    """Re-verify an installed pack; raise a PackError subclass naming what is wrong."""
    manifest = load_manifest(pack_dir)
    signed_by: str | None = None
    if manifest.signature is None:
        if not allow_unsigned:
            raise SignatureError(
                f"{manifest.key} is unsigned; sign it with a trusted key, or allow unsigned "
                "development packs with REMORA_ALLOW_UNSIGNED=1"
            )
    else:
        from remora_lsp.packs.signing import verify_manifest_signature

        signed_by = verify_manifest_signature(manifest, trust_dir)
    if manifest.files or manifest.signature is not None:
        verify_files(pack_dir, manifest)
    else:
        for rel in pack_folder_files(pack_dir, manifest.key):
            _check_file(pack_dir.joinpath(*rel.split("/")), rel, manifest.key)
    return VerifiedPack(pack_dir, manifest, signed_by)
