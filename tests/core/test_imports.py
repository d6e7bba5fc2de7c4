"""ImportGenie, data-driven: each case is a source text and the modules it imports, in order."""

from __future__ import annotations

import pytest

from remora_lsp.core.imports import (
    ImportRef,
    detect_imports,
    normalize_js_specifier,
    normalize_python_module,
)
from remora_lsp.core.languages import new_parser


def imports_of(language: str, source: str) -> list[ImportRef]:
    data = source.encode()
    return detect_imports(new_parser(language).parse(data), data, language)


def check(language: str, source: str, expected: list[str]) -> None:
    assert [ref.module for ref in imports_of(language, source)] == expected


CASES: list[tuple[str, str, str, list[str]]] = [
    # -- Python: the statement forms ---------------------------------------------------------
    ("py-import", "python", "import os\n", ["os"]),
    ("py-dotted-alias", "python", "import a.b as c\n", ["a.b"]),
    ("py-several", "python", "import a, b.c\n", ["a", "b.c"]),
    ("py-from-alias", "python", "from a.b import c as d\n", ["a.b"]),
    ("py-from-parens", "python", "from a import (\n    x,\n    y,\n)\n", ["a"]),
    ("py-from-star", "python", "from a import *\n", ["a"]),
    ("py-future", "python", "from __future__ import annotations\n", ["__future__"]),
    ("py-continuation", "python", "import \\\n    os\n", ["os"]),
    ("py-same-twice", "python", "import os\nimport os\n", ["os", "os"]),
    # -- Python: relative imports are local code ---------------------------------------------
    ("py-relative", "python", "from . import x\nfrom ..a import b\nfrom .c.d import e\n", []),
    # -- Python: nested anywhere -------------------------------------------------------------
    ("py-in-function", "python", "def f():\n    import numpy as np\n", ["numpy"]),
    (
        "py-try-except",
        "python",
        "try:\n    import ujson as json\nexcept ImportError:\n    import json\n",
        ["ujson", "json"],
    ),
    (
        "py-type-checking",
        "python",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pandas import DataFrame\n",
        ["typing", "pandas"],
    ),
    ("py-class-body", "python", "class A:\n    import re\n", ["re"]),
    (
        "py-deeply-nested",
        "python",
        "class A:\n    def f(self):\n        with x:\n            for i in y:\n"
        "                import torch.nn\n",
        ["torch.nn"],
    ),
    # -- Python: dynamic imports with literal names ------------------------------------------
    ("py-dunder-import", "python", "m = __import__('yaml')\n", ["yaml"]),
    ("py-dunder-fromlist", "python", "__import__('x.y', fromlist=['z'])\n", ["x.y"]),
    ("py-importlib", "python", 'importlib.import_module("fastapi.routing")\n', ["fastapi.routing"]),
    ("py-importlib-fstring", "python", 'importlib.import_module(f"plug_{name}")\n', []),
    ("py-importlib-variable", "python", "importlib.import_module(name)\n", []),
    ("py-importlib-relative", "python", "importlib.import_module('.x', 'pkg')\n", []),
    ("py-bytes-literal", "python", "__import__(b'x')\n", []),
    ("py-other-import-module", "python", "loader.import_module('x')\n", []),
    # -- Python: things that only look like imports ------------------------------------------
    ("py-string", "python", "s = \"import os\"\nt = 'from x import y'\n", []),
    ("py-comment", "python", "# from x import y\n# import pandas\nx = 1\n", []),
    ("py-docstring", "python", 'def f():\n    """\n    import pandas\n    """\n', []),
    ("py-fstring", "python", 'f"{__import__}import os"\n', []),
    # -- Python: broken code still yields every import that parses ---------------------------
    (
        "py-broken-def",
        "python",
        "import os\ndef f(:\n    import numpy\nimport pandas\n",
        ["os", "numpy", "pandas"],
    ),
    ("py-broken-class", "python", "class A(:\n    import re\n", ["re"]),
    ("py-unclosed-paren", "python", "x = (\nimport json\n", ["json"]),
    (
        "py-unterminated-string",
        "python",
        "import os\nprint('unterminated\nimport sys\n",
        ["os", "sys"],
    ),
    # A bare `import` must not adopt the next line's first word as a module.
    ("py-half-typed-import", "python", "import\nx = 1\n", []),
    # tree-sitter reads `numpy` as the name imported from pandas; pandas is still found.
    (
        "py-half-typed-from",
        "python",
        "import requests\nfrom pandas import\nimport numpy\n",
        ["requests", "pandas"],
    ),
    ("py-lone-cr", "python", "x = 1\rimport os\n", ["os"]),
    # -- JavaScript -------------------------------------------------------------------------
    ("js-default", "javascript", "import x from 'x';\n", ["x"]),
    ("js-named", "javascript", 'import {a, b as c} from "x";\n', ["x"]),
    ("js-namespace", "javascript", "import * as n from 'x';\n", ["x"]),
    ("js-side-effect", "javascript", "import 'x';\n", ["x"]),
    ("js-export-star", "javascript", "export * from 'x';\n", ["x"]),
    ("js-export-named", "javascript", "export {a, b} from 'x';\n", ["x"]),
    ("js-export-local", "javascript", "export const x = 1;\nexport {x};\n", []),
    ("js-require", "javascript", "const x = require('x');\n", ["x"]),
    ("js-require-nested", "javascript", "f(g(require('x')).y);\n", ["x"]),
    ("js-require-variable", "javascript", "require(name);\nrequire('a' + b);\n", []),
    ("js-dynamic", "javascript", "import('x').then(f);\n", ["x"]),
    ("js-await-dynamic", "javascript", 'async function f() { await import("x"); }\n', ["x"]),
    ("js-template", "javascript", "import(`x`);\nrequire(`y`);\n", ["x", "y"]),
    ("js-template-substitution", "javascript", "import(`./${x}`);\nrequire(`${y}`);\n", []),
    (
        "js-relative",
        "javascript",
        "import a from './a';\nrequire('../b');\nimport('/abs/c');\nimport d from '.';\n",
        [],
    ),
    ("js-internal-and-url", "javascript", "import a from '#x';\nimport 'https://e.sh/r';\n", []),
    ("js-scoped-deep", "javascript", "import x from '@scope/pkg/sub/path';\n", ["@scope/pkg"]),
    ("js-deep", "javascript", "import fp from 'lodash/fp';\n", ["lodash"]),
    ("js-node-scheme", "javascript", "import fs from 'node:fs/promises';\n", ["node:fs"]),
    (
        "js-comments",
        "javascript",
        "// require('x')\n/* import y from 'y' */\nconst z = 1;\n",
        [],
    ),
    (
        "js-strings",
        "javascript",
        "const s = \"import x from 'x'\";\nconst t = `require('y')`;\n",
        [],
    ),
    ("js-escape", "javascript", "require('\\x61');\n", []),
    (
        "js-broken",
        "javascript",
        "import React from 'react';\nfunction f( {\n  const x = require('lodash');\n",
        ["react", "lodash"],
    ),
    (
        "jsx",
        "javascript",
        "const el = <div>{require('a')}</div>;\nimport b from 'b';\n",
        ["a", "b"],
    ),
    # -- TypeScript / TSX --------------------------------------------------------------------
    ("ts-type-import", "typescript", "import type {T} from 'x';\n", ["x"]),
    ("ts-import-require", "typescript", "import x = require('x');\n", ["x"]),
    ("ts-export-type", "typescript", "export type {T} from 'x';\n", ["x"]),
    ("ts-typed-require", "typescript", "const x: X = require('x');\n", ["x"]),
    (
        "ts-broken",
        "typescript",
        "import { a } from 'a'\nlet x: = ;\nimport b from 'b'\n",
        ["a", "b"],
    ),
    ("ts-declare-module", "typescript", "declare module 'x' {}\n", []),
    (
        "tsx-component",
        "tsx",
        "import React from 'react';\nexport const C = () => <div>{import('lazy')}</div>;\n",
        ["react", "lazy"],
    ),
    ("tsx-type-import", "tsx", "import type { FC } from '@types/react';\n", ["@types/react"]),
]


