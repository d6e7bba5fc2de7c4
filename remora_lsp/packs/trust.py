"""The trust store: the public keys whose signatures the user accepts, each under a name.

Layout: one file per key, ``<remora_home>/trust/<name>.pub``, holding the key as
SubjectPublicKeyInfo PEM. Adding copies the key in (atomically), so later changes to the file
the user pointed at change nothing. A file in the folder that does not parse as an ed25519
public key is ignored (it trusts nothing). Names are 1-64 characters of letters, digits and
``_.-``, not starting with ``.``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from remora_lsp.errors import RemoraError, StoreError
from remora_lsp.packs.signing import (
    key_id,
    load_public_key,
    public_key_bytes,
    public_key_pem,
)

__all__ = [
    "KEY_SUFFIX",
    "TrustedKey",
    "add_trusted_key",
    "find_trusted_keys",
    "list_trusted_keys",
    "remove_trusted_key",
]

KEY_SUFFIX = ".pub"
TRUST_NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class TrustedKey:
    """A trusted public key: its name, id, file and raw 32 bytes."""

    name: str
    key_id: str
    path: Path
    public_key: bytes

    def to_data(self) -> dict[str, str]:
        """Plain data for ``--json`` output."""
        return {"name": self.name, "key_id": self.key_id, "path": str(self.path)}


def _default_name(pubkey_file: Path, kid: str) -> str:
    name = pubkey_file.name
    for suffix in (KEY_SUFFIX, ".pem", ".key"):
        name = name.removesuffix(suffix)
    return name if TRUST_NAME_RE.match(name) else kid


def list_trusted_keys(trust_dir: Path) -> list[TrustedKey]:
    """Every readable trusted key, sorted by name."""
    try:
        files = sorted(p for p in trust_dir.iterdir() if p.name.endswith(KEY_SUFFIX))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StoreError(f"cannot read trust store {trust_dir}: {exc}") from exc
    keys = []
    for path in files:
        name = path.name.removesuffix(KEY_SUFFIX)
        if not TRUST_NAME_RE.match(name) or not path.is_file() or path.is_symlink():
            continue
        try:
            public = load_public_key(path)
        except RemoraError:
            continue
        keys.append(TrustedKey(name, key_id(public), path, public_key_bytes(public)))
    return keys


def find_trusted_keys(trust_dir: Path, wanted_key_id: str) -> list[TrustedKey]:
    """Trusted keys whose id is ``wanted_key_id``."""
    return [k for k in list_trusted_keys(trust_dir) if k.key_id == wanted_key_id]


def add_trusted_key(trust_dir: Path, pubkey_file: Path, *, name: str | None = None) -> TrustedKey:
    """Trust the public key in ``pubkey_file`` under ``name`` (default: the file's stem).

    Adding a key that is already trusted under the same name is a no-op; the same key under
    another name, or another key under a taken name, is refused.
    """
    public = load_public_key(pubkey_file)
    kid = key_id(public)
    chosen = name or _default_name(pubkey_file, kid)
    if not TRUST_NAME_RE.match(chosen):
        raise StoreError(
            f"trust name {chosen!r} is invalid: use 1-64 letters, digits, '_', '.' or '-', "
            "not starting with '.'"
        )
    for existing in list_trusted_keys(trust_dir):
        if existing.key_id == kid:
            if existing.name == chosen:
                return existing
            raise StoreError(f"key {kid} is already trusted as {existing.name!r}")
        if existing.name == chosen:
            raise StoreError(
                f"the name {chosen!r} is taken by key {existing.key_id}; pick another --name "
                f"or run `remora trust remove {chosen}` first"
            )
    trust_dir.mkdir(parents=True, exist_ok=True)
    target = trust_dir / f"{chosen}{KEY_SUFFIX}"
    tmp = trust_dir / f".{chosen}.{os.getpid()}.tmp"
    tmp.write_bytes(public_key_pem(public))
    os.replace(tmp, target)
    return TrustedKey(chosen, kid, target, public_key_bytes(public))


def remove_trusted_key(trust_dir: Path, name_or_key_id: str) -> TrustedKey:
    """Stop trusting a key, given its name or its key id; returns what was removed."""
    for existing in list_trusted_keys(trust_dir):
        if name_or_key_id in (existing.name, existing.key_id):
            existing.path.unlink()
            return existing
    raise StoreError(
        f"no trusted key is named {name_or_key_id!r}; see `remora trust list` for the names"
    )
