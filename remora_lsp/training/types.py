"""Records passed between the training stages, and the held-out split they all agree on.

Every stage reads and writes these plain frozen dataclasses (JSON round-trippable through
:func:`to_data` / ``from_data``), so that a stage's output can be checkpointed in the run's work
folder and a resumed run picks it up unchanged. :func:`is_heldout` is the one file-level split:
a file is either used for training by every stage or held out for evaluation by every stage, so
no metric is measured on text a model was trained on.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CodeUnit",
    "DocSection",
    "Pair",
    "RepoScan",
    "Source",
    "is_heldout",
    "to_data",
]

UnitKind = Literal["function", "method", "class"]
PairKind = Literal["docstring", "doc_section", "usage_type"]


def is_heldout(path: str, *, seed: int = 0, fraction: float = 0.15) -> bool:
    """Whether the file ``path`` (posix, relative to the source root) is held out.

    Deterministic in ``(path, seed)``: the same file lands on the same side in every stage and
    every run with the same seed.
    """
    digest = hashlib.sha256(f"{seed}:{path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def to_data(record: Any) -> Any:
    """A JSON-ready copy of a record (dataclasses → dicts, tuples → lists, paths → str)."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: to_data(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, (list, tuple)):
        return [to_data(v) for v in record]
    if isinstance(record, dict):
        return {str(k): to_data(v) for k, v in record.items()}
    if isinstance(record, Path):
        return record.as_posix()
    return record


@dataclass(frozen=True)
class Source:
    """A resolved SOURCE: the folder to read and what it is.

    ``kind`` is ``folder``, ``git`` (cloned into the work folder) or ``distribution`` (an
    installed package: ``root`` is its site-packages folder and ``packages`` its top-level
    import names, which only are walked). ``readme`` is documentation that came with the source
    (a distribution's long description), Markdown or reStructuredText text, or ``""``.
    """

    spec: str
    kind: Literal["folder", "git", "distribution"]
    root: Path
    name: str
    version: str = ""
    packages: tuple[str, ...] = ()
    license: str = ""
    license_files: tuple[str, ...] = ()
    readme: str = ""
    readme_format: Literal["markdown", "rst", "text", ""] = ""

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Source:
        return cls(**{**data, "root": Path(data["root"]), "packages": tuple(data["packages"]),
                      "license_files": tuple(data["license_files"])})  # fmt: skip


@dataclass(frozen=True)
class CodeUnit:
    """A function, method or class found by the RepoWalker.

    ``path`` is posix and relative to the source root; lines are 1-based and inclusive;
    ``code`` is the exact source text of those lines (decorators included). ``covered`` is
    ``None`` without coverage data. ``golden`` says whether the unit is a golden snippet and
    ``reason`` why or why not (``golden``, ``not covered``, ``undocumented``, ``too short``,
    ``too long``, ``duplicate``, ``generated``, ``test code``).
    """

    path: str
    qualname: str
    kind: UnitKind
    start_line: int
    end_line: int
    code: str
    docstring: str = ""
    signature: str = ""
    covered: bool | None = None
    golden: bool = False
    reason: str = ""

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> CodeUnit:
        return cls(**data)


@dataclass(frozen=True)
class RepoScan:
    """What the RepoWalker found in a source.

    ``files`` are the Python files read (posix, relative to ``root``); ``test_files`` the ones
    recognised as tests (never training text). ``golden_rule`` says how golden snippets were
    chosen: ``"coverage: <file>"`` or ``"proxy: <what>"`` when there was no coverage data.
    ``stats`` counts units by ``reason``.
    """

    root: Path
    files: tuple[str, ...]
    units: tuple[CodeUnit, ...]
    test_files: tuple[str, ...] = ()
    license: str = ""
    license_files: tuple[str, ...] = ()
    golden_rule: str = ""
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def golden(self) -> tuple[CodeUnit, ...]:
        return tuple(u for u in self.units if u.golden)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> RepoScan:
        return cls(
            root=Path(data["root"]),
            files=tuple(data["files"]),
            units=tuple(CodeUnit.from_data(u) for u in data["units"]),
            test_files=tuple(data.get("test_files", ())),
            license=data.get("license", ""),
            license_files=tuple(data.get("license_files", ())),
            golden_rule=data.get("golden_rule", ""),
            stats=dict(data.get("stats", {})),
        )


@dataclass(frozen=True)
class DocSection:
    """One section of documentation.

    ``source`` is the file (posix, relative to the docs root) or URL it came from; ``headings``
    the heading path from the page title down to this section (the last one is the section's
    own heading); ``text`` the section's prose and code as plain text (Markdown-ish: code
    blocks fenced); ``code_names`` the dotted or plain identifiers the section mentions in code
    (inline code, code blocks, API references), for pairing sections with code.
    """

    source: str
    headings: tuple[str, ...]
    text: str
    code_names: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return self.headings[-1] if self.headings else ""

    def with_context(self) -> str:
        """The section as embedded and indexed: its heading path, a blank line, its text."""
        head = " > ".join(self.headings)
        return f"{head}\n\n{self.text}" if head else self.text

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> DocSection:
        return cls(
            source=data["source"],
            headings=tuple(data["headings"]),
            text=data["text"],
            code_names=tuple(data.get("code_names", ())),
        )


@dataclass(frozen=True)
class Pair:
    """A retrieval training pair: ``query`` should find ``positive``.

    ``kind`` is how it was mined; ``path`` the source file of the code side (for the held-out
    split: :func:`is_heldout` on it decides train vs evaluation).
    """

    query: str
    positive: str
    kind: PairKind
    path: str

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Pair:
        return cls(**data)
