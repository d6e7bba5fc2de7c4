"""FunctionGemma format: exact prompt fixtures, round trips, strict parser errors, the decider."""

from __future__ import annotations

from typing import Any

import pytest

from remora_lsp.inference.engine import GenerationRequest
from remora_lsp.orchestrator.functiongemma import (
    CallParseError,
    FunctionGemmaDecider,
    format_call,
    format_declaration,
    format_response,
    format_value,
    parse_calls,
    parse_value,
    render_prompt,
)
from remora_lsp.orchestrator.loop import Answer, Observation, ToolCall, run
from remora_lsp.orchestrator.tools import ToolSpec, build_tools
from remora_lsp.packs.manifest import Manifest
from remora_lsp.templates import TemplateCatalog
from tests.orchestrator.conftest import SAMPLE, ScriptedEngine

SEARCH = ToolSpec(
    "fastapi_search",
    "Search FastAPI docs.",
    {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for"},
            "k": {"type": "integer"},
            "kind": {"type": "string", "enum": ["section", "function"]},
        },
        "required": ["query"],
    },
)

DECLARATION = (
    "<start_function_declaration>declaration:fastapi_search{description:<escape>Search FastAPI"
    " docs.<escape>,parameters:{properties:{k:{type:<escape>INTEGER<escape>},kind:{enum:"
    "[<escape>section<escape>,<escape>function<escape>],type:<escape>STRING<escape>},query:"
    "{description:<escape>What to look for<escape>,type:<escape>STRING<escape>}},required:"
    "[<escape>query<escape>],type:<escape>OBJECT<escape>}}<end_function_declaration>"
)


def test_declaration_exact_format() -> None:
    assert format_declaration(SEARCH) == DECLARATION


def test_prompt_exact_format() -> None:
    history = [
        Observation(ToolCall("fastapi_search", {"query": "Depends"}), {"ok": True, "hits": []}),
        Observation(ToolCall("fastapi_search", {"query": "x, y"}), None, "index missing"),
    ]
    prompt = render_prompt("Be brief.", [SEARCH], "Add a dependency", history)
    assert prompt == (
        "<start_of_turn>developer\nBe brief.\n"
        "You are a model that can do function calling with the following functions"
        f"{DECLARATION}<end_of_turn>\n"
        "<start_of_turn>user\nAdd a dependency<end_of_turn>\n"
        "<start_of_turn>model\n"
        "<start_function_call>call:fastapi_search{query:<escape>Depends<escape>}"
        "<end_function_call>"
        "<start_function_response>response:fastapi_search{ok:true,hits:[]}"
        "<end_function_response>"
        "<start_function_call>call:fastapi_search{query:<escape>x, y<escape>}"
        "<end_function_call>"
        "<start_function_response>response:fastapi_search{error:<escape>index missing<escape>}"
        "<end_function_response>"
    )


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"query": 'path {params}, with: commas "quotes" and\nnewlines'},
        {"k": 3, "score": -0.25, "big": 1e-07, "flag": True, "off": False, "none": None},
        {"args": {"resource": "profile", "fields": ["a: int", "b"], "nested": {"deep": [[1], {}]}}},
        {"empty": "", "list": []},
    ],
)
def test_call_round_trip(arguments: dict[str, Any]) -> None:
    text = format_call("render_template", arguments)
    assert parse_calls(text, ["render_template"]) == [ToolCall("render_template", arguments)]


