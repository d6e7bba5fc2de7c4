"""Which tree-sitter grammar reads a document, and parsers for it.

Remora parses four grammars, loaded once from the per-language wheels: ``python``,
``javascript`` (which also reads JSX), ``typescript`` and ``tsx``. :func:`language_for` picks
one from the client's LSP ``languageId`` or, failing that, the file extension; everything else
about a language (queries, import rules) is keyed by the name it returns.
"""

from __future__ import annotations

from functools import cache
from posixpath import splitext
from typing import Literal, get_args
from urllib.parse import unquote, urlsplit

import tree_sitter_javascript
import tree_sitter_python
import tree_sitter_typescript
from tree_sitter import Language, Parser

__all__ = [
    "LANGUAGES",
    "Ecosystem",
    "LanguageName",
    "ecosystem_for",
    "get_language",
    "language_for",
    "new_parser",
]

LanguageName = Literal["python", "javascript", "typescript", "tsx"]
Ecosystem = Literal["python", "js"]

LANGUAGES: tuple[LanguageName, ...] = get_args(LanguageName)

_BY_LANGUAGE_ID: dict[str, LanguageName] = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",
    "typescript": "typescript",
    "typescriptreact": "tsx",
}

_BY_EXTENSION: dict[str, LanguageName] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
}


def language_for(uri: str, language_id: str | None) -> LanguageName | None:
    """The grammar for a document, or None when Remora does not parse it.

    A known LSP ``languageId`` wins (``python``, ``javascript``, ``javascriptreact``,
    ``typescript``, ``typescriptreact``); otherwise the extension of the URI's path decides
    (case-insensitively), so an unknown or missing id on ``x.py`` still means Python.
    """
    if language_id:
        known = _BY_LANGUAGE_ID.get(language_id.strip().lower())
        if known is not None:
            return known
    try:
        path = unquote(urlsplit(uri).path) or uri
    except ValueError:
        path = uri
    return _BY_EXTENSION.get(splitext(path)[1].lower())


def ecosystem_for(language: LanguageName | str) -> Ecosystem:
    """``"python"`` for Python, ``"js"`` for JavaScript, TypeScript and TSX."""
    return "python" if language == "python" else "js"


@cache
def get_language(language: LanguageName | str) -> Language:
    """The tree-sitter :class:`Language` for a name from :data:`LANGUAGES` (loaded once).

    Raises ``ValueError`` for any other name.
    """
    if language == "python":
        return Language(tree_sitter_python.language())
    if language == "javascript":
        return Language(tree_sitter_javascript.language())
    if language == "typescript":
        return Language(tree_sitter_typescript.language_typescript())
    if language == "tsx":
        return Language(tree_sitter_typescript.language_tsx())
    raise ValueError(f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")


def new_parser(language: LanguageName | str) -> Parser:
    """A fresh parser for ``language``. Parsers hold state: use one per thread."""
    return Parser(get_language(language))
