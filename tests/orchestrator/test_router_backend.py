"""The deterministic decider: the plan it follows, step by step, on the real fastapi templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from remora_lsp.orchestrator.loop import Answer, OrchestratorRequest, run
from remora_lsp.orchestrator.router_backend import RouterDecider, fill_context, symbol_names
from remora_lsp.orchestrator.tools import build_tools
from remora_lsp.templates import TemplateCatalog, TemplateRouter
from tests.orchestrator.conftest import SAMPLE, ScriptedEngine


async def test_plan_for_add_user_profile_endpoint(
    catalog: TemplateCatalog, router: TemplateRouter
) -> None:
    result = await run(
        "Add user profile endpoint",
        RouterDecider(router),
        build_tools(catalog, workspace_root=SAMPLE),
    )
    assert [(s.tool, dict(s.arguments)) for s in result.trace] == [
        ("read_symbol", {"name": "User"}),
        (
            "render_template",
            {
                "name": "fastapi/router",
                "args": {"resource": "profile", "model": "User", "models_module": "app.models"},
            },
        ),
    ]
    assert result.stopped == "answered"
    assert result.answer == "Rendered app/routers/profile.py from fastapi/router."
    assert result.data is not None and result.data["kind"] == "rendered"


async def test_search_then_one_generate_per_fill(
    catalog: TemplateCatalog, router: TemplateRouter
) -> None:
    def search(query: str, pack: str | None, kind: str | None, k: int) -> list[dict[str, Any]]:
        return [{"label": "fastapi.APIRouter", "text": "router = APIRouter(prefix='/x')"}]

    engine = ScriptedEngine("return []")
    tools = build_tools(catalog, workspace_root=SAMPLE, search=search, engine=engine)
    result = await run("Add a read-only router for Item", RouterDecider(router), tools)
    tools_used = [s.tool for s in result.trace]
    assert (
        tools_used
        == ["read_symbol", "search_embeddings", "render_template"] + ["generate_code"] * 3
    )
    render = result.trace[2].arguments["args"]
    assert render == {
        "resource": "item",
        "model": "Item",
        "crud": False,
        "models_module": "app.models",
    }
    fills = [o for o in result.observations if o.call.name == "generate_code"]
    assert [o.call.tag for o in fills] == [
        "fill:app/routers/item.py:13",
        "fill:app/routers/item.py:19",
        "fill:app/routers/item.py:28",
    ]
    first = fills[0].call.arguments
    assert first["context"].endswith("    # remora: fill list_item\n    ")
    assert "from app.models import Item" in first["context"]
    assert "class Item(BaseModel):" in first["instruction"]
    assert (
        "Related examples:\nfastapi.APIRouter\nrouter = APIRouter(prefix='/x')"
        in (first["instruction"])
    )


async def test_module_comes_from_where_the_model_lives(
    catalog: TemplateCatalog, router: TemplateRouter, workspace: Path
) -> None:
    models = workspace / "app" / "models.py"
    (workspace / "app" / "domain").mkdir()
    (workspace / "app" / "domain" / "accounts.py").write_text(models.read_text())
    models.unlink()
    result = await run(
        "Add user profile endpoint",
        RouterDecider(router),
        build_tools(catalog, workspace_root=workspace),
    )
    assert result.trace[1].arguments["args"]["models_module"] == "app.domain.accounts"


async def test_unknown_intent_answers_with_the_closest_templates(router: TemplateRouter) -> None:
    decider = RouterDecider(router)
    unknown = await decider.decide(
        OrchestratorRequest("bake a chocolate cake"), (), build_tools(TemplateCatalog())
    )
    assert isinstance(unknown, Answer)
    assert unknown.text.startswith("No template matches this request well; the closest are")
    assert unknown.data is not None and len(unknown.data["candidates"]) == 3


async def test_missing_arguments_are_answered(
    catalog: TemplateCatalog, router: TemplateRouter
) -> None:
    result = await run("add crud endpoints", RouterDecider(router), build_tools(catalog))
    assert result.trace == ()
    assert result.data is not None and result.data["kind"] == "missing_arguments"
    assert result.answer == (
        "fastapi/router needs `resource` (Singular snake_case resource name, e.g. profile; URLs "
        "use its plural), `model` (Pydantic model class the endpoints accept and return, e.g. "
        "User); say it in the request."
    )


def test_symbol_names_and_fill_context(router: TemplateRouter) -> None:
    route = router.route("Add an endpoint returning OrderLine for Customer")
    assert symbol_names("Add an endpoint returning OrderLine for Customer", route, None) == [
        "OrderLine",
        "Customer",
    ]
    assert fill_context("a\n  # m\n  x\n", 1, "  ") == "a\n  # m\n  "