def test_exact_call_fixtures() -> None:
    text = (
        "<start_function_call>call:render_template{name:<escape>fastapi/router<escape>,"
        "args:{resource:<escape>profile<escape>,model:<escape>User<escape>,crud:false}}"
        "<end_function_call>"
    )
    assert parse_calls(text) == [
        ToolCall(
            "render_template",
            {
                "name": "fastapi/router",
                "args": {"resource": "profile", "model": "User", "crud": False},
            },
        )
    ]
    parallel = (
        "<start_function_call>call:read_symbol{name:<escape>User<escape>}<end_function_call>\n"
        "<start_function_call>call:search_embeddings{query:<escape>profile<escape>,k:5}"
        "<end_function_call><end_of_turn>"
    )
    assert [c.name for c in parse_calls(parallel)] == ["read_symbol", "search_embeddings"]
    assert parse_calls("The router is ready.<end_of_turn>") == []
    assert format_response("x", {"n": 1.5}) == (
        "<start_function_response>response:x{n:1.5}<end_function_response>"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<start_function_call>call:rm_rf{}<end_function_call>", "unknown tool 'rm_rf'"),
        (
            "<start_function_call>call:read_symbol{name:<escape>User<escape><end_function_call>",
            "unbalanced braces",
        ),
        (
            "<start_function_call>call:read_symbol{name:<escape>User<escape>}}<end_function_call>",
            "unbalanced braces",
        ),
        (
            "<start_function_call>call:read_symbol{name:<escape>User}<end_function_call>",
            "missing closing <escape>",
        ),
        (
            "<start_function_call>call:read_symbol{name:User}<end_function_call>",
            "strings must be written <escape>",
        ),
        ("<start_function_call>call:read_symbol{name:12abc}<end_function_call>", "bad value"),
        ("<start_function_call>call:read_symbol{name:}<end_function_call>", "expected a value"),
        (
            "<start_function_call>call:read_symbol{:<escape>x<escape>}<end_function_call>",
            "expected a key",
        ),
        ("<start_function_call>call:read_symbol{a:1,a:2}<end_function_call>", "duplicate key"),
        ("<start_function_call>call:read_symbol{a:[1,2}<end_function_call>", "'}' closes a '['"),
        ("<start_function_call>call:read_symbol{a:[1,2<end_function_call>", "never closed"),
        ("<start_function_call>read_symbol{}<end_function_call>", "must start with 'call:'"),
        ("<start_function_call>call:read_symbol(name=1)<end_function_call>", "expected '{'"),
        ("<start_function_call>call:read_symbol{}", "without <end_function_call>"),
        ("call:read_symbol{}<end_function_call>", "without <start_function_call>"),
        (
            "<start_function_call>call:read_symbol{}<end_function_call> and more",
            "text after the function calls",
        ),
    ],
)
def test_strict_parser_errors(text: str, message: str) -> None:
    with pytest.raises(CallParseError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_calls(text, ["read_symbol"])


def test_values() -> None:
    assert parse_value("[1,-2.5,true,null,<escape>a,b<escape>]") == [1, -2.5, True, None, "a,b"]
    assert format_value({"b": 1, "a": "x"}, sort_keys=True) == "{a:<escape>x<escape>,b:1}"
    with pytest.raises(ValueError):
        format_value("has <escape> inside")
    with pytest.raises(ValueError):
        format_value(float("nan"))
    with pytest.raises(CallParseError, match="nested deeper"):
        parse_value("[" * 40 + "]" * 40)


async def test_decider_plumbing_with_an_engine(
    catalog: TemplateCatalog, fastapi_manifest: Manifest
) -> None:
    def answer(request: GenerationRequest) -> str:
        if "<start_function_response>" not in request.prompt:
            return (
                "<start_function_call>call:read_symbol{name:<escape>User<escape>}"
                "<end_function_call>"
            )
        return "User is defined in app/models.py.<end_of_turn>"

    engine = ScriptedEngine(answer)
    decider = FunctionGemmaDecider(engine, adapter="orchestrator", packs=[fastapi_manifest])
    tools = build_tools(catalog, workspace_root=SAMPLE, packs=[fastapi_manifest])
    result = await run("Where is User?", decider, tools)
    assert result.answer == "User is defined in app/models.py."
    assert [s.tool for s in result.trace] == ["read_symbol"]
    first = engine.requests[0]
    assert first.adapter == "orchestrator"
    assert first.stop == ("<start_function_response>", "<end_of_turn>")
    assert "You have the fastapi pack active." in first.prompt
    assert "declaration:read_symbol{" in first.prompt
    # unavailable tools (no engine for generate_code, no index for search) are not declared
    assert "declaration:generate_code" not in first.prompt
    assert "declaration:fastapi_search" not in first.prompt
    assert "response:read_symbol{ok:true,matches:[{name:<escape>User<escape>" in (
        engine.requests[1].prompt
    )


async def test_decider_malformed_output_is_fed_back(catalog: TemplateCatalog) -> None:
    outputs = iter(
        [
            "<start_function_call>call:read_symbol{name:User}<end_function_call>",
            "Sorry.",
        ]
    )
    engine = ScriptedEngine(lambda request: next(outputs))
    result = await run(
        "x",
        FunctionGemmaDecider(engine),
        build_tools(catalog, workspace_root=SAMPLE),
    )
    assert result.answer == "Sorry."
    assert result.trace[0].tool == "(decide)"
    assert "strings must be written <escape>" in (result.trace[0].error or "")
    assert "response:error{error:<escape>" in engine.requests[1].prompt
    assert isinstance(Answer("x"), Answer)
