"""Shared fixtures: the fastapi pack's real templates, the sample project, a scripted engine."""

from __future__ import annotations

import shutil
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

import pytest

from remora_lsp.inference.engine import (
    AdapterRef,
    BackendName,
    CancelToken,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
    ModelIdentity,
)
from remora_lsp.packs.manifest import Manifest, load_manifest
from remora_lsp.packs.verify import VerifiedPack
from remora_lsp.templates import TemplateCatalog, TemplateRouter

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "fastapi_app"


class ScriptedEngine:
    """An engine whose answer is computed from the prompt; records every request."""

    def __init__(self, answer: Callable[[GenerationRequest], str] | str) -> None:
        self._answer = answer
        self.requests: list[GenerationRequest] = []

    @property
    def backend(self) -> BackendName:
        return "transformers"

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def identity(self) -> ModelIdentity:
        return ModelIdentity("scripted", None, "none")

    def health(self) -> EngineHealth:
        return EngineHealth("transformers", "ready")

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def generate(
        self, request: GenerationRequest, cancel: CancelToken | None = None
    ) -> GenerationResult:
        self.requests.append(request)
        text = self._answer(request) if callable(self._answer) else self._answer
        return GenerationResult(text, "stop", adapter=request.adapter)

    async def stream(
        self, request: GenerationRequest, cancel: CancelToken | None = None
    ) -> AsyncGenerator[str, None]:
        yield (await self.generate(request, cancel)).text

    async def load_adapter(self, ref: AdapterRef) -> None:
        return None

    async def unload_adapter(self, name: str) -> None:
        return None

    def release_adapter(self, name: str) -> None:
        return None

    def resident_adapters(self) -> tuple[str, ...]:
        return ()

    def cached_adapters(self) -> tuple[str, ...]:
        return ()


@pytest.fixture(scope="session")
def fastapi_manifest() -> Manifest:
    return load_manifest(REPO / "packs" / "fastapi")


@pytest.fixture(scope="session")
def catalog(fastapi_manifest: Manifest) -> TemplateCatalog:
    pack = VerifiedPack(REPO / "packs" / "fastapi", fastapi_manifest, signed_by="test")
    loaded = TemplateCatalog.from_packs([pack])
    assert loaded.errors == []
    return loaded


@pytest.fixture(scope="session")
def router(catalog: TemplateCatalog) -> TemplateRouter:
    return TemplateRouter(catalog.specs)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A fresh copy of the sample project (tests may add or move files)."""
    root = tmp_path / "fastapi_app"
    shutil.copytree(SAMPLE, root)
    return root
