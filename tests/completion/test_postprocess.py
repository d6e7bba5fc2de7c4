"""Data-driven: source with a cursor, what the model generated, what the editor should insert."""

from __future__ import annotations

import pytest

from remora_lsp.completion.cursor import analyze_cursor
from remora_lsp.completion.postprocess import block_complete, finish_suggestion
from remora_lsp.completion.prompt import build_prompt
from tests.completion.support import document


def check(
    source: str,
    model_output: str,
    expected: str | None,
    *,
    uri: str = "file:///a/m.py",
    truncated: bool = False,
) -> None:
    doc, offset = document(source, uri)
    ctx = analyze_cursor(doc.text, doc.tree, doc.language, offset)
    prompt = build_prompt(ctx, doc.tree, doc.text, count_tokens=len)
    got = finish_suggestion(ctx, model_output, prompt_line=prompt.prompt_line, truncated=truncated)
    assert got == expected, f"mode={ctx.mode} ({ctx.reason})"


PY_CASES = [
    # -- single line: finish the statement, first line only
    ("x = compute(█", "a, b)\ny = 2", "a, b)"),
    ("result = █", "load(path)\nprint(result)", "load(path)"),
    # a chat-tuned model drifting into Markdown: the fence and what follows are not code
    ("result = █", "load(path)\n```\nThis loads the file.", "load(path)"),
    ("result = █", "```python\nload(path)", None),
    # the prompt ended before the space; the model wrote it, the user had typed it already
    ("result = █", " load(path)\n", "load(path)"),
    ("total = add(a, █", " b)", "b)"),
    # the editor auto-closed the bracket: do not close it twice
    ("print(█)", '"hello")', '"hello"'),
    ("items = [█]", "1, 2, 3]]", "1, 2, 3"),
    # text after the cursor: the model retyped it, keep only the new part
    ("value = foo(█, b)", "a, b)", "a"),
    # a suggestion that only repeats the rest of the line is dropped
    ("value = foo(█, b)", ", b)", None),
    # no completion inside a word
    ("val█ue = 1", "x", None),
    # inside a string: one line
    ('msg = "hello █', 'world"\nprint(msg)', 'world"'),
    # -- multi line: the body of a block the line opens
    (
        "def area(r):█",
        "\n    pi = 3.14\n    return pi * r * r\n\ndef other():\n    pass",
        "\n    pi = 3.14\n    return pi * r * r",
    ),
    # nested block: stops at the dedent back to the method level
    (
        "class A:\n    def f(self):█\n\n    def g(self):\n        pass\n",
        "\n        if self.x:\n            return 1\n        return 2\n    def h(self):\n",
        "\n        if self.x:\n            return 1\n        return 2",
    ),
    # blank line in a body: the model writes its indentation; the typed white space is kept
    (
        "def f(x):\n    y = x + 1\n    █\n",
        "    return y\n\ndef g():\n    pass",
        "return y",
    ),
    # blank line at module level: one paragraph
    (
        "import os\n\n█",
        "def main():\n    print(os.getcwd())\n\nmain()",
        "def main():\n    print(os.getcwd())",
    ),
    # the model starts regenerating the code after the cursor: drop the repeat
    (
        "def f():█\n    return 1\n",
        "\n    return 1\n",
        None,
    ),
    (
        "def f(a):\n    █\n    return total\n",
        "    total = a * 2\n    return total\n",
        "total = a * 2",
    ),
    # a body the model did not indent is no body
    ("def f():█", "\nprint(1)", None),
    # the model put the body on the header line
    ("def f():█", " return 1\nx = 2", " return 1"),
    # token limit: the last, unfinished line is dropped
    (
        "def f(n):█",
        "\n    total = 0\n    for i in range(n):\n        total += i\n    ret",
        "\n    total = 0\n    for i in range(n):\n        total += i",
    ),
    # brackets: a closer with nothing open cuts the suggestion
    ("x = 1█", " + f(2))\n", " + f(2)"),
    # a comment line completes as one line
    ("# compute the █", "average of the list\ndef f(): pass", "average of the list"),
    # whitespace-only output is nothing
    ("x = █", "   \n", None),
]


@pytest.mark.parametrize(("source", "output", "expected"), PY_CASES)
def test_python(source: str, output: str, expected: str | None) -> None:
    truncated = output.endswith("ret")
    check(source, output, expected, truncated=truncated)


JS_CASES = [
    # a function body; the closing brace is written because it is not in the file yet
    (
        "function add(a, b) {█",
        "\n  const s = a + b;\n  return s;\n}\n\nfunction other() {}",
        "\n  const s = a + b;\n  return s;\n}",
    ),
    # ... but not when the editor already closed the block
    (
        "function add(a, b) {█\n}\n",
        "\n  return a + b;\n}\n",
        "\n  return a + b;",
    ),
    ("const xs = [1, 2].map((x) => █);", "x * 2);", "x * 2"),
]


@pytest.mark.parametrize(("source", "output", "expected"), JS_CASES)
def test_javascript(source: str, output: str, expected: str | None) -> None:
    check(source, output, expected, uri="file:///a/m.js")


@pytest.mark.parametrize(
    ("source", "mode", "reason"),
    [
        ("x = compute(█", "multi", "the line opens a block"),
        ("x = compute(a, █", "single", "finishing the current line"),
        ("value = foo(█, b)", "single", "text after the cursor on this line"),
        ("print(█)", "single", "finishing the current line"),
        ("def f():█", "multi", "the line opens a block"),
        ("if ok:  # note█", "single", "inside a comment"),
        ("while True:█", "multi", "the line opens a block"),
        ("data = {█", "multi", "the line opens a block"),
        ("def f():\n    █", "multi", "blank line in statement position"),
        ("d = {\n    'a': 1,\n    █\n}", "single", "blank line inside brackets"),
        ("s = 'abc█'", "single", "inside a string"),
        ("ab█c = 1", None, "inside a word"),
    ],
)
def test_mode_from_syntax(source: str, mode: str | None, reason: str) -> None:
    doc, offset = document(source)
    ctx = analyze_cursor(doc.text, doc.tree, doc.language, offset)
    assert (ctx.mode, ctx.reason) == (mode, reason)


def test_block_complete_lets_a_stream_stop_early() -> None:
    doc, offset = document("def f(x):█\n")
    ctx = analyze_cursor(doc.text, doc.tree, doc.language, offset)
    assert not block_complete(ctx, "\n    y = x\n    return y")
    assert block_complete(ctx, "\n    y = x\n    return y\ndef")
    doc, offset = document("x = █")
    ctx = analyze_cursor(doc.text, doc.tree, doc.language, offset)
    assert not block_complete(ctx, "1 + 2")
    assert block_complete(ctx, "1 + 2\n")
