"""Mining retrieval pairs for the embedding fine-tune, and splitting them train / evaluation.

Three kinds of :class:`~remora_lsp.training.types.Pair` come out of :func:`mine_pairs`:

* ``docstring``: a documented function, method or class (any, not only golden; never test
  code) gives (the docstring's summary → the unit's code with the docstring cut out). The
  summary is the docstring's first paragraph with reST/Markdown markup removed; summaries of
  fewer than four words are skipped.
* ``doc_section``: a documentation section gives (the section with its heading path → the code
  of each unit it names). A name resolves by the trailing dotted components of the unit's full
  name (``Depends``, ``routing.APIRouter.get`` → ``pkg.routing.APIRouter.get``); a leading
  top-level package that does not define the name directly (``fastapi.Depends`` where
  ``Depends`` lives in ``fastapi.params``) is dropped and the rest tried again. A name that
  matches more than three units is ambiguous and skipped.
* ``usage_type``: a usage window (the Semantic layer's chunker, the same text the hover embeds)
  gives (the window → a short text for its type: the fully qualified label, plus the class's
  signature and docstring summary when the class is one of the scan's units). Rows per type
  are capped so that common types do not dominate.

Pairs are de-duplicated on (query, positive), shuffled with ``seed`` and capped at
``max_pairs``; the same inputs and seed give the same list. :func:`split_pairs` splits them by
source file with :func:`~remora_lsp.training.types.is_heldout` (the split every stage shares).
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from remora_lsp.retrieval.build import (
    _module_root,
    collect_pieces,
    library_family,
    select_usage_rows,
)
from remora_lsp.retrieval.chunkers import Piece, chunk_file, module_name_for
from remora_lsp.retrieval.exports import ExportResolver
from remora_lsp.training.types import CodeUnit, DocSection, Pair, RepoScan, is_heldout

__all__ = [
    "MAX_POSITIVE_CHARS",
    "MAX_SECTION_CHARS",
    "MIN_EVAL_PAIRS",
    "code_without_docstring",
    "docstring_summary",
    "mine_pairs",
    "split_pairs",
]

MAX_POSITIVE_CHARS = 1500
MAX_SECTION_CHARS = 1000
MAX_NAME_MATCHES = 3
MIN_SUMMARY_WORDS = 4
USAGE_PER_LABEL = 50
USAGE_PER_BUILTIN = 10
MIN_EVAL_PAIRS = 20

_ROLE = re.compile(r":[\w.+-]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")  # :func:`~a.b` → a.b
_LINK = re.compile(r"`([^`<]+?)\s*<[^>]+>`_+")  # `text <url>`_ → text
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")  # [text](url) → text
_TICKS = re.compile(r"`+([^`]*)`+")


def docstring_summary(docstring: str) -> str:
    """The first paragraph of a docstring on one line, with reST/Markdown markup removed."""
    text = textwrap.dedent(docstring).strip()
    paragraph = re.split(r"\n\s*\n", text, maxsplit=1)[0] if text else ""
    paragraph = _ROLE.sub(lambda m: m.group(1).lstrip("~"), paragraph)
    paragraph = _LINK.sub(r"\1", paragraph)
    paragraph = _MD_LINK.sub(r"\1", paragraph)
    paragraph = _TICKS.sub(r"\1", paragraph)
    paragraph = paragraph.replace("**", "").replace("*", "")
    return " ".join(paragraph.split())


def _cap(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, at a line boundary when there is one."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    newline = cut.rfind("\n")
    return cut[:newline] if newline > limit // 2 else cut


def _docstring_lines(code: str) -> tuple[int, int] | None:
    """0-based inclusive line range of the docstring of the first def/class in ``code``."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
                and first.end_lineno is not None
            ):
                return first.lineno - 1, first.end_lineno - 1
            return None
    return None


def code_without_docstring(unit: CodeUnit, limit: int = MAX_POSITIVE_CHARS) -> str:
    """The unit's code (decorators and signature kept) with its docstring lines cut out,
    at most ``limit`` characters."""
    lines = unit.code.splitlines()
    span = _docstring_lines(unit.code)
    if span is not None:
        start, end = span
        kept = lines[:start] + lines[end + 1 :]
        if not any(line.strip() for line in lines[end + 1 :]):
            # a body that was only the docstring: keep the code valid-looking
            first = lines[start]
            kept.append(first[: len(first) - len(first.lstrip())] + "...")
        lines = kept
    return _cap(textwrap.dedent("\n".join(lines)).strip("\n"), limit)


