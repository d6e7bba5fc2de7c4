"""Scaffolding end to end on the sample FastAPI project, with the real sandboxed templates."""

from __future__ import annotations

from pathlib import Path

from remora_lsp.inference.engine import GenerationRequest
from remora_lsp.orchestrator.functiongemma import FunctionGemmaDecider
from remora_lsp.orchestrator.loop import TraceStep
from remora_lsp.orchestrator.scaffold import (
    apply_fill,
    fill_body,
    marker_block,
    parse_problems,
    scaffold,
)
from remora_lsp.orchestrator.wiring import apply_inserts, wiring_edits
from remora_lsp.packs.manifest import Manifest
from remora_lsp.templates import SandboxLimits, TemplateCatalog, TemplateRouter, load_pym_sources
from tests.orchestrator.conftest import SAMPLE, ScriptedEngine

URI = "file:///work/app/main.py"
REQUEST = "Add user profile endpoint"


async def test_without_a_code_model_the_template_is_rendered_with_marked_bodies(
    catalog: TemplateCatalog, fastapi_manifest: Manifest
) -> None:
    steps: list[TraceStep] = []
    result = await scaffold(
        REQUEST, URI, SAMPLE, catalog, packs=[fastapi_manifest], on_step=steps.append
    )
    assert result.ok and result.problems == ()
    assert result.template == "fastapi/router"
    [(path, content, exists)] = result.files
    assert (path, exists) == ("app/routers/profile.py", False)
    assert "\nfrom app.models import User\n" in content
    assert parse_problems(path, content) == []
    assert content.count("# remora: fill") == 5
    assert [f.status for f in result.fills] == ["kept"] * 5
    assert result.messages == (
        "fastapi/router: app/routers/profile.py",
        "app/main.py: import app.routers.profile and register the profile router with app",
        "No code model is configured: 5 bodies keep the template's code under "
        "`# remora: fill` markers.",
    )
    assert [s.tool for s in result.trace] == ["read_symbol", "render_template"]
    assert list(result.trace) == steps
    assert not (SAMPLE / "app" / "routers").exists()  # nothing is written by the scaffold


def body_for(request: GenerationRequest) -> str:
    marker = request.prompt.rstrip().splitlines()[-1].strip()
    name = marker.removeprefix("# remora: fill ")
    # the model goes on past the body; the scaffold cuts at the dedent
    return f"result = None  # {name}\n    return result\n\n\n@router.get('/more')\ndef more(): ..."


async def test_a_code_model_fills_every_body(catalog: TemplateCatalog) -> None:
    engine = ScriptedEngine(body_for)
    result = await scaffold(REQUEST, URI, SAMPLE, catalog, engine=engine, adapter="fastapi")
    assert result.ok and result.problems == ()
    [(path, content, _)] = result.files
    assert parse_problems(path, content) == []
    assert "# remora: fill" not in content and "def more" not in content
    assert "    result = None  # get_profile\n    return result\n" in content
    assert "from app.models import User" in content
    assert [f.status for f in result.fills] == ["filled"] * 5
    assert result.messages[-1] == "The code model filled 5 of 5 bodies."
    assert len(engine.requests) == 5
    first = engine.requests[0]
    assert first.adapter == "fastapi" and first.max_tokens == 256
    assert first.prompt.endswith("    # remora: fill list_profile\n    ")
    assert "class User(BaseModel):" in first.prompt  # the workspace model is in the context


async def test_a_fill_that_breaks_parsing_keeps_the_marker(catalog: TemplateCatalog) -> None:
    def answer(request: GenerationRequest) -> str:
        if request.prompt.rstrip().endswith("fill get_profile"):
            return "return (\n"
        return body_for(request)

    engine = ScriptedEngine(answer)
    result = await scaffold(REQUEST, URI, SAMPLE, catalog, engine=engine)
    assert result.ok
    [(path, content, _)] = result.files
    assert parse_problems(path, content) == []
    statuses = {f.name: f.status for f in result.fills}
    assert statuses["get_profile"] == "failed"
    assert list(statuses.values()).count("filled") == 4
    assert "    # remora: fill get_profile\n    item = _store.get(profile_id)\n" in content
    [problem] = result.problems
    assert problem.startswith("fill get_profile in app/routers/profile.py did not parse")


async def test_engine_failure_is_a_problem_not_an_exception(catalog: TemplateCatalog) -> None:
    def answer(request: GenerationRequest) -> str:
        raise RuntimeError("engine died")

    result = await scaffold(REQUEST, URI, SAMPLE, catalog, engine=ScriptedEngine(answer))
    assert result.ok and [f.status for f in result.fills] == ["failed"] * 5
    assert "engine died" in result.problems[0]
    assert result.files[0].content.count("# remora: fill") == 5


async def test_an_existing_file_is_never_overwritten(
    catalog: TemplateCatalog, workspace: Path
) -> None:
    target = workspace / "app" / "routers" / "profile.py"
    target.parent.mkdir()
    target.write_text("# mine\n")
    result = await scaffold(REQUEST, URI, workspace, catalog)
    assert not result.ok
    assert [(f.path, f.exists) for f in result.files] == [("app/routers/profile.py", True)]
    assert result.new_files == ()
    assert "app/routers/profile.py already exists; it was not overwritten" in result.problems
    assert any("not overwritten" in m for m in result.messages)
    assert target.read_text() == "# mine\n"

    editor_view = await scaffold(REQUEST, URI, workspace, catalog, existing_files=lambda rel: False)
    assert editor_view.ok and editor_view.new_files[0].path == "app/routers/profile.py"

    unsaved = await scaffold(
        REQUEST, URI, SAMPLE, catalog, existing_files={"app/routers/profile.py"}
    )
    assert [f.exists for f in unsaved.files] == [True] and not unsaved.ok


