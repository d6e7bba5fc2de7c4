"""Fixtures for the pack tests: a private REMORA_HOME, a trusted signing key, an untrusted one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from remora_lsp.packs import signing, trust
from remora_lsp.packs.install import StorePaths


@dataclass
class Home:
    """A private Remora home with a trusted key (``key``) and an untrusted one (``stranger``)."""

    root: Path
    paths: StorePaths
    key_file: Path
    key: Ed25519PrivateKey
    stranger: Ed25519PrivateKey

    @property
    def packs(self) -> Path:
        return self.paths.packs_dir


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("REMORA_HOME", str(root))
    monkeypatch.delenv("REMORA_ALLOW_UNSIGNED", raising=False)
    keys = tmp_path / "keys"
    keys.mkdir()
    key_file = keys / "publisher.key"
    signing.generate_keypair(key_file)
    paths = StorePaths(root / "packs", root / "trust")
    trust.add_trusted_key(paths.trust_dir, Path(f"{key_file}.pub"), name="publisher")
    return Home(
        root=root,
        paths=paths,
        key_file=key_file,
        key=signing.load_private_key(key_file),
        stranger=Ed25519PrivateKey.generate(),
    )
