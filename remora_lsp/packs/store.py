"""The local pack store: which packs are installed under ``<remora_home>/packs`` and which
version of each is the active one.

Layout::

    <remora_home>/packs/<name>/<version>/manifest.yaml   one unpacked pack version
    <remora_home>/packs/<name>/ACTIVE                     optional: the version `remora use` chose
    <remora_home>/packs/.tmp/                             install staging area (never scanned)

Without an ``ACTIVE`` file the highest semantic version is active. Folders whose name starts
with ``.`` are ignored, so half-finished installs are never seen. Reading the store never
raises for one bad pack: each version is reported with its manifest or its error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from remora_lsp.errors import PackError, StoreError
from remora_lsp.packs.manifest import NAME_RE, SEMVER_RE, Manifest, load_manifest

__all__ = [
    "ACTIVE_FILE",
    "STAGING_DIR",
    "InstalledPack",
    "active_versions",
    "list_installed",
    "read_active_marker",
    "semver_key",
    "write_active_marker",
]

ACTIVE_FILE = "ACTIVE"
STAGING_DIR = ".tmp"


@dataclass(frozen=True)
class InstalledPack:
    """One installed pack version: its folder and either its manifest or why it is unusable."""

    name: str
    version: str
    path: Path
    manifest: Manifest | None
    error: str | None = None

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"


def semver_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    """Sort key for semantic versions (a pre-release sorts before its release)."""
    match = SEMVER_RE.match(version)
    if not match:
        return (-1, -1, -1, -1, ())
    major, minor, patch, pre = match.group(1), match.group(2), match.group(3), match.group(4)
    pre_key: tuple[tuple[int, int | str], ...] = ()
    if pre:
        pre_key = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre_key)


def read_active_marker(pack_root: Path) -> str | None:
    """The version pinned by ``remora use``, or None."""
    try:
        text = (pack_root / ACTIVE_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return text if SEMVER_RE.match(text) else None


def write_active_marker(pack_root: Path, version: str) -> None:
    """Pin ``version`` as active, atomically (write a temporary file, then rename)."""
    if not SEMVER_RE.match(version):
        raise StoreError(f"cannot pin version {version!r}: not a semantic version")
    tmp = pack_root / f".{ACTIVE_FILE}.{os.getpid()}.tmp"
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, pack_root / ACTIVE_FILE)


def list_installed(packs_dir: Path) -> list[InstalledPack]:
    """Every installed pack version, sorted by name then version; bad ones carry an error."""
    out: list[InstalledPack] = []
    try:
        roots = sorted(p for p in packs_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StoreError(f"cannot read pack store {packs_dir}: {exc}") from exc
    for root in roots:
        if not NAME_RE.match(root.name):
            continue
        try:
            versions = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        except OSError:
            continue
        for vdir in sorted(versions, key=lambda p: semver_key(p.name)):
            try:
                manifest = load_manifest(vdir)
            except PackError as exc:
                out.append(InstalledPack(root.name, vdir.name, vdir, None, str(exc)))
                continue
            if (manifest.name, manifest.version) != (root.name, vdir.name):
                msg = (
                    f"{vdir}: manifest says {manifest.key} but the folder is "
                    f"{root.name}/{vdir.name}; reinstall the pack"
                )
                out.append(InstalledPack(root.name, vdir.name, vdir, None, msg))
                continue
            out.append(InstalledPack(root.name, vdir.name, vdir, manifest))
    return out


def active_versions(packs_dir: Path) -> dict[str, InstalledPack]:
    """For each pack name, the version that should load: the ``ACTIVE`` pin, else the newest."""
    by_name: dict[str, list[InstalledPack]] = {}
    for pack in list_installed(packs_dir):
        by_name.setdefault(pack.name, []).append(pack)
    chosen: dict[str, InstalledPack] = {}
    for name, versions in by_name.items():
        pinned = read_active_marker(packs_dir / name)
        match = next((v for v in versions if v.version == pinned), None)
        chosen[name] = match or max(versions, key=lambda v: semver_key(v.version))
    return chosen
