"""What the syntax at the cursor asks for: one line, a block, or nothing.

:func:`analyze_cursor` reads a document snapshot (bytes + tree-sitter tree) at a byte offset
and returns a :class:`CursorContext`: the text around the cursor, the completion ``mode`` and
the facts the post-filter needs (indentation, open brackets, whether the block the cursor opens
is already closed further down). The rules, in order:

1. inside a word (an identifier character right after the cursor): no completion;
2. inside a string or a comment, or text after the cursor on the same line: ``single`` line;
3. at the very end of a line that opens a block (Python ``def ...:`` / ``if ...:``; a
   trailing ``{``, ``(`` or ``[`` in any language): ``multi`` line, the block's body (with an
   auto-inserted closer right after the cursor it is ``single``: the arguments);
4. on a blank line in statement position (a module, a class or function body): ``multi``;
   on a blank line inside brackets (an argument list, a dict literal): ``single``;
5. anything else (finishing a statement already begun): ``single``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from tree_sitter import Node, Tree

__all__ = [
    "CLOSERS",
    "OPENERS",
    "CompletionMode",
    "CursorContext",
    "analyze_cursor",
    "indent_of",
    "open_brackets",
]

CompletionMode = Literal["single", "multi"]
OPENERS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = {v: k for k, v in OPENERS.items()}

_WORD = re.compile(r"\w", re.UNICODE)
_PY_BLOCK_HEADER = re.compile(
    r"^\s*(async\s+)?(def|class|if|elif|else|for|while|try|except|finally|with|match|case)\b.*:$"
    r"|^\s*(else|try|finally)\s*:$"
)
_STRING_TYPES = {"string", "string_content", "template_string", "string_fragment"}
_COMMENT_TYPES = {"comment", "line_comment", "block_comment"}
_BRACKET_TYPES = {
    # python
    "argument_list",
    "parameters",
    "list",
    "dictionary",
    "set",
    "tuple",
    "parenthesized_expression",
    "subscript",
    "generator_expression",
    "list_comprehension",
    "dictionary_comprehension",
    "set_comprehension",
    # javascript / typescript
    "arguments",
    "formal_parameters",
    "array",
    "object",
    "object_pattern",
    "array_pattern",
    "type_arguments",
}
_STATEMENT_TYPES = {
    "module",
    "block",
    "program",
    "statement_block",
    "class_body",
    "switch_body",
}


@dataclass(frozen=True, slots=True)
class CursorContext:
    """The cursor's surroundings, as the prompt builder and post-filter need them.

    ``prefix``/``suffix`` are the whole text before/after the cursor; ``line_prefix`` and
    ``line_suffix`` the parts of the cursor's line. ``indent`` is the indentation of the
    cursor's line, ``indent_unit`` the file's usual indentation step. ``open_stack`` lists the
    brackets still open at the cursor in the current statement (innermost last).
    ``block_closed`` says whether the block the cursor opens already has its closing line
    in the suffix (so a suggestion must not repeat it). ``reason`` explains ``mode``.
    """

    language: str
    offset: int
    prefix: str
    suffix: str
    line_prefix: str
    line_suffix: str
    mode: CompletionMode | None
    reason: str
    indent: str
    indent_unit: str
    opener_line: bool
    open_stack: tuple[str, ...]
    block_closed: bool
    in_string: bool = False
    in_comment: bool = False

    @property
    def blank_line(self) -> bool:
        """Whether only white space precedes the cursor on its line."""
        return not self.line_prefix.strip()

    @property
    def comment_prefix(self) -> str:
        """How a line comment starts in this language."""
        return "# " if self.language == "python" else "// "


def indent_of(line: str) -> str:
    """The leading white space of ``line``."""
    return line[: len(line) - len(line.lstrip(" \t"))]


def _indent_unit(text: str) -> str:
    """The file's indentation step: a tab, or the most common increase in spaces (default 4)."""
    counts: dict[int, int] = {}
    previous = 0
    for line in text.splitlines()[:2000]:
        if not line.strip():
            continue
        ws = indent_of(line)
        if ws.startswith("\t"):
            return "\t"
        width = len(ws)
        if width > previous:
            counts[width - previous] = counts.get(width - previous, 0) + 1
        previous = width
    if not counts:
        return "    "
    return " " * max(counts, key=lambda k: (counts[k], -k))


def _strip_line_comment(line: str, language: str) -> str:
    marker = "#" if language == "python" else "//"
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif line.startswith(marker, i):
            return line[:i]
    return line


