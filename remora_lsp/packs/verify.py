"""Checks an installed pack folder before the server loads it.

:func:`verify_pack_dir` is the single gate between the store and the runtime: it re-reads the
manifest, requires a signature from a trusted key unless unsigned packs are allowed, and checks
every file's size and sha256 against the manifest. Any failure raises a
:class:`~remora_lsp.errors.PackError` subclass whose message is shown in the pack status.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from remora_lsp.errors import DigestError, SignatureError
from remora_lsp.packs.manifest import Manifest, load_manifest

__all__ = ["VerifiedPack", "file_sha256", "verify_files", "verify_pack_dir"]

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


class VerifiedPack:
    """A pack folder whose manifest, signature policy and digests have been checked."""

    __slots__ = ("manifest", "path", "signed_by")

    def __init__(self, path: Path, manifest: Manifest, signed_by: str | None) -> None:
        self.path = path
        self.manifest = manifest
        self.signed_by = signed_by


def verify_files(pack_dir: Path, manifest: Manifest) -> None:
    """Every listed file exists with the listed size and sha256; nothing unlisted but the manifest."""
    root = pack_dir.resolve()
    for rel, entry in manifest.files.items():
        path = pack_dir / rel
        if path.is_symlink() or not path.resolve().is_relative_to(root):
            raise DigestError(f"{manifest.key}: {rel} is a link or leaves the pack folder")
        try:
            size = path.stat().st_size
        except FileNotFoundError as exc:
            raise DigestError(f"{manifest.key}: listed file {rel} is missing") from exc
        if size != entry.size:
            raise DigestError(
                f"{manifest.key}: {rel} is {size} bytes, the manifest says {entry.size} (tampered?)"
            )
        if file_sha256(path) != entry.sha256:
            raise DigestError(f"{manifest.key}: {rel} does not match its sha256 (tampered?)")


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
        from remora_lsp.packs import signing

        signed_by = signing.verify_manifest_signature(manifest, trust_dir)
    verify_files(pack_dir, manifest)
    return VerifiedPack(pack_dir, manifest, signed_by)
