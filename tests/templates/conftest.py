"""Shared fixtures: the shipped packs' templates, loaded once through the real sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from remora_lsp.templates.pym import TemplateSpec, load_pym_sources

REPO = Path(__file__).resolve().parents[2]


def pack_sources(pack: str) -> dict[str, str]:
    folder = REPO / "packs" / pack / "templates"
    return {f"templates/{p.name}": p.read_text("utf-8") for p in sorted(folder.glob("*.pym"))}


@pytest.fixture(scope="session")
def shipped_specs() -> dict[str, TemplateSpec]:
    specs: dict[str, TemplateSpec] = {}
    for pack in ("fastapi", "pydantic"):
        loaded, errors = load_pym_sources(pack_sources(pack), pack=pack)
        assert errors == []
        specs.update({s.name: s for s in loaded})
    return specs
