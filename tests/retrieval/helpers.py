"""Shared test helpers: a real small pack index built from installed code, cursor markers."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from textwrap import dedent

import yaml

from remora_lsp.core.documents import Document, DocumentStore
from remora_lsp.packs.manifest import parse_manifest
from remora_lsp.packs.verify import VerifiedPack

CURSOR = "‸"


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin, name
    return Path(spec.origin).parent


def document(source: str, uri: str = "file:///project/app/main.py") -> tuple[Document, int]:
    """A parsed document from ``source`` and the byte offset of its cursor marker (removed)."""
    text = dedent(source)
    offset = text.encode().find(CURSOR.encode())
    text = text.replace(CURSOR, "")
    return DocumentStore().open(uri, "python", 1, text), max(offset, 0)


def make_pack(
    folder: Path, name: str, triggers: list[str], embeddings: dict | None
) -> VerifiedPack:
    """A pack folder with a manifest (unsigned, no files block) around ``folder/embeddings``."""
    data = {
        "format": 1,
        "name": name,
        "version": "0.1.0",
        "triggers": {"python_imports": triggers},
    }
    if embeddings is not None:
        data["embeddings"] = embeddings
    (folder / "manifest.yaml").write_text(yaml.safe_dump(data))
    manifest = parse_manifest((folder / "manifest.yaml").read_text())
    return VerifiedPack(folder, manifest, None)