def _signature(unit: CodeUnit) -> str:
    """The unit's signature, or its ``def``/``class`` line when the walker gave none."""
    if unit.signature:
        return unit.signature
    for line in unit.code.splitlines():
        stripped = line.strip()
        if stripped.startswith(("def ", "async def ", "class ")):
            return stripped.rstrip(":")
    return unit.qualname


def _full_name(unit: CodeUnit) -> str:
    """The unit's dotted name with its module (``pkg/routing.py`` + ``APIRouter.get`` →
    ``pkg.routing.APIRouter.get``); a qualname that already starts with the module is kept."""
    module = module_name_for(unit.path)
    if not module or unit.qualname == module or unit.qualname.startswith(module + "."):
        return unit.qualname
    return f"{module}.{unit.qualname}"


class _NameIndex:
    """Units by every trailing run of their full name's dotted components."""

    def __init__(self, units: Iterable[CodeUnit]) -> None:
        self._by_suffix: dict[str, list[CodeUnit]] = defaultdict(list)
        self._roots: set[str] = set()
        for unit in units:
            parts = _full_name(unit).split(".")
            self._roots.add(parts[0])
            for i in range(len(parts)):
                self._by_suffix[".".join(parts[i:])].append(unit)

    def resolve(self, name: str) -> list[CodeUnit]:
        """Units ``name`` names; ``[]`` when none or when more than three match."""
        name = name.strip().removesuffix("()").strip(".")
        parts = name.split(".")
        while parts:
            found = self._by_suffix.get(".".join(parts), [])
            if found:
                return found if len(found) <= MAX_NAME_MATCHES else []
            if len(parts) > 1 and parts[0] in self._roots:
                parts = parts[1:]  # pkg.Name re-exported from pkg.sub.Name
                continue
            break
        return []


def _is_test(unit: CodeUnit, tests: frozenset[str]) -> bool:
    return unit.path in tests or unit.reason == "test code"


def _docstring_pairs(units: Sequence[CodeUnit]) -> list[Pair]:
    pairs: list[Pair] = []
    for unit in units:
        summary = docstring_summary(unit.docstring) if unit.docstring else ""
        if len(summary.split()) < MIN_SUMMARY_WORDS:
            continue
        pairs.append(Pair(summary, code_without_docstring(unit), "docstring", unit.path))
    return pairs


def _section_pairs(units: Sequence[CodeUnit], sections: Sequence[DocSection]) -> list[Pair]:
    index = _NameIndex(units)
    pairs: list[Pair] = []
    for section in sections:
        if not section.text.strip():
            continue
        query = _cap(section.with_context(), MAX_SECTION_CHARS)
        seen: set[tuple[str, str]] = set()
        for name in section.code_names:
            for unit in index.resolve(name):
                if (unit.path, unit.qualname) in seen:
                    continue
                seen.add((unit.path, unit.qualname))
                pairs.append(Pair(query, code_without_docstring(unit), "doc_section", unit.path))
    return pairs


def _usage_pieces(
    scan: RepoScan, usage_sources: Sequence[Path]
) -> tuple[list[Piece], ExportResolver]:
    """Usage windows of the scan's non-test files (paths relative to ``scan.root``, module
    names relative to each file's package root) and of ``usage_sources`` (paths relative to
    their module roots, as the pack builder does), and the resolver that labelled them (the
    scan's own packages first on its search path)."""
    kinds = frozenset({"usage"})
    tests = set(scan.test_files)
    files = [scan.root / rel for rel in scan.files
             if rel not in tests and rel.endswith((".py", ".pyi"))]  # fmt: skip
    module_roots = {path: _module_root(path.parent) for path in files}
    search = {*module_roots.values(), *(_module_root(p) for p in usage_sources)}
    resolver = ExportResolver(sorted(search))
    pieces: list[Piece] = []
    for path in files:
        pieces.extend(
            chunk_file(path, scan.root, resolver=resolver, kinds=kinds,
                       module_root=module_roots[path])
        )  # fmt: skip
    if usage_sources:
        pieces.extend(collect_pieces(usage_sources, kinds=kinds, resolver=resolver))
    return pieces, resolver


