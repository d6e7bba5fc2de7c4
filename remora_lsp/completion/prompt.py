"""The prompt for one completion: windows of the file around the cursor within a token budget.

:func:`build_prompt` spends a token budget (counted with the engine's own tokenizer) on, in
order of priority: the text just before the cursor (whole lines, nearest first), the text just
after it (only when the model has fill-in-the-middle tokens), and context: the signatures of
functions and classes defined elsewhere in the same file (:func:`file_definitions`) and any
snippets retrieved from the active packs' indexes. A model with FIM tokens gets
``<prefix-token>context+before<suffix-token>after<middle-token>``; any other model gets
``context+before`` and continues it. Context is laid out as separate files when the tokenizer
has a file separator token, else as a comment block. On a blank line the prompt stops before
the line's white space, so the model writes its own indentation, and after a word a prompt
never ends in spaces (it would tokenize unlike anything seen in training).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from tree_sitter import Node, Tree

from remora_lsp.completion.cursor import CursorContext
from remora_lsp.inference.engine import FimTokens

__all__ = [
    "ContextSnippet",
    "Definition",
    "Prompt",
    "PromptBudget",
    "build_prompt",
    "file_definitions",
]

_PY_DEFS = {"function_definition", "class_definition"}
_JS_DEFS = {
    "function_declaration",
    "generator_function_declaration",
    "class_declaration",
    "method_definition",
    "interface_declaration",
    "type_alias_declaration",
    "abstract_class_declaration",
}
_CLASS_BODIES = {"block", "class_body"}


@dataclass(frozen=True, slots=True)
class ContextSnippet:
    """A piece of code retrieved for this completion (e.g. from a pack's index)."""

    text: str
    source: str


@dataclass(frozen=True, slots=True)
class Definition:
    """A function or class header in the current file (``start_byte`` where it begins)."""

    signature: str
    start_byte: int
    end_byte: int
    depth: int = 0


@dataclass(frozen=True, slots=True)
class PromptBudget:
    """How many prompt tokens in all, and the most the suffix and the context may take."""

    total_tokens: int = 1536
    suffix_share: float = 0.15
    context_share: float = 0.25


@dataclass(frozen=True, slots=True)
class Prompt:
    """The prompt text and what went into it."""

    text: str
    mode: Literal["fim", "prefix"]
    prompt_line: str
    prefix_tokens: int
    suffix_tokens: int
    context_tokens: int
    definitions: tuple[str, ...] = ()
    snippets: int = 0


def _header(node: Node, text: bytes) -> str:
    body = node.child_by_field_name("body")
    end = body.start_byte if body is not None else node.end_byte
    header = text[node.start_byte : end].decode("utf-8", errors="replace")
    header = " ".join(part.strip() for part in header.splitlines()).strip()
    return header.rstrip("{").rstrip()


def file_definitions(tree: Tree | None, text: bytes, language: str) -> list[Definition]:
    """Top-level functions and classes of a file and the methods of its classes, in order."""
    if tree is None:
        return []
    kinds = _PY_DEFS if language == "python" else _JS_DEFS
    found: list[Definition] = []

    def visit(node: Node, depth: int) -> None:
        for child in node.named_children:
            target = child
            if child.type == "decorated_definition":
                target = child.child_by_field_name("definition") or child
            elif child.type in {"export_statement", "lexical_declaration"}:
                inner = child.child_by_field_name("declaration")
                target = inner or child
            if target.type in kinds:
                found.append(
                    Definition(_header(target, text), child.start_byte, child.end_byte, depth)
                )
                body = target.child_by_field_name("body")
                if depth == 0 and body is not None and "class" in target.type:
                    visit(body, depth + 1)
            elif child.type == "ERROR" or (child.type in _CLASS_BODIES and depth == 0):
                visit(child, depth)  # incomplete code at the cursor often wraps the file

    visit(tree.root_node, 0)
    return found


def _window_before(
    lines: list[str], budget: int, count: Callable[[str], int]
) -> tuple[list[str], int]:
    """The last lines of ``lines`` that fit ``budget`` tokens (always the cursor line)."""
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        cost = count(line) + 1
        if kept and used + cost > budget:
            break
        kept.append(line)
        used += cost
    kept.reverse()
    return kept, used


def _window_after(
    lines: list[str], budget: int, count: Callable[[str], int]
) -> tuple[list[str], int]:
    kept: list[str] = []
    used = 0
    for line in lines:
        cost = count(line) + 1
        if kept and used + cost > budget:
            break
        if not kept and cost > budget:
            break
        kept.append(line)
        used += cost
    return kept, used


def _commented(text: str, comment: str) -> str:
    return "\n".join(
        comment + line if line.strip() else comment.rstrip() for line in text.splitlines()
    )


def build_prompt(
    ctx: CursorContext,
    tree: Tree | None,
    text: bytes,
    *,
    count_tokens: Callable[[str], int],
    fim: FimTokens | None = None,
    file_separator: str | None = None,
    path: str = "",
    snippets: Sequence[ContextSnippet] = (),
    budget: PromptBudget = PromptBudget(),
) -> Prompt:
    """The prompt for the cursor described by ``ctx`` (see the module docstring)."""
    comment = ctx.comment_prefix
    file_separator = file_separator or (fim.file_sep if fim is not None else None)
    # A prompt ending in white space tokenizes unlike anything seen in training (the space
    # usually starts the next word's token): end it before the spaces and let the model write
    # them; the post-filter removes what the user already typed.
    prompt_line = "" if ctx.blank_line else ctx.line_prefix.rstrip(" \t")
    before_text = ctx.prefix[: len(ctx.prefix) - len(ctx.line_prefix)] + prompt_line
    total = budget.total_tokens
    suffix_lines: list[str] = []
    suffix_used = 0
    if fim is not None:
        suffix_budget = int(total * budget.suffix_share)
        suffix_lines, suffix_used = _window_after(
            ctx.suffix.split("\n"), suffix_budget, count_tokens
        )

    # Context candidates: definitions outside what the windows show, then retrieved snippets.
    all_definitions = file_definitions(tree, text, ctx.language)
    reserve = int(total * budget.context_share) if (all_definitions or snippets) else 0
    prefix_budget = total - suffix_used - reserve
    prefix_lines, prefix_used = _window_before(before_text.split("\n"), prefix_budget, count_tokens)
    window_start = len(before_text.encode("utf-8")) - len("\n".join(prefix_lines).encode("utf-8"))
    suffix_end = ctx.offset + len("\n".join(suffix_lines).encode("utf-8"))
    definitions = [
        d for d in all_definitions if d.start_byte < window_start or d.start_byte >= suffix_end
    ]
    blocks: list[str] = []
    signatures: list[str] = []
    used = 0
    room = total - prefix_used - suffix_used
    if definitions:
        title = f"{comment}Defined in this file:"
        used += count_tokens(title) + 1
        for item in definitions:
            line = f"{comment}{'    ' * item.depth}{item.signature}"
            cost = count_tokens(line) + 1
            if used + cost > room:
                break
            signatures.append(line)
            used += cost
        if not signatures:
            used = 0
    used_snippets = 0
    snippet_parts: list[str] = []
    for snippet in snippets:
        body = snippet.text.rstrip()
        if file_separator:
            part = f"{file_separator}{snippet.source}\n{body}\n"
        else:
            part = f"{comment}From {snippet.source}:\n{_commented(body, comment)}\n"
        cost = count_tokens(part)
        if used + cost > room:
            continue
        snippet_parts.append(part)
        used += cost
        used_snippets += 1
    if snippet_parts:
        blocks.extend(snippet_parts)
    if file_separator and snippet_parts:
        blocks.append(f"{file_separator}{path}\n")
    if signatures:
        blocks.append(f"{comment}Defined in this file:\n" + "\n".join(signatures) + "\n")
    context = "".join(blocks)
    before = context + "\n".join(prefix_lines)
    if fim is not None:
        body = f"{fim.prefix}{before}{fim.suffix}{chr(10).join(suffix_lines)}{fim.middle}"
        mode: Literal["fim", "prefix"] = "fim"
    else:
        body, mode = before, "prefix"
    return Prompt(
        text=body,
        mode=mode,
        prompt_line=prompt_line,
        prefix_tokens=prefix_used,
        suffix_tokens=suffix_used,
        context_tokens=used,
        definitions=tuple(s.removeprefix(comment).strip() for s in signatures),
        snippets=used_snippets,
    )
