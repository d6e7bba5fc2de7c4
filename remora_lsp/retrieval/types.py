"""Hover type inference: what type does the name under the cursor have?

:func:`infer_type` answers in one of two ways.

1. **From the syntax** (confidence 1.0, ``source="syntax"``) when the code states the type: an
   annotation, a literal, a constructor call resolved through the imports (``x = pd.DataFrame()``
   → ``pandas.DataFrame``), a call of a function in the same file with a return annotation, or
   ``isinstance`` narrowing around the cursor.
2. **From usages** (``source="index"``) otherwise: the name's usage window is built from the
   live buffer by the same function that built the training windows
   (:func:`~remora_lsp.retrieval.chunkers.usage_window`), searched in the usage indexes,
   restricted to types of the libraries the file imports (plus builtins), and the neighbours
   vote: each hit adds ``similarity ** power / frequency(label) ** prior`` to its label (the
   prior term keeps abundant labels such as ``str`` from outvoting rare library types). The
   winning label's confidence comes from a logistic :class:`Calibration` over the vote's shape
   (share, best similarity, support, margin), fitted per pack at build time
   (:func:`fit_calibration`) so that "0.9" means about nine right answers in ten.

:func:`type_hint_edit` turns a result into byte-offset text edits that add the annotation in
the form the file can use (``pd.DataFrame`` when ``import pandas as pd`` is there) and the
import that is missing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from remora_lsp.core.documents import Document
from remora_lsp.retrieval.chunkers import (
    FileAnalysis,
    analyse_python,
    usage_window,
)
from remora_lsp.retrieval.exports import ExportResolver, default_resolver
from remora_lsp.retrieval.index import SearchHit, label_root

__all__ = [
    "DEFAULT_CALIBRATION",
    "DEFAULT_THRESHOLD",
    "DEFAULT_VOTE",
    "Calibration",
    "Evidence",
    "TextEdit",
    "TypeInference",
    "UsageSearch",
    "VoteConfig",
    "allowed_roots",
    "display_form",
    "fit_calibration",
    "infer_type",
    "type_hint_edit",
    "vote",
]

DEFAULT_THRESHOLD = 0.8
_HOW = {
    "param": "annotation",
    "annotated": "annotation",
    "literal": "literal",
    "constructor": "constructor",
    "call": "return annotation",
    "narrowed": "isinstance",
}


@dataclass(frozen=True, slots=True)
class Evidence:
    """One neighbour that voted: where it is, its type, its similarity, its code."""

    file: str
    line: int  # 0-based
    label: str
    score: float
    text: str
    pack: str = ""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line + 1}"


@dataclass(frozen=True, slots=True)
class TypeInference:
    """The answer for one hover.

    ``type`` is the canonical label (``pandas.DataFrame``, ``str``); ``display`` how this file
    can spell it. ``span`` is the byte span of the hovered name, ``binding_span`` the span of
    the name where it is bound (where an annotation would go; None when it has no binding in
    this file). ``how`` says what decided (``annotation``, ``literal``, ``constructor``,
    ``return annotation``, ``isinstance``, ``usages``). ``alternatives`` are the runners-up
    with their share of the vote.
    """

    name: str
    type: str
    display: str
    confidence: float
    source: Literal["syntax", "index"]
    how: str
    above_threshold: bool
    span: tuple[int, int]
    binding_span: tuple[int, int] | None
    annotated: bool = False
    evidence: tuple[Evidence, ...] = ()
    alternatives: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class TextEdit:
    """Replace bytes ``[start, end)`` of the document with ``text``."""

    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class VoteConfig:
    """Neighbours searched (``k``), similarity sharpening (``power``) and the label-frequency
    correction (``prior``); chosen by measurement (docs/semantic.md)."""

    k: int = 30
    power: float = 3.0
    prior: float = 0.3


DEFAULT_VOTE = VoteConfig()
FEATURES = ("share", "top", "support", "margin", "builtin")


@dataclass(frozen=True, slots=True)
class Calibration:
    """``confidence = sigmoid(bias + Σ weight·feature)`` over :data:`FEATURES`."""

    weights: tuple[float, ...] = (4.0, 6.0, 1.0, 2.0, -1.0)
    bias: float = -6.5
    fitted_on: int = 0

    def confidence(self, features: Sequence[float]) -> float:
        z = self.bias + sum(w * f for w, f in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def to_data(self) -> dict[str, object]:
        return {
            "features": list(FEATURES),
            "weights": list(self.weights),
            "bias": self.bias,
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, object]) -> Calibration:
        if list(data.get("features", [])) != list(FEATURES):  # type: ignore[call-overload]
            raise ValueError("calibration was fitted on other features")
        raw_weights = data["weights"]
        if not isinstance(raw_weights, list | tuple) or len(raw_weights) != len(FEATURES):
            raise ValueError("calibration weights must list one number per feature")
        weights = tuple(float(w) for w in raw_weights)
        fitted = data.get("fitted_on", 0)
        return cls(weights, float(str(data["bias"])), int(fitted) if isinstance(fitted, int) else 0)


DEFAULT_CALIBRATION = Calibration()

# (rendered usage window, allowed label roots, k) → hits over the usage indexes and the label
# counts of those indexes (for the prior correction).
UsageSearch = Callable[[str, frozenset[str], int], tuple[Sequence[SearchHit], Mapping[str, int]]]


def vote(
    hits: Sequence[SearchHit], label_counts: Mapping[str, int], config: VoteConfig = DEFAULT_VOTE
) -> tuple[list[tuple[str, float]], tuple[float, ...]]:
    """(labels ranked with their share of the vote, calibration features of the winner)."""
    scores: dict[str, float] = {}
    best: dict[str, float] = {}
    support: Counter[str] = Counter()
    for hit in hits[: config.k]:
        if hit.score <= 0:
            continue
        label = hit.chunk.label
        weight = hit.score**config.power / max(label_counts.get(label, 1), 1) ** config.prior
        scores[label] = scores.get(label, 0.0) + weight
        best[label] = max(best.get(label, 0.0), hit.score)
        support[label] += 1
    total = sum(scores.values())
    if not total:
        return [], (0.0, 0.0, 0.0, 0.0, 0.0)
    ranked = sorted(((label, s / total) for label, s in scores.items()), key=lambda x: -x[1])
    winner, share = ranked[0]
    margin = share - (ranked[1][1] if len(ranked) > 1 else 0.0)
    used = min(config.k, len(hits))
    builtin = 0.0 if "." in winner else 1.0  # builtins are harder to tell apart by usage
    features = (share, best[winner], support[winner] / max(used, 1), margin, builtin)
    return ranked, features


def fit_calibration(
    samples: Sequence[tuple[Sequence[float], bool]], *, steps: int = 500
) -> Calibration:
    """Logistic regression (Newton steps, light L2) of "the winner was right" on the vote
    features; falls back to the default when there are too few samples of either outcome."""
    import numpy as np

    if len(samples) < 20:
        return DEFAULT_CALIBRATION
    x = np.array([list(f) for f, _ in samples], dtype=np.float64)
    y = np.array([1.0 if ok else 0.0 for _, ok in samples])
    if y.sum() < 5 or (1 - y).sum() < 5:
        return DEFAULT_CALIBRATION
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    ridge = 1e-2 * np.eye(xb.shape[1])
    ridge[-1, -1] = 0.0
    for _ in range(min(steps, 100)):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) + ridge @ w
        hess = (xb.T * (p * (1 - p))) @ xb + ridge + 1e-9 * np.eye(xb.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Calibration(tuple(float(v) for v in w[:-1]), float(w[-1]), len(samples))


# -- names as the file spells them -----------------------------------------------------------


def allowed_roots(analysis: FileAnalysis, extra: Iterable[str] = ()) -> frozenset[str]:
    """Label roots a file can mean: the top-level packages it imports, its own package,
    ``builtins``, and ``extra`` (the families of the packs the file triggers)."""
    roots = {q.split(".", 1)[0] for q in analysis.imports.values()}
    if analysis.module:
        roots.add(analysis.module.split(".", 1)[0])
    roots.add("builtins")
    roots.update(extra)
    return frozenset(roots)


def display_form(analysis: FileAnalysis, label: str) -> tuple[str, str | None]:
    """(how this file can write ``label``, the import line it still needs or None).

    In order: a name the file imported that is this class (``Request`` after ``from fastapi
    import Request``); a path through a module the file imported (``pd.DataFrame`` after
    ``import pandas as pd``, also through a package that re-exports it); else the public name
    plus the import to add, taken from a package the file already uses when one re-exports it.
    """
    if "." not in label:
        return label, None
    resolver = analysis.resolver
    target = resolver.define(label)

    def same(qualified: str) -> bool:
        return qualified == label or resolver.define(qualified) == target

    for local, qualified in analysis.imports.items():
        if "." in qualified and local != qualified and same(qualified):
            return local, None
    imported = [q.split(".", 1)[0] for q in analysis.imports.values()]
    candidates = [label, *resolver.aliases(label, dict.fromkeys(imported))]
    through: list[str] = []
    for public in candidates:
        for local, qualified in analysis.imports.items():
            is_module = public.rpartition(".")[0] == qualified
            is_module = is_module or resolver.module_file(qualified) is not None
            if public.startswith(qualified + ".") and is_module:
                through.append(local + public[len(qualified) :])
    if through:
        return min(through, key=len), None
    preferred = [c for c in candidates if label_root(c) in imported] or [label]
    public = min(preferred, key=len)
    module, _, short = public.rpartition(".")
    if short in analysis.imports or short in analysis.classes:
        return public, f"import {module}"
    return short, f"from {module} import {short}"


# -- inference --------------------------------------------------------------------------------


def _evidence(hits: Sequence[SearchHit], label: str, limit: int = 3) -> tuple[Evidence, ...]:
    out = []
    for hit in hits:
        if hit.chunk.label == label:
            c = hit.chunk
            out.append(Evidence(c.file, c.start_line, c.label, round(hit.score, 4), c.text, c.pack))
            if len(out) == limit:
                break
    return tuple(out)


def infer_type(
    document: Document,
    offset: int,
    *,
    search: UsageSearch | None = None,
    resolver: ExportResolver | None = None,
    module: str = "",
    extra_roots: Iterable[str] = (),
    threshold: float = DEFAULT_THRESHOLD,
    calibration: Calibration | Callable[[str], Calibration] = DEFAULT_CALIBRATION,
    config: VoteConfig = DEFAULT_VOTE,
    analysis: FileAnalysis | None = None,
) -> TypeInference | None:
    """The type of the Python name at byte ``offset`` of ``document`` (None when the cursor
    is not on a variable name, the document is not parsed Python, or nothing is known).

    ``search`` runs the usage-index search (see :data:`UsageSearch`); without it only the
    syntax answers. ``calibration`` may be a function of the winning hit's pack.
    """
    if document.tree is None or document.language != "python":
        return None
    if analysis is None:
        analysis = analyse_python(document.tree, document.text, module=module,
                                  resolver=resolver or default_resolver())  # fmt: skip
    binding, node, scope = analysis.binding_at(offset)
    if node is None:
        return None
    name = node.text.decode("utf-8", errors="replace") if node.text else ""
    if not name or name in ("self", "cls") or name in analysis.imports or name in analysis.classes:
        return None
    if scope is None and binding is None:
        scope = node
        while scope.parent is not None and scope.type not in ("function_definition", "module"):
            scope = scope.parent
        if scope.type == "function_definition" and _is_parameter_list_name(node):
            return None
    if scope is None:
        return None
    span = (node.start_byte, node.end_byte)
    binding_span = (binding.node.start_byte, binding.node.end_byte) if binding else None
    annotated = binding is not None and binding.annotation is not None
    if binding is not None and binding.label is not None:
        display, _ = display_form(analysis, binding.label)
        return TypeInference(
            name=name,
            type=binding.label,
            display=display,
            confidence=1.0,
            source="syntax",
            how=_HOW.get(binding.how, binding.how),
            above_threshold=True,
            span=span,
            binding_span=binding_span,
            annotated=annotated,
        )
    if search is None:
        return None
    window = usage_window(
        analysis, scope, name, binding=binding, binding_node=None if binding else node
    )
    roots = allowed_roots(analysis, extra_roots)
    hits, counts = search(window.render(), roots, config.k)
    ranked, features = vote(hits, counts, config)
    if not ranked:
        return None
    label = ranked[0][0]
    winner_pack = next((h.chunk.pack for h in hits if h.chunk.label == label), "")
    calib = calibration(winner_pack) if callable(calibration) else calibration
    confidence = round(calib.confidence(features), 4)
    display, _ = display_form(analysis, label)
    return TypeInference(
        name=name,
        type=label,
        display=display,
        confidence=confidence,
        source="index",
        how="usages",
        above_threshold=confidence >= threshold,
        span=span,
        binding_span=binding_span,
        annotated=annotated,
        evidence=_evidence(hits, label),
        alternatives=tuple((lbl, round(s, 4)) for lbl, s in ranked[1:4]),
    )


def _is_parameter_list_name(node: object) -> bool:
    parent = getattr(node, "parent", None)
    return parent is not None and parent.type in ("keyword_argument",)


# -- the code action's edit -------------------------------------------------------------------


def _import_insert_offset(analysis: FileAnalysis) -> int:
    """Byte offset where a new top-level import line goes: after the last top-level import,
    else after the module docstring and ``from __future__`` lines, else at the start."""
    root = analysis.tree.root_node
    position = 0
    first = root.named_children[0].start_byte if root.named_child_count else -1
    imports = ("import_statement", "import_from_statement", "future_import_statement")
    for child in root.named_children:
        docstring = (
            child.type == "expression_statement"
            and child.start_byte == first
            and child.named_child_count > 0
            and child.named_children[0].type == "string"
        )
        if child.type in imports or docstring:
            position = child.end_byte
        elif child.type != "comment":
            break
    if position == 0:
        return 0
    newline = analysis.source.find(b"\n", position)
    return len(analysis.source) if newline < 0 else newline + 1


def type_hint_edit(
    document: Document,
    result: TypeInference,
    *,
    resolver: ExportResolver | None = None,
    module: str = "",
    analysis: FileAnalysis | None = None,
) -> list[TextEdit]:
    """Edits that annotate the name where it is bound (``x`` → ``x: pd.DataFrame``) and add
    the import the annotation needs. Empty when there is nowhere to put it (no binding in
    this file, already annotated, or not parsed Python)."""
    if document.tree is None or result.binding_span is None or result.annotated:
        return []
    if analysis is None:
        analysis = analyse_python(document.tree, document.text, module=module,
                                  resolver=resolver or default_resolver())  # fmt: skip
    start, end = result.binding_span
    node = analysis.tree.root_node.descendant_for_byte_range(start, end)
    if node is None or node.type != "identifier":
        return []
    parent = node.parent
    binding_ok = parent is not None and (
        parent.type in ("parameters", "default_parameter")
        or (parent.type == "assignment" and parent.child_by_field_name("left") == node)
    )
    if not binding_ok:
        return []
    display, needed = display_form(analysis, result.type)
    edits: list[TextEdit] = []
    if needed:
        at = _import_insert_offset(analysis)
        edits.append(TextEdit(at, at, needed + "\n"))
    if parent is not None and parent.type == "default_parameter":
        # `x=1` → `x: int = 1` (PEP 8 spacing changes with the annotation)
        value = parent.child_by_field_name("value")
        if value is not None:
            edits.append(TextEdit(node.end_byte, value.start_byte, f": {display} = "))
            return sorted(edits, key=lambda e: e.start)
    edits.append(TextEdit(node.end_byte, node.end_byte, f": {display}"))
    return sorted(edits, key=lambda e: e.start)


def apply_edits(text: bytes, edits: Sequence[TextEdit]) -> bytes:
    """``text`` with ``edits`` applied (for tests and previews)."""
    out = text
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        out = out[: edit.start] + edit.text.encode("utf-8") + out[edit.end :]
    return out
