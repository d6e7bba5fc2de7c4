"""The tool registry over the real fastapi templates, degradation, pack tools, context injection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from remora_lsp.orchestrator.tools import ToolError, build_tools, system_prompt
from remora_lsp.packs.manifest import Manifest
from remora_lsp.templates import TemplateCatalog
from tests.orchestrator.conftest import SAMPLE, ScriptedEngine


async def test_builtin_tools_without_services(catalog: TemplateCatalog) -> None:
    tools = build_tools(catalog)
    assert tools.names() == [
        "read_symbol",
        "search_embeddings",
        "list_templates",
        "render_template",
        "generate_code",
    ]
    assert not tools.available("search_embeddings") and not tools.available("generate_code")
    found = await tools.call("search_embeddings", {"query": "users"})
    assert found == {
        "ok": False,
        "kind": "unavailable",
        "error": "semantic layer not available: no embedding index is loaded",
    }
    code = await tools.call("generate_code", {"instruction": "x", "context": "y"})
    assert code["ok"] is False and "no code model" in code["error"]
    symbol = await tools.call("read_symbol", {"name": "User"})
    assert symbol["ok"] is False and symbol["kind"] == "unavailable"


async def test_template_tools_and_read_symbol(catalog: TemplateCatalog) -> None:
    tools = build_tools(catalog, workspace_root=SAMPLE)
    listed = await tools.call("list_templates", {"pack": "fastapi"})
    assert "fastapi/router" in [t["name"] for t in listed["templates"]]
    rendered = await tools.call(
        "render_template", {"name": "fastapi/router", "args": {"resource": "item", "model": "Item"}}
    )
    assert rendered["ok"] and rendered["files"][0]["path"] == "app/routers/item.py"
    bad = await tools.call("render_template", {"name": "fastapi/router", "args": {}})
    assert bad["ok"] is False and "resource" in bad["error"]
    symbol = await tools.call("read_symbol", {"name": "User"})
    assert symbol["matches"][0]["import"] == "from app.models import User"
    with pytest.raises(ToolError, match="unknown argument `nme`"):
        await tools.call("read_symbol", {"nme": "User"})


async def test_search_and_generate_delegate(catalog: TemplateCatalog) -> None:
    calls: list[tuple[Any, ...]] = []

    def search(query: str, pack: str | None, kind: str | None, k: int) -> list[dict[str, Any]]:
        calls.append((query, pack, kind, k))
        return [{"label": f"hit{i}", "score": 1.0 - i / 10} for i in range(k + 3)]

    engine = ScriptedEngine("return 42")
    tools = build_tools(catalog, search=search, engine=engine, adapter="fastapi-gen")
    hits = await tools.call("search_embeddings", {"query": "users", "pack": "fastapi", "k": 2})
    assert [h["label"] for h in hits["hits"]] == ["hit0", "hit1"]
    assert calls == [("users", "fastapi", None, 2)]
    code = await tools.call("generate_code", {"instruction": "add", "context": "def f():\n    "})
    assert code == {
        "ok": True,
        "code": "return 42",
        "finish_reason": "stop",
        "adapter": "fastapi-gen",
    }
    request = engine.requests[0]
    assert request.prompt == "# add\ndef f():\n    " and request.adapter == "fastapi-gen"
    assert request.max_tokens == 256 and request.temperature == 0.0


async def test_pack_tools_from_the_manifest(
    catalog: TemplateCatalog, fastapi_manifest: Manifest
) -> None:
    seen: list[Any] = []

    def search(query: str, pack: str | None, kind: str | None, k: int) -> list[dict[str, Any]]:
        seen.append((query, pack))
        return [{"label": "Depends"}]

    tools = build_tools(catalog, search=search, packs=[fastapi_manifest])
    assert tools.spec("fastapi_search").source == "fastapi"
    result = await tools.call("fastapi_search", {"query": "path parameters"})
    assert result == {"ok": True, "hits": [{"label": "Depends"}]}
    assert seen == [("path parameters", "fastapi")]
    rendered = await tools.call(
        "fastapi_scaffold",
        {"template": "router", "args": {"resource": "order", "model": "Order"}},
    )
    assert rendered["ok"] and rendered["template"] == "fastapi/router"
    with pytest.raises(ToolError, match="must be one of"):
        await tools.call("fastapi_scaffold", {"template": "nope"})

    offline = build_tools(catalog, packs=[fastapi_manifest])
    gone = await offline.call("fastapi_search", {"query": "x"})
    assert gone["ok"] is False and "fastapi index is not loaded" in gone["error"]


def test_context_injection(catalog: TemplateCatalog, fastapi_manifest: Manifest) -> None:
    tools = build_tools(catalog, packs=[fastapi_manifest], workspace_root=Path("."))
    prompt = system_prompt([fastapi_manifest], tools)
    assert "You have the fastapi pack active." in prompt
    assert "- fastapi: you can search its docs with fastapi_search (not available right now)" in (
        prompt
    )
    assert "you can scaffold with fastapi_scaffold" in prompt
    assert "- generate_code:" in prompt and "[not available" in prompt
    assert "No library pack is active." in system_prompt([], tools)


def test_search_adapter_over_a_semantic_service() -> None:
    from remora_lsp.orchestrator.tools import search_adapter
    from remora_lsp.retrieval.index import Chunk, ChunkFilter, SearchHit

    seen: list[Any] = []

    class Service:
        def search(self, query: str, filters: Any = None, k: int = 10) -> list[SearchHit]:
            seen.append((query, filters, k))
            chunk = Chunk("fastapi/routing.py", 9, 20, "function", "fastapi.APIRouter", "def x")
            return [SearchHit(chunk, 0.87654, 0)]

    search = search_adapter(Service())
    [hit] = search("routers", "fastapi", "function", 3)
    assert hit == {
        "pack": "",
        "file": "fastapi/routing.py",
        "line": 9,
        "kind": "function",
        "label": "fastapi.APIRouter",
        "text": "def x",
        "score": 0.8765,
    }
    assert seen == [
        ("routers", ChunkFilter(packs=frozenset({"fastapi"}), kinds=frozenset({"function"})), 3)
    ]
    search("routers", None, None, 5)
    assert seen[-1] == ("routers", None, 5)
