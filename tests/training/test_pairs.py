"""Pair mining: each pair kind from hand-made scan records over small real files, name
resolution and ambiguity, determinism, the train/evaluation split."""

from __future__ import annotations

from pathlib import Path

import pytest

from remora_lsp.training.pairs import (
    MIN_EVAL_PAIRS,
    code_without_docstring,
    docstring_summary,
    mine_pairs,
    split_pairs,
)
from remora_lsp.training.types import (
    CodeUnit,
    DocSection,
    Pair,
    RepoScan,
    UnitKind,
    is_heldout,
)

ROUTING = '''\
class APIRouter:
    """Group path operations so that they can be included in an application.

    Longer explanation that is not part of the summary.
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.routes: list[str] = []

    @staticmethod
    def get(path: str) -> str:
        """Register a GET path operation on the router.

        Args:
            path: the path.
        """
        return "GET " + path

    def post(self, path: str) -> str:
        """Short one."""
        return "POST " + path


def include(router: APIRouter) -> int:
    """Count the routes of a :class:`~pkg.routing.APIRouter` for the `app` object."""
    return len(router.routes) + len(router.prefix)


def mount(router: APIRouter, prefix: str) -> None:
    router.routes.append(prefix)
    router.prefix = prefix
'''

PARAMS = '''\
def Depends(dependency: object = None) -> object:
    """Declare a dependency that the framework resolves for each request."""
    return dependency


def get(path: str) -> str:
    """A module-level get that only exists to make names ambiguous."""
    return path
'''

OTHER = '''\
def get(key: str) -> str:
    """Another get, in another module, for the ambiguity test."""
    return key


class Holder:
    def get(self) -> int:
        """Yet another get: a method this time, for ambiguity."""
        return 1
'''

TESTS = '''\
def test_include() -> None:
    """A test function with a long enough docstring to be mined."""
    assert True
'''


def _units_of(rel: str, source: str) -> list[CodeUnit]:
    """CodeUnits of a small file, as the RepoWalker would report them (by hand: ast)."""
    import ast

    module = rel.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    lines = source.splitlines()
    units: list[CodeUnit] = []

    def visit(body: list[ast.stmt], prefix: str, in_class: bool) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                end = node.end_lineno or node.lineno
                kind: UnitKind = "method" if in_class else "function"
                if isinstance(node, ast.ClassDef):
                    kind = "class"
                qual = f"{prefix}.{node.name}"
                units.append(
                    CodeUnit(rel, qual, kind, start, end, "\n".join(lines[start - 1 : end]),
                             ast.get_docstring(node) or "")
                )  # fmt: skip
                if isinstance(node, ast.ClassDef):
                    visit(node.body, qual, True)

    visit(ast.parse(source).body, module, False)
    return units


@pytest.fixture
def scan(tmp_path: Path) -> RepoScan:
    files = {
        "pkg/__init__.py": "from pkg.params import Depends\n",
        "pkg/routing.py": ROUTING,
        "pkg/params.py": PARAMS,
        "pkg/other.py": OTHER,
        "tests/test_routing.py": TESTS,
    }
    units: list[CodeUnit] = []
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
        units += _units_of(rel, text)
    return RepoScan(
        root=tmp_path,
        files=tuple(files),
        units=tuple(units),
        test_files=("tests/test_routing.py",),
    )


def _kind(pairs: list[Pair], kind: str) -> list[Pair]:
    return [p for p in pairs if p.kind == kind]


def test_docstring_summary_cleans_markup() -> None:
    text = (
        "Count the routes of a :class:`~pkg.routing.APIRouter`\n"
        "  for the `app` **object**.\n\nMore."
    )
    assert (
        docstring_summary(text) == "Count the routes of a pkg.routing.APIRouter for the app object."
    )


def test_code_without_docstring_keeps_signature_and_body() -> None:
    units = {u.qualname: u for u in _units_of("pkg/routing.py", ROUTING)}
    get = code_without_docstring(units["pkg.routing.APIRouter.get"])
    assert get == '@staticmethod\ndef get(path: str) -> str:\n    return "GET " + path'
    cls = code_without_docstring(units["pkg.routing.APIRouter"])
    assert cls.startswith("class APIRouter:\n\n    def __init__")
    assert "Group path operations" not in cls
    only_doc = CodeUnit(
        "a.py", "a.f", "function", 1, 3, 'def f():\n    """Doc only."""\n', "Doc only."
    )
    assert code_without_docstring(only_doc) == "def f():\n    ..."
    long = CodeUnit("a.py", "a.g", "function", 1, 400, "def g():\n" + "    x = 1\n" * 400)
    capped = code_without_docstring(long)
    assert len(capped) <= 1500 and capped.endswith("x = 1")


def test_docstring_pairs(scan: RepoScan) -> None:
    pairs = _kind(mine_pairs(scan, []), "docstring")
    by_query = {p.query: p for p in pairs}
    get = by_query["Register a GET path operation on the router."]
    assert get.positive.startswith("@staticmethod\ndef get(path: str) -> str:")
    assert "Args:" not in get.positive and get.path == "pkg/routing.py"
    assert "Group path operations so that they can be included in an application." in by_query
    assert "Count the routes of a pkg.routing.APIRouter for the app object." in by_query
    # too short ("Short one."), undocumented (mount) and test code are not mined
    assert not any(q.startswith(("Short one", "A test function")) for q in by_query)
    assert not any("def mount" in p.positive for p in pairs)
    assert all(p.path != "tests/test_routing.py" for p in mine_pairs(scan, []))


