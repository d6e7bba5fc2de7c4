"""Prompt building: FIM vs prefix-only, token budgets, same-file definitions, snippets."""

from __future__ import annotations

from remora_lsp.completion.cursor import analyze_cursor
from remora_lsp.completion.prompt import (
    ContextSnippet,
    PromptBudget,
    build_prompt,
    file_definitions,
)
from remora_lsp.inference.engine import FimTokens
from tests.completion.support import document

FIM = FimTokens("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file_separator|>")


def words(text: str) -> int:
    """A stand-in tokenizer: one token per white-space separated word."""
    return len(text.split())


def prompt_for(source: str, **kwargs):  # type: ignore[no-untyped-def]
    doc, offset = document(source)
    ctx = analyze_cursor(doc.text, doc.tree, doc.language, offset)
    return build_prompt(ctx, doc.tree, doc.text, count_tokens=kwargs.pop("count", words), **kwargs)


def test_prefix_only_prompt_is_the_text_before_the_cursor() -> None:
    p = prompt_for("import os\nx = os.█\nprint(x)\n")
    assert p.mode == "prefix"
    assert p.text == "import os\nx = os."
    assert p.suffix_tokens == 0


def test_fim_prompt_has_prefix_suffix_middle() -> None:
    p = prompt_for("import os\nx = os.█\nprint(x)\n", fim=FIM)
    assert p.mode == "fim"
    assert p.text == "<|fim_prefix|>import os\nx = os.<|fim_suffix|>\nprint(x)\n<|fim_middle|>"


def test_blank_line_prompt_stops_before_the_indentation() -> None:
    p = prompt_for("def f():\n    █\n")
    assert p.text == "def f():\n" and p.prompt_line == ""


def test_windows_respect_the_budget_nearest_lines_first() -> None:
    body = "".join(f"v{i} = {i} + {i}\n" for i in range(200))  # 4 words per line
    p = prompt_for(body + "total = █\n" + body, fim=FIM, budget=PromptBudget(100, 0.2, 0.0))
    assert p.prefix_tokens + p.suffix_tokens <= 100
    assert p.text.split("<|fim_suffix|>")[0].endswith("v199 = 199 + 199\ntotal =")
    assert "v0 = 0 + 0" not in p.text.split("<|fim_suffix|>")[0]
    assert p.text.split("<|fim_suffix|>")[1].startswith("\nv0 = 0 + 0\n")
    assert p.suffix_tokens <= 20


def test_definitions_outside_the_window_become_context() -> None:
    filler = "".join(f"a{i} = {i}\n" for i in range(100))
    source = (
        "class Store:\n    def get(self, key: str) -> bytes:\n        return b''\n\n"
        + filler
        + "s = Store()\n█\n\ndef helper(x: int) -> int:\n    return x\n"
    )
    p = prompt_for(source, budget=PromptBudget(120, 0.0, 0.3))
    assert p.definitions == (
        "class Store:",
        "def get(self, key: str) -> bytes:",
        "def helper(x: int) -> int:",
    )
    assert "# Defined in this file:\n# class Store:\n#     def get" in p.text
    assert p.text.endswith("s = Store()\n")
    # Incomplete code at the cursor wraps the file in an ERROR node: still found.
    broken = prompt_for(source.replace("█", "v = s.█"), budget=PromptBudget(120, 0.0, 0.3))
    assert broken.definitions[:2] == ("class Store:", "def get(self, key: str) -> bytes:")


def test_definitions_already_in_the_window_are_not_repeated() -> None:
    p = prompt_for("def helper(x):\n    return x\n\ny = helper(█)\n")
    assert p.definitions == ()
    assert "Defined in this file" not in p.text


def test_snippets_as_files_or_comments() -> None:
    snippet = ContextSnippet(
        "app = FastAPI()\n@app.get('/')\ndef root(): ...", "fastapi: tutorial.py"
    )
    with_sep = prompt_for("x = █", fim=FIM, snippets=[snippet], path="app/main.py")
    assert with_sep.text.startswith(
        "<|fim_prefix|><|file_separator|>fastapi: tutorial.py\napp = FastAPI()\n"
    )
    assert "<|file_separator|>app/main.py\nx =<|fim_suffix|>" in with_sep.text
    plain = prompt_for("x = █", snippets=[snippet])
    assert plain.text.startswith("# From fastapi: tutorial.py:\n# app = FastAPI()\n# @app.get('/')")
    assert plain.snippets == 1


def test_snippets_that_do_not_fit_are_left_out() -> None:
    big = ContextSnippet("word " * 500, "big")
    p = prompt_for("x = █", snippets=[big], budget=PromptBudget(100, 0.0, 0.25))
    assert p.snippets == 0 and "From big" not in p.text


def test_javascript_definitions() -> None:
    doc, _ = document(
        "export function load(path) {\n  return 1;\n}\nclass A {\n  m(x) { return x; }\n}\n█",
        uri="file:///a/m.js",
    )
    defs = [d.signature for d in file_definitions(doc.tree, doc.text, "javascript")]
    assert defs == ["function load(path)", "class A", "m(x)"]