def open_brackets(text: str, language: str) -> list[str]:
    """The brackets ``text`` leaves open (innermost last), skipping strings and comments.

    A closer that matches nothing is ignored; the scan is approximate by design (no
    f-string or template nesting) and only ever looks at one statement's worth of text.
    """
    stack: list[str] = []
    i, n = 0, len(text)
    line_comment = "#" if language == "python" else "//"
    while i < n:
        ch = text[i]
        if text.startswith(line_comment, i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if language != "python" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if ch in "\"'`":
            triple = ch * 3 if language == "python" and text.startswith(ch * 3, i) else None
            quote = triple or ch
            j = i + len(quote)
            while j < n:
                if text[j] == "\\":
                    j += 2
                    continue
                if text.startswith(quote, j):
                    break
                if text[j] == "\n" and not triple and ch != "`":
                    break
                j += 1
            i = j + len(quote)
            continue
        if ch in OPENERS:
            stack.append(ch)
        elif ch in CLOSERS and stack and stack[-1] == CLOSERS[ch]:
            stack.pop()
        i += 1
    return stack


def _statement_start(tree: Tree | None, offset: int, prefix: str) -> int:
    """Character index in ``prefix`` where the statement holding the cursor starts."""
    window = max(0, len(prefix) - 8192)
    if tree is None:
        return window
    root = tree.root_node
    node: Node | None = root.descendant_for_byte_range(offset, offset)
    top: Node | None = None
    while node is not None and node != root:
        parent = node.parent
        if (
            node.type not in _STATEMENT_TYPES
            and parent is not None
            and parent.type in _STATEMENT_TYPES
            and node.start_byte < offset
        ):
            top = node
            break
        node = node.parent
    if top is None:
        return window
    # Convert a byte offset into a character index of the prefix.
    before = len(prefix.encode("utf-8")) - (offset - top.start_byte)
    start = len(prefix.encode("utf-8")[: max(0, before)].decode("utf-8", errors="ignore"))
    return max(window, start)


def _classify(tree: Tree | None, offset: int) -> tuple[bool, bool, str | None]:
    """(in a string, in a comment, type of the innermost bracket/statement construct)."""
    if tree is None:
        return False, False, None
    root = tree.root_node
    probe = max(0, offset - 1)
    node: Node | None = root.descendant_for_byte_range(probe, offset)
    in_string = in_comment = False
    container: str | None = None
    while node is not None:
        kind = node.type
        inside = node.start_byte < offset < node.end_byte
        if kind in _STRING_TYPES and inside:
            in_string = True
        elif kind in _COMMENT_TYPES and node.start_byte < offset <= node.end_byte:
            in_comment = True
        elif container is None and kind in _BRACKET_TYPES and inside:
            container = "bracket"
        elif container is None and kind in _STATEMENT_TYPES:
            container = "statement"
        node = node.parent
    return in_string, in_comment, container


def _next_code_line(suffix: str) -> str | None:
    for line in suffix.split("\n")[1:]:
        if line.strip():
            return line
    return None


def analyze_cursor(
    text: bytes, tree: Tree | None, language: str | None, offset: int
) -> CursorContext:
    """Describe the cursor at byte ``offset`` of ``text`` (see the module docstring)."""
    language = language or "python"
    offset = max(0, min(offset, len(text)))
    prefix = text[:offset].decode("utf-8", errors="replace")
    suffix = text[offset:].decode("utf-8", errors="replace")
    line_prefix = prefix[prefix.rfind("\n") + 1 :]
    end = suffix.find("\n")
    line_suffix = suffix if end < 0 else suffix[:end]
    indent = indent_of(line_prefix if line_prefix.strip() else line_prefix + "x")
    unit = _indent_unit(prefix[-20000:] + suffix[:5000])
    in_string, in_comment, container = _classify(tree, offset)
    statement = prefix[_statement_start(tree, offset, prefix) :]
    stack = open_brackets(statement, language)
    code_line = _strip_line_comment(line_prefix, language).rstrip()
    opener = bool(code_line) and (
        code_line[-1] in OPENERS
        or (language == "python" and _PY_BLOCK_HEADER.match(code_line) is not None)
    )
    next_line = _next_code_line(suffix)
    block_closed = False
    if opener and next_line is not None:
        next_indent = len(indent_of(next_line))
        if next_indent <= len(indent_of(line_prefix)):
            closer = OPENERS.get(code_line[-1], "")
            block_closed = bool(closer) and next_line.strip().startswith(closer)

    def ctx(mode: CompletionMode | None, reason: str) -> CursorContext:
        return CursorContext(
            language=language,
            offset=offset,
            prefix=prefix,
            suffix=suffix,
            line_prefix=line_prefix,
            line_suffix=line_suffix,
            mode=mode,
            reason=reason,
            indent=indent,
            indent_unit=unit,
            opener_line=opener,
            open_stack=tuple(stack),
            block_closed=block_closed,
            in_string=in_string,
            in_comment=in_comment,
        )

    if line_suffix[:1] and _WORD.match(line_suffix[0]):
        return ctx(None, "inside a word")
    if in_string or in_comment:
        return ctx("single", "inside a string" if in_string else "inside a comment")
    rest = line_suffix.strip()
    if rest and not all(ch in CLOSERS or ch in "\"'`;:," for ch in rest):
        return ctx("single", "text after the cursor on this line")
    if opener and not rest:
        return ctx("multi", "the line opens a block")
    if not line_prefix.strip():
        if container == "bracket" or stack:
            return ctx("single", "blank line inside brackets")
        return ctx("multi", "blank line in statement position")
    return ctx("single", "finishing the current line")