async def test_unknown_intent_answers_with_the_closest_templates(catalog: TemplateCatalog) -> None:
    result = await scaffold("bake a chocolate cake", URI, SAMPLE, catalog)
    assert not result.ok and result.files == ()
    assert len(result.candidates) == 3
    assert result.messages[0].startswith("No template matches this request well")
    assert result.trace == ()


async def test_a_looping_template_is_stopped_and_reported() -> None:
    source = '''"""Loops."""
OUTPUT = "app/loop.py"
TEMPLATE = "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}"
INTENTS = ["add user profile endpoint"]
KEYWORDS = ["endpoint"]
'''
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=3.0)
    specs, errors = load_pym_sources({"templates/loop.pym": source}, pack="evil", limits=limits)
    assert errors == []
    catalog = TemplateCatalog(specs, limits=limits)
    result = await scaffold(REQUEST, URI, SAMPLE, catalog, TemplateRouter(specs))
    assert not result.ok and result.files == ()
    [problem] = result.problems
    assert problem.startswith("the template could not be rendered:") and "limit" in problem
    assert result.trace[-1].tool == "render_template" and result.trace[-1].error


async def test_time_budget_is_reported(catalog: TemplateCatalog) -> None:
    result = await scaffold(REQUEST, URI, SAMPLE, catalog, time_budget_s=0.0)
    assert not result.ok and "time budget" in result.problems[0]


def test_fill_helpers() -> None:
    lines = ["def f():", "    # remora: fill f", "    x = 1", "", "    return x", "", "", "y = 2"]
    assert marker_block(lines, 1) == (1, 5)
    assert fill_body("return 2\n    # remora: fill f\n", "    ") == ["    return 2"]
    assert fill_body("```python\n    a = 1\n\n    return a\n```", "    ") == [
        "    a = 1",
        "",
        "    return a",
    ]
    assert fill_body("\n\n", "    ") is None
    assert fill_body("return 1\nprint('next')", "    ") == ["    return 1"]
    assert apply_fill("\n".join(lines), 1, ["    return 3"]) == "def f():\n    return 3\n\n\ny = 2"
    assert parse_problems("a.py", "def f(:\n") != []
    assert parse_problems("notes.txt", "((((") == []


async def test_the_new_router_is_wired_into_the_app(catalog: TemplateCatalog) -> None:
    result = await scaffold(REQUEST, URI, SAMPLE, catalog)
    main = (SAMPLE / "app" / "main.py").read_text()
    assert [(e.path, e.line, e.text) for e in result.edits] == [
        ("app/main.py", 5, "from app.routers import profile as profile_router\n"),
        ("app/main.py", 17, "\napp.include_router(profile_router.router)\n"),
    ]
    wired = apply_inserts(main, result.edits)
    assert parse_problems("app/main.py", wired) == []
    assert wired.endswith("app.include_router(profile_router.router)\n")
    assert result.to_data()["edits"][0]["path"] == "app/main.py"


def test_wiring_rules() -> None:
    router_file = [("app/routers/item.py", "router = APIRouter()\n")]
    app = "from fastapi import FastAPI\n\napi = FastAPI()\n"
    files = {"main.py": app}
    edits = wiring_edits(router_file, files.get)
    assert apply_inserts(app, edits) == (
        "from fastapi import FastAPI\n"
        "from app.routers import item as item_router\n\napi = FastAPI()\n"
        "\napi.include_router(item_router.router)\n"
    )
    assert wiring_edits(router_file, {"main.py": apply_inserts(app, edits)}.get) == []
    assert wiring_edits(router_file, {"main.py": "x = 1\n"}.get) == []
    assert wiring_edits([("app/models.py", "class A: ...\n")], files.get) == []
    current = wiring_edits(
        router_file, {"svc/app.py": app, "main.py": app}.get, current_path="svc/app.py"
    )
    assert {e.path for e in current} == {"svc/app.py"}


async def test_scaffold_with_a_function_calling_decider(
    catalog: TemplateCatalog, fastapi_manifest: Manifest
) -> None:
    def orchestrator(request: GenerationRequest) -> str:
        answered = request.prompt.count("<start_function_response>")
        if answered == 0:
            return (
                "<start_function_call>call:read_symbol{name:<escape>User<escape>}"
                "<end_function_call>"
            )
        if answered == 1:
            return (
                "<start_function_call>call:render_template{name:<escape>fastapi/router<escape>,"
                "args:{resource:<escape>profile<escape>,model:<escape>User<escape>,"
                "models_module:<escape>app.models<escape>,crud:false}}<end_function_call>"
            )
        return "Rendered the profile router.<end_of_turn>"

    decider = FunctionGemmaDecider(ScriptedEngine(orchestrator), packs=[fastapi_manifest])
    code = ScriptedEngine(body_for)
    result = await scaffold(
        REQUEST,
        URI,
        SAMPLE,
        catalog,
        engine=code,
        decider=decider,
        packs=[fastapi_manifest],
    )
    assert result.ok, result.problems
    assert [s.tool for s in result.trace] == ["read_symbol", "render_template"] + [
        "generate_code"
    ] * 3
    assert [f.status for f in result.fills] == ["filled"] * 3
    assert "from app.models import User" in result.files[0].content


async def test_a_model_missing_from_the_workspace_is_reported(catalog: TemplateCatalog) -> None:
    result = await scaffold("Add CRUD endpoints for the Invoice model", URI, SAMPLE, catalog)
    assert result.ok and result.template == "fastapi/router"
    assert "from app.models import Invoice" in result.files[0].content
    assert result.problems == (
        "Invoice is not defined in the workspace: check `from app.models import Invoice` in "
        "app/routers/invoice.py",
    )