def _usage_pairs(
    scan: RepoScan,
    units: Sequence[CodeUnit],
    usage_sources: Sequence[Path],
    library: str | None,
) -> list[Pair]:
    pieces, resolver = _usage_pieces(scan, usage_sources)
    classes = [u for u in units if u.kind == "class"]
    index = _NameIndex(classes)
    own = {_full_name(u) for u in classes}
    family = library_family(library, resolver) if library else None
    rows = select_usage_rows(
        pieces, family=family, resolver=resolver, per_label=USAGE_PER_LABEL,
        per_builtin=USAGE_PER_BUILTIN, strict_classes=False,
    )  # fmt: skip
    texts: dict[str, str | None] = {}
    pairs: list[Pair] = []
    for piece in rows:
        label = piece.chunk.label
        if label not in texts:
            texts[label] = _type_text(label, index, own, resolver)
        text = texts[label]
        if text is not None and piece.embed_text.strip():
            pairs.append(Pair(piece.embed_text, text, "usage_type", piece.chunk.file))
    return pairs


def _type_text(
    label: str, index: _NameIndex, own: set[str], resolver: ExportResolver
) -> str | None:
    """The positive for a type: its label, plus signature and summary when the scan defines
    it; ``None`` for a label that is not known to be a class (a function, an alias)."""
    matches = [u for u in index.resolve(label) if u.kind == "class"]
    if len(matches) != 1:
        if "." in label and label not in own and resolver.is_class(label) is not True:
            return None
        return label
    unit = matches[0]
    parts = [label, _signature(unit)]
    summary = docstring_summary(unit.docstring) if unit.docstring else ""
    if summary:
        parts.append(summary)
    return "\n".join(parts)


def mine_pairs(
    scan: RepoScan,
    sections: Sequence[DocSection],
    *,
    seed: int = 0,
    max_pairs: int = 20_000,
    usage_sources: Sequence[Path] = (),
    library: str | None = None,
) -> list[Pair]:
    """Docstring, doc-section and usage-window pairs from a scan and its documentation
    (see the module docstring); de-duplicated, shuffled with ``seed``, at most ``max_pairs``.

    ``library`` limits usage types to the library's family and builtins (as the pack
    builder does); ``usage_sources`` are extra folders or files mined for usage windows only.
    """
    tests = frozenset(scan.test_files)
    units = [u for u in scan.units if not _is_test(u, tests) and u.code.strip()]
    mined = [
        *_docstring_pairs(units),
        *_section_pairs(units, sections),
        *_usage_pairs(scan, units, usage_sources, library),
    ]
    seen: set[tuple[str, str]] = set()
    pairs: list[Pair] = []
    for pair in mined:
        key = (pair.query, pair.positive)
        if key not in seen and pair.query.strip() and pair.positive.strip():
            seen.add(key)
            pairs.append(pair)
    random.Random(seed).shuffle(pairs)
    return pairs[: max(0, max_pairs)]


def _pair_rank(pair: Pair, seed: int) -> bytes:
    return hashlib.sha256(f"{seed}:{pair.query}\0{pair.positive}".encode()).digest()


def split_pairs(
    pairs: Sequence[Pair], *, seed: int = 0, fraction: float = 0.15
) -> tuple[list[Pair], list[Pair]]:
    """(train, evaluation): by file with :func:`is_heldout`, so that no file's text is on
    both sides.

    When the file split leaves fewer than :data:`MIN_EVAL_PAIRS` evaluation pairs (a small
    repository, few files), it falls back to a deterministic pair-level split: the
    ``round(fraction * n)`` pairs (at least one) with the lowest hash of ``(seed, query,
    positive)`` are held out, so both sides are non-empty whenever there are two pairs or
    more. That fallback can put two pairs of one file on both sides; callers that report
    metrics should say which split was used (compare with ``is_heldout``).
    """
    train = [p for p in pairs if not is_heldout(p.path, seed=seed, fraction=fraction)]
    evaluation = [p for p in pairs if is_heldout(p.path, seed=seed, fraction=fraction)]
    if len(evaluation) >= MIN_EVAL_PAIRS or len(pairs) < 2:
        return train, evaluation
    count = min(len(pairs) - 1, max(1, round(fraction * len(pairs))))
    held = set(sorted(range(len(pairs)), key=lambda i: _pair_rank(pairs[i], seed))[:count])
    train = [p for i, p in enumerate(pairs) if i not in held]
    evaluation = [p for i, p in enumerate(pairs) if i in held]
    return train, evaluation
