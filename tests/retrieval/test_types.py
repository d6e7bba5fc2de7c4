"""Hover type inference: syntax answers, answers from a real small index, the restriction to
imported libraries, calibration, and the type-hint edit — data-driven."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from remora_lsp.retrieval.build import USAGES, load_calibration
from remora_lsp.retrieval.exports import ExportResolver
from remora_lsp.retrieval.index import ChunkFilter, VectorIndex
from remora_lsp.retrieval.lexical import LexicalEmbedder
from remora_lsp.retrieval.types import (
    Calibration,
    TypeInference,
    apply_edits,
    fit_calibration,
    infer_type,
    type_hint_edit,
)
from tests.retrieval.helpers import document

SYNTAX = [
    ("annotation", "from fastapi import Request\ndef f(req: Request):\n    return r‸eq.url\n",
     "starlette.requests.Request", "annotation", "Request"),
    ("annotated variable", "import fastapi\nx: fastapi.FastAPI = make()\nprint(‸x)\n",
     "fastapi.FastAPI", "annotation", "fastapi.FastAPI"),
    ("literal", "def f():\n    n = 3\n    return ‸n + 1\n", "int", "literal", "int"),
    ("constructor through imports", "from fastapi import APIRouter as R\nrouter = R()\n‸router.get\n",  # noqa: E501
     "fastapi.APIRouter", "constructor", "R"),
    ("return annotation", "from fastapi import FastAPI\ndef make() -> FastAPI: ...\napp = make()\n‸app\n",  # noqa: E501
     "fastapi.FastAPI", "return annotation", "FastAPI"),
    ("isinstance narrowing", "from fastapi import Request\ndef f(x):\n    if isinstance(x, Request):\n        ‸x.url\n",  # noqa: E501
     "starlette.requests.Request", "isinstance", "Request"),
    ("cursor on the binding itself", "from fastapi import Request\ndef f(re‸q: Request):\n    pass\n",  # noqa: E501
     "starlette.requests.Request", "annotation", "Request"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "source", "label", "how", "display"), SYNTAX, ids=[s[0] for s in SYNTAX]
)
def test_syntax_answers_without_an_index(
    what: str, source: str, label: str, how: str, display: str
) -> None:
    doc, offset = document(source)
    result = infer_type(doc, offset)
    assert result is not None
    assert (result.type, result.how, result.display, result.source) == (
        label,
        how,
        display,
        "syntax",
    )
    assert result.confidence == 1.0 and result.above_threshold
    assert doc.text[result.span[0] : result.span[1]].decode() == result.name


@pytest.mark.parametrize(
    "source",
    [
        "import fastapi\nfastapi.‸Request\n",  # an attribute, not a variable
        "def f(self):\n    return se‸lf\n",
        "x = 1  # just a com‸ment\n",
        "from fastapi import Req‸uest\n",
    ],
)
def test_not_a_variable_gives_nothing(source: str) -> None:
    doc, offset = document(source)
    assert infer_type(doc, offset) is None


@pytest.fixture(scope="module")
def usage_search(fastapi_pack: Path):  # type: ignore[no-untyped-def]
    folder = fastapi_pack / "embeddings" / USAGES
    index = VectorIndex.open(folder)
    embedder = LexicalEmbedder.load(folder / "model")
    counts = Counter(c.label for c in index.chunks)
    calls: list[frozenset[str]] = []

    def search(text: str, roots: frozenset[str], k: int):  # type: ignore[no-untyped-def]
        calls.append(roots)
        flt = ChunkFilter(kinds=frozenset({"usage"}), label_roots=roots | {"starlette"})
        return index.search(embedder.embed_queries([text])[0], k, rerank=1000, flt=flt), counts

    search.calls = calls  # type: ignore[attr-defined]
    search.calibration = load_calibration(folder)  # type: ignore[attr-defined]
    return search


HANDLER = """
from fastapi import FastAPI
app = FastAPI()

@app.post("/items")
async def create(raw_request, item_id: int):
    data = await raw_request.json()
    host = raw_request.client.host
    return {"headers": dict(‸raw_request.headers), "data": data}