def test_doc_section_pairs_resolve_names(scan: RepoScan) -> None:
    sections = [
        DocSection(
            "tutorial/routers.md",
            ("Tutorial", "Bigger applications"),
            "Use `routing.APIRouter.get` and `Depends()`, `fastapi.nothing`.",
            code_names=("routing.APIRouter.get", "pkg.Depends", "nothing", "APIRouter"),
        ),
        DocSection("api.md", ("API", "get"), "The `get` helpers.", code_names=("get",)),
        DocSection("api.md", ("API", "params"), "The get helper.", code_names=("params.get",)),
    ]
    pairs = _kind(mine_pairs(scan, sections), "doc_section")
    tutorial = [p for p in pairs if p.query.startswith("Tutorial > Bigger applications\n\n")]
    heads = sorted(p.positive.splitlines()[0] for p in tutorial)
    assert heads == [
        "@staticmethod",  # routing.APIRouter.get
        "class APIRouter:",  # APIRouter (the class only: APIRouter.get is a longer name)
        "def Depends(dependency: object = None) -> object:",  # pkg.Depends → pkg.params.Depends
    ]
    assert {p.path for p in tutorial} == {"pkg/routing.py", "pkg/params.py"}
    # "get" names four units (more than three): skipped; "params.get" names exactly one
    assert not [p for p in pairs if p.query.startswith("API > get")]
    params = [p for p in pairs if p.query.startswith("API > params")]
    assert [p.positive.splitlines()[0] for p in params] == ["def get(path: str) -> str:"]


def test_doc_section_query_capped(scan: RepoScan) -> None:
    section = DocSection("a.md", ("A",), "word " * 1000, code_names=("Depends",))
    (pair,) = _kind(mine_pairs(scan, [section]), "doc_section")
    assert len(pair.query) <= 1000 and pair.query.startswith("A\n\nword")


def test_usage_pairs(scan: RepoScan) -> None:
    pairs = _kind(mine_pairs(scan, []), "usage_type")
    router = [p for p in pairs if p.positive.startswith("pkg.routing.APIRouter")]
    assert router, pairs
    assert {p.path for p in router} == {"pkg/routing.py"}
    assert router[0].positive == (
        "pkg.routing.APIRouter\nclass APIRouter\n"
        "Group path operations so that they can be included in an application."
    )
    windows = [p.query for p in router]
    assert any("routes" in w and "prefix" in w for w in windows)
    # a usage source outside the scan adds windows (its own path), but test files do not
    extra = scan.root / "extra"
    extra.mkdir()
    (extra / "use.py").write_text(
        "from pkg.routing import APIRouter\n\n\ndef build(r: APIRouter) -> None:\n"
        "    r.routes.clear()\n    print(r.prefix)\n"
    )
    more = _kind(mine_pairs(scan, [], usage_sources=[extra]), "usage_type")
    assert any(p.path == "use.py" and p.positive.startswith("pkg.routing.APIRouter") for p in more)
    assert not any(p.path.startswith("tests/") for p in more)


def test_usage_pairs_capped_per_label(tmp_path: Path) -> None:
    body = "\n".join(
        f"def f{i}(x: str) -> int:\n    return x.count('{i}') + len(x.strip())\n" for i in range(40)
    )
    (tmp_path / "mod.py").write_text(body)
    scan = RepoScan(root=tmp_path, files=("mod.py",), units=())
    pairs = _kind(mine_pairs(scan, []), "usage_type")
    assert 0 < len(pairs) <= 10 and {p.positive for p in pairs} == {"str"}


def test_deterministic_deduplicated_and_capped(scan: RepoScan) -> None:
    sections = [DocSection("a.md", ("A",), "Use Depends.", code_names=("Depends", "pkg.Depends"))]
    first = mine_pairs(scan, sections, seed=3)
    assert first == mine_pairs(scan, sections, seed=3)
    assert len({(p.query, p.positive) for p in first}) == len(first)
    other = mine_pairs(scan, sections, seed=4)
    assert sorted(map(repr, other)) == sorted(map(repr, first)) and other != first
    assert mine_pairs(scan, sections, seed=3, max_pairs=2) == first[:2]


def test_split_by_file_when_enough_pairs() -> None:
    pairs = [Pair(f"q{i}", f"p{i}", "docstring", f"pkg/m{i % 200}.py") for i in range(1000)]
    train, evaluation = split_pairs(pairs, seed=1)
    assert len(evaluation) >= MIN_EVAL_PAIRS and len(train) + len(evaluation) == 1000
    assert all(is_heldout(p.path, seed=1) for p in evaluation)
    assert not {p.path for p in train} & {p.path for p in evaluation}
    assert split_pairs(pairs, seed=1) == (train, evaluation)


def test_split_falls_back_to_pairs_on_small_repos() -> None:
    pairs = [Pair(f"q{i}", f"p{i}", "docstring", "pkg/only.py") for i in range(40)]
    train, evaluation = split_pairs(pairs, fraction=0.15)
    assert len(evaluation) == 6 and len(train) == 34
    assert split_pairs(pairs, fraction=0.15) == (train, evaluation)
    two = pairs[:2]
    assert [len(side) for side in split_pairs(two)] == [1, 1]
    assert split_pairs(pairs[:1]) in (([pairs[0]], []), ([], [pairs[0]]))