@pytest.mark.parametrize(
    ("language", "source", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_detects(language: str, source: str, expected: list[str]) -> None:
    check(language, source, expected)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 40
    assert {case[1] for case in CASES} == {"python", "javascript", "typescript", "tsx"}


def test_python_details() -> None:
    refs = imports_of(
        "python",
        "import numpy as np\nfrom a.b import c as d, e\nfrom os import *\n__import__('x')\n",
    )
    assert [(r.module, r.alias, r.names, r.kind, r.line) for r in refs] == [
        ("numpy", "np", (), "import", 0),
        ("a.b", None, ("c", "e"), "from", 1),
        ("os", None, ("*",), "from", 2),
        ("x", None, (), "dynamic", 3),
    ]
    assert [r.builtin for r in refs] == [False, False, True, False]
    assert refs[0].ecosystem == "python"
    assert ImportRef("fastapi.routing", None, "python", 0, 1, 0).package == "fastapi"


def test_js_details() -> None:
    source = (
        "import R, {useState as s, useEffect} from 'react';\n"
        "import * as fp from 'lodash/fp';\n"
        "const {a, b: c} = require('pkg');\n"
        "const m = await import('mod');\n"
        "export * as ns from 'ex';\n"
        "import type {T} from 'types';\n"
        "import fs from 'fs';\n"
    )
    refs = imports_of("typescript", source)
    assert [(r.module, r.alias, r.names, r.kind) for r in refs] == [
        ("react", "R", ("useState", "useEffect"), "import"),
        ("lodash", "fp", ("*",), "import"),
        ("pkg", None, ("a", "b"), "require"),
        ("mod", "m", (), "dynamic"),
        ("ex", "ns", ("*",), "export"),
        ("types", None, ("T",), "import"),
        ("fs", "fs", (), "import"),
    ]
    assert [r.type_only for r in refs] == [False] * 5 + [True, False]
    assert [r.builtin for r in refs] == [False] * 6 + [True]
    assert {r.ecosystem for r in refs} == {"js"}
    first = refs[0]
    assert source.encode()[first.start_byte : first.end_byte] == b"'react'"
    assert [r.line for r in refs] == list(range(7))


def test_lines_are_lsp_lines_with_carriage_returns() -> None:
    refs = imports_of("python", "x = 1\rimport os\r\nimport re\n")
    assert [(r.module, r.line) for r in refs] == [("os", 1), ("re", 2)]


@pytest.mark.parametrize(
    ("specifier", "expected"),
    [
        ("react", ("react", False)),
        ("lodash/fp", ("lodash", False)),
        ("@scope/pkg", ("@scope/pkg", False)),
        ("@scope/pkg/sub/x", ("@scope/pkg", False)),
        ("node:fs", ("node:fs", True)),
        ("node:fs/promises", ("node:fs", True)),
        ("fs/promises", ("fs", True)),
        ("bun:test", ("bun:test", True)),
        ("test", ("test", False)),
        ("./x", None),
        ("../y", None),
        ("/abs", None),
        (".", None),
        ("#internal", None),
        ("@scope", None),
        ("@scope/", None),
        ("https://esm.sh/react", None),
        ("C:\\x", None),
        ("", None),
        ("has space", None),
    ],
)
def test_normalize_js_specifier(specifier: str, expected: tuple[str, bool] | None) -> None:
    assert normalize_js_specifier(specifier) == expected


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("pandas", True),
        ("a.b_c.d9", True),
        (".x", False),
        ("a..b", False),
        ("", False),
        ("1a", False),
    ],
)
def test_normalize_python_module(name: str, ok: bool) -> None:
    assert (normalize_python_module(name) is not None) is ok