"""


def test_untyped_parameter_inferred_from_usages(usage_search: Any) -> None:
    doc, offset = document(HANDLER)
    result = infer_type(doc, offset, search=usage_search, calibration=usage_search.calibration)
    assert result is not None and result.source == "index" and result.how == "usages"
    assert result.type == "starlette.requests.Request"
    assert result.display == "Request"  # fastapi re-exports it; the edit imports it from there
    assert result.name == "raw_request" and result.binding_span is not None
    assert 0.0 <= result.confidence <= 1.0
    assert result.evidence and all(e.label == result.type for e in result.evidence)
    assert all(
        e.file.endswith(".py") and e.line >= 0 and e.pack == "fastapi" for e in result.evidence
    )
    # the search was restricted to what the file imports (+ builtins)
    assert usage_search.calls[-1] == frozenset({"fastapi", "builtins"})


def test_low_confidence_is_flagged(usage_search) -> None:  # type: ignore[no-untyped-def]
    doc, offset = document("from fastapi import FastAPI\ndef f(thing):\n    return ‸thing\n")
    result = infer_type(
        doc, offset, search=usage_search, calibration=usage_search.calibration, threshold=0.99
    )
    assert result is not None and not result.above_threshold


def test_calibration_fit_and_round_trip() -> None:
    good = [((0.9, 0.8, 0.7, 0.8, 0.0), True)] * 40
    bad = [((0.4, 0.3, 0.2, 0.05, 1.0), False)] * 40
    noisy = [((0.6, 0.5, 0.4, 0.3, 0.0), i % 2 == 0) for i in range(40)]
    cal = fit_calibration(good + bad + noisy)
    assert (
        cal.confidence((0.9, 0.8, 0.7, 0.8, 0.0))
        > 0.9
        > 0.1
        > cal.confidence((0.4, 0.3, 0.2, 0.05, 1.0))
    )
    assert 0.3 < cal.confidence((0.6, 0.5, 0.4, 0.3, 0.0)) < 0.7
    assert Calibration.from_data(cal.to_data()) == cal
    assert fit_calibration(good[:5]) == Calibration()  # too few samples: the default


def result_for(source: str, label: str) -> tuple[bytes, TypeInference]:
    doc, offset = document(source)
    found = infer_type(doc, offset)
    assert found is None or found.source == "syntax"
    from remora_lsp.retrieval.chunkers import analyse_python

    analysis = analyse_python(doc.tree, doc.text)  # type: ignore[arg-type]
    binding, node, _ = analysis.binding_at(offset)
    assert node is not None and binding is not None
    result = TypeInference(
        name=binding.name, type=label, display="", confidence=0.95, source="index", how="usages",
        above_threshold=True, span=(node.start_byte, node.end_byte),
        binding_span=(binding.node.start_byte, binding.node.end_byte),
    )  # fmt: skip
    return apply_edits(doc.text, type_hint_edit(doc, result)), result


EDITS = [
    (
        "short form from an existing `from` import",
        "from fastapi import FastAPI, Request\ndef f(r‸eq):\n    pass\n",
        "starlette.requests.Request",
        "from fastapi import FastAPI, Request\ndef f(req: Request):\n    pass\n",
    ),
    (
        "through a module alias",
        "import fastapi as fa\ndef f(r‸eq):\n    pass\n",
        "starlette.requests.Request",
        "import fastapi as fa\ndef f(req: fa.Request):\n    pass\n",
    ),
    (
        "missing import added after the last import, from the package the file uses",
        '"""Doc."""\nfrom fastapi import FastAPI\nimport os\n\ndef f(r‸eq=None):\n    pass\n',
        "starlette.requests.Request",
        '"""Doc."""\nfrom fastapi import FastAPI\nimport os\nfrom fastapi import Request\n\ndef f(req: Request = None):\n    pass\n',  # noqa: E501
    ),
    (
        "no imports at all: import the canonical name at the top",
        "def f(r‸eq):\n    pass\n",
        "starlette.requests.Request",
        "from starlette.requests import Request\ndef f(req: Request):\n    pass\n",
    ),
    (
        "short name taken: import the module",
        "from fastapi import FastAPI\nclass Request: ...\ndef f(r‸eq):\n    pass\n",
        "starlette.requests.Request",
        "from fastapi import FastAPI\nimport fastapi\nclass Request: ...\ndef f(req: fastapi.Request):\n    pass\n",  # noqa: E501
    ),
    (
        "assignment and builtins",
        "def f():\n    v‸alue = compute()\n",
        "int",
        "def f():\n    value: int = compute()\n",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("what", "source", "label", "expected"), EDITS, ids=[e[0] for e in EDITS])
def test_type_hint_edit(what: str, source: str, label: str, expected: str) -> None:
    edited, _ = result_for(source, label)
    assert edited.decode() == expected


def test_no_edit_when_already_annotated_or_unbound() -> None:
    doc, offset = document("from fastapi import Request\ndef f(r‸eq: Request):\n    pass\n")
    result = infer_type(doc, offset)
    assert result is not None and result.annotated and type_hint_edit(doc, result) == []
    doc, offset = document("for it‸em in things:\n    item.x\n")
    from dataclasses import replace

    fake = replace(result, binding_span=None, annotated=False)
    assert type_hint_edit(doc, fake) == []


def test_resolver_aliases_for_display() -> None:
    resolver = ExportResolver()
    assert resolver.aliases("starlette.requests.Request", ["fastapi"]) == ["fastapi.Request"]
