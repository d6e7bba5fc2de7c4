"""Chunkers, data-driven: ``check(source, expected)`` tables for usage windows and type labels,
plus code and documentation chunks. Type normalisation runs against a small fake package
written to disk (re-exports, star imports, a lazy ``__getattr__`` table) and against the real
installed fastapi/starlette/pydantic."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from remora_lsp.core.languages import new_parser
from remora_lsp.retrieval.chunkers import (
    analyse_python,
    chunk_docs,
    chunk_source,
    module_name_for,
    usage_window,
)
from remora_lsp.retrieval.exports import ExportResolver

FAKE_PACKAGE = {
    "fakeframes/__init__.py": """
        from fakeframes.core.frame import DataFrame
        from .core.series import *
        from . import io
        _dynamic_imports = {"Lazy": (__spec__.parent, ".core.lazy")}
        Alias = DataFrame
        __all__ = ["DataFrame", "Series", "Lazy", "Alias", "io"]
    """,
    "fakeframes/core/__init__.py": "",
    "fakeframes/core/frame.py": "class DataFrame:\n    def groupby(self, key): ...\n",
    "fakeframes/core/series.py": "__all__ = ['Series']\nclass Series: ...\nclass Hidden: ...\n",
    "fakeframes/core/lazy.py": "class Lazy: ...\n",
    "fakeframes/io.py": "def read(path): ...\n",
    "fakeframes/types.py": "from typing import Any\nScalar = Any\n",
}


@pytest.fixture(scope="module")
def resolver(tmp_path_factory: pytest.TempPathFactory) -> ExportResolver:
    root = tmp_path_factory.mktemp("site")
    for rel, text in FAKE_PACKAGE.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text))
    return ExportResolver([root])


def windows(source: str, resolver: ExportResolver, module: str = "app.main") -> dict[str, str]:
    """name → label of every usage window chunk of ``source``."""
    pieces = chunk_source(
        dedent(source).encode(), "app/main.py", module=module, resolver=resolver,
        kinds=frozenset({"usage"}),
    )  # fmt: skip
    return {p.chunk.name: p.chunk.label for p in pieces}


CASES: list[tuple[str, str, dict[str, str]]] = [
    (
        "annotated parameter through an import alias, normalised to the public name",
        """
        import fakeframes.core.frame as fr
        def f(df: fr.DataFrame):
            return df.groupby("a")
        """,
        {"df": "fakeframes.DataFrame"},
    ),
    (
        "constructor call through `import x as y`",
        """
        import fakeframes as ff
        def f():
            frame = ff.DataFrame()
            frame.groupby("k")
        """,
        {"frame": "fakeframes.DataFrame"},
    ),
    (
        "star import and lazy table both reach the defining class",
        """
        from fakeframes import Series, Lazy, Alias
        def f(s: Series, lazy: Lazy, a: Alias):
            return s, lazy, a
        """,
        {"s": "fakeframes.Series", "lazy": "fakeframes.Lazy", "a": "fakeframes.DataFrame"},
    ),
    (
        "Optional, X | None, Annotated and string annotations unwrap",
        """
        from typing import Optional, Annotated
        from fakeframes import DataFrame
        def f(
            a: Optional[DataFrame], b: DataFrame | None,
            c: Annotated[DataFrame, "m"], d: "DataFrame",
        ):
            return a, b, c, d
        """,
        {
            "a": "fakeframes.DataFrame",
            "b": "fakeframes.DataFrame",
            "c": "fakeframes.DataFrame",
            "d": "fakeframes.DataFrame",
        },
    ),
    (
        "builtins, typing aliases of builtins, generics keep their origin",
        """
        from typing import List
        def f(a: str, b: List[int], c: dict[str, int], d: tuple):
            return a, b, c, d
        """,
        {"a": "str", "b": "list", "c": "dict", "d": "tuple"},
    ),
    (
        "no label: Any, unions of two types, unknown names, type aliases to Any",
        """
        from typing import Any, Union
        from fakeframes.types import Scalar
        def f(a: Any, b: Union[int, str], c: Unknown, d: Scalar, e):
            return a, b, c, d, e
        """,
        {},
    ),
    (
        "return annotation of a function in the same file; literals; a local class",
        """
        from fakeframes import DataFrame
        class Local: ...
        def load() -> DataFrame: ...
        def f():
            frame = load()
            count = 3
            thing = Local()
            return frame.groupby(count), thing
        """,
        {"frame": "fakeframes.DataFrame", "count": "int", "thing": "app.main.Local"},
    ),
    (
        "isinstance narrowing; self and functions called like constructors are skipped",
        """
        from fakeframes import DataFrame, io
        class C:
            def m(self, x):
                data = io.read("p")
                if isinstance(x, DataFrame):
                    x.groupby(1)
                return data
        """,
        {"x": "fakeframes.DataFrame"},
    ),
    (
        "relative imports resolve against the module",
        """
        from .models import User
        def f(u: User):
            return u.name
        """,
        {"u": "app.models.User"},
    ),
]


@pytest.mark.parametrize(("what", "source", "expected"), CASES, ids=[c[0] for c in CASES])
def test_usage_window_labels(
    what: str, source: str, expected: dict[str, str], resolver: ExportResolver
) -> None:
    assert windows(source, resolver) == expected


def test_real_packages_normalise(resolver: ExportResolver) -> None:
    found = windows(
        """
        from fastapi import Request, APIRouter
        from fastapi.routing import APIRoute
        from pydantic.main import BaseModel
        import fastapi
        def f(
            request: Request, router: APIRouter, route: APIRoute,
            model: BaseModel, app: fastapi.FastAPI,
        ):
            return request.url, router.routes, route.path, model.model_dump(), app.state
        """,
        ExportResolver(),
    )
    assert found == {
        "request": "starlette.requests.Request",  # fastapi re-exports starlette's class
        "router": "fastapi.APIRouter",
        "route": "fastapi.routing.APIRoute",  # not exported at the top of fastapi
        "model": "pydantic.BaseModel",  # pydantic exports it through a lazy table
        "app": "fastapi.FastAPI",
    }


def window_of(source: str, name: str, resolver: ExportResolver) -> tuple[str, str]:
    """(rendered feature lines, code) of the labelled window of ``name``."""
    src = dedent(source).encode()
    tree = new_parser("python").parse(src)
    analysis = analyse_python(tree, src, module="app.main", resolver=resolver)
    for scope in analysis.scopes():
        for binding in analysis.bindings(scope):
            if binding.name == name and binding.label:
                window = usage_window(analysis, scope, name, binding=binding)
                text = window.render()
                head, _, code = text.partition("\ncode\n")
                return head, code
    raise AssertionError(f"no window for {name}")


def test_window_hides_what_gives_the_type_away(resolver: ExportResolver) -> None:
    head, code = window_of(
        """
        from fakeframes import DataFrame
        @router.get("/x")
        async def handler(request, frame: DataFrame, limit=10):
            rows = frame.groupby("a").sum()
            total = len(frame)
            def inner(frame):
                return frame
            await frame.save()
            return frame[["a"]]
        """,
        "frame",
        resolver,
    )
    assert "DataFrame" not in code  # the annotation is cut out of the signature line
    assert code.splitlines()[0] == "async def handler(request, frame, limit=10):"
    assert "return frame\n" not in code + "\n"  # the nested function rebinds the name
    lines = dict(line.split(" ", 1) for line in head.splitlines())
    assert lines["name"] == "frame" and lines["function"] == "handler"
    assert lines["decorators"] == "get" and lines["params"] == "request limit"
    assert set(lines["calls"].split()) == {"groupby", "save"}
    assert lines["passed"] == "len"
    assert set(lines["used"].split()) == {"in-async", "subscript-expr"}


def test_constructor_line_is_left_out(resolver: ExportResolver) -> None:
    _, code = window_of(
        """
        import fakeframes as ff
        frame = ff.DataFrame()
        frame.groupby("a")
        print(frame)
        """,
        "frame",
        resolver,
    )
    assert code.splitlines() == ['frame.groupby("a")', "print(frame)"]


def test_narrowing_window_is_the_block(resolver: ExportResolver) -> None:
    head, code = window_of(
        """
        from fakeframes import DataFrame
        def f(x):
            x.before()
            if isinstance(x, DataFrame):
                x.groupby(1)
            x.after()
        """,
        "x",
        resolver,
    )
    assert code.splitlines() == ["x.groupby(1)"]
    assert "calls groupby" in head


def test_code_chunks_python_and_typescript() -> None:
    src = dedent(
        '''
        class Store:
            """Keeps things."""
            def put(self, key: str) -> None:
                """Store one key."""
        @cache
        def helper(x):
            return x
        '''
    ).encode()
    pieces = chunk_source(src, "pkg/store.py", kinds=frozenset({"code"}))
    got = [(p.chunk.kind, p.chunk.label, p.chunk.start_line) for p in pieces]
    assert got == [
        ("class", "pkg.store.Store", 1),
        ("method", "pkg.store.Store.put", 3),
        ("function", "pkg.store.helper", 5),
    ]
    assert "Store one key." in pieces[1].embed_text and "Keeps things." in pieces[0].embed_text
    ts = (
        b"// adds\nexport function add(a: number): number { return a }\n"
        b"class K { m() {} }\nconst f = (x) => x\n"
    )
    pieces = chunk_source(ts, "src/a.ts", kinds=frozenset({"code"}))
    assert sorted((p.chunk.kind, p.chunk.label) for p in pieces) == [
        ("class", "K"), ("function", "add"), ("function", "f"), ("method", "K.m"),
    ]  # fmt: skip


def test_doc_sections_markdown_and_rst() -> None:
    md = (
        "# Guide\nIntro text that is long enough.\n## Install\nRun pip install remora now.\n"
        "```\n# not a heading\n```\n"
    )
    pieces = chunk_docs(md, "docs/guide.md")
    assert [(p.chunk.label, p.chunk.start_line, p.chunk.end_line) for p in pieces] == [
        ("Guide", 0, 1),
        ("Guide > Install", 2, 6),
    ]
    rst = "Title\n=====\n\nSome words about it all.\n\nUsage\n-----\nCall the function to do it.\n"
    pieces = chunk_docs(rst, "docs/index.rst")
    assert [p.chunk.label for p in pieces] == ["Title", "Title > Usage"]
    assert all(p.chunk.kind == "section" for p in pieces)


@pytest.mark.parametrize(
    ("path", "root", "module"),
    [
        ("fastapi/routing.py", None, "fastapi.routing"),
        ("pkg/__init__.py", None, "pkg"),
        ("/x/site-packages/a/b.py", "/x/site-packages", "a.b"),
        ("src/my-app/tool.py", None, "tool"),
    ],
)
def test_module_names(path: str, root: str | None, module: str) -> None:
    assert module_name_for(Path(path), root) == module


def test_broken_code_still_chunks(resolver: ExportResolver) -> None:
    found = windows(
        """
        from fakeframes import DataFrame
        def f(df: DataFrame):
            df.groupby(
        def g(x: int):
            x = [
        """,
        resolver,
    )
    assert found.get("df") == "fakeframes.DataFrame"
