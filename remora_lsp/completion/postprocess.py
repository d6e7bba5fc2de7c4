"""From raw model output to the text an editor should show: trimmed, balanced, not redundant.

:func:`finish_suggestion` applies the rules below to what the model generated after the
prompt; :func:`block_complete` tells a streaming caller that the block already ended, so the
request can be aborted early instead of generating text that would be thrown away.

- **Shape.** ``single`` mode keeps the first line. ``multi`` mode keeps the block the cursor is
  in (or opens): lines at least as indented as the block's first line; the first line indented
  less ends it (a closing ``}``/``)``/``]`` line is kept when the block is not already closed
  further down). A second consecutive blank line, a blank line at module level, or
  ``max_lines`` ends it too. A generation cut by the token limit loses its last, unfinished line.
- **Brackets.** The suggestion never closes a bracket that is not open: closers beyond those
  the statement left open (minus those the text after the cursor already closes) cut it.
- **Suffix.** Text that only retypes what follows the cursor is removed; a suggestion that is
  nothing but the following code is dropped.
- **Indentation.** On a blank line the prompt ends before the line's white space (so the model
  writes its own indentation); the white space the user already typed is removed again.
"""

from __future__ import annotations

from remora_lsp.completion.cursor import CLOSERS, OPENERS, CursorContext, indent_of

__all__ = ["block_complete", "finish_suggestion", "scan_brackets"]


def scan_brackets(text: str, language: str, available: list[str]) -> tuple[int | None, list[str]]:
    """Where ``text`` first closes a bracket that is not open (None if never), and the
    brackets it leaves open. ``available`` are openers before ``text`` it may close."""
    available = list(available)
    stack: list[str] = []
    i, n = 0, len(text)
    line_comment = "#" if language == "python" else "//"
    while i < n:
        ch = text[i]
        if text.startswith(line_comment, i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch in "\"'`":
            quote = ch * 3 if language == "python" and text.startswith(ch * 3, i) else ch
            j = i + len(quote)
            while j < n and not text.startswith(quote, j):
                if text[j] == "\\":
                    j += 1
                elif text[j] == "\n" and len(quote) == 1 and ch != "`":
                    break
                j += 1
            i = j + len(quote)
            continue
        if ch in OPENERS:
            stack.append(ch)
        elif ch in CLOSERS:
            want = CLOSERS[ch]
            if stack:
                if stack[-1] != want:
                    return i, stack
                stack.pop()
            elif available and available[-1] == want:
                available.pop()
            else:
                return i, stack
        i += 1
    return None, stack


def _available_openers(ctx: CursorContext) -> list[str]:
    """Openers the suggestion may close: open at the cursor, not closed by the line suffix."""
    available = list(ctx.open_stack)
    for ch in ctx.line_suffix.strip():
        if ch in CLOSERS and available and available[-1] == CLOSERS[ch]:
            available.pop()
        elif ch in CLOSERS:
            break
    return available


def _trim_block(ctx: CursorContext, lines: list[str], max_lines: int) -> tuple[list[str], bool]:
    """Keep the block's lines; also say whether its end was seen."""
    header = lines[0]
    if ctx.opener_line:
        if header.rstrip() != ctx.line_prefix.rstrip():
            return [header], len(lines) > 1  # the model continued the header line instead
        outer = len(indent_of(ctx.line_prefix))
        out, base = [header], None
        rest = lines[1:]
    else:
        while len(lines) > 1 and not lines[0].strip():
            lines = lines[1:]
        header = lines[0]
        outer = -1
        base = len(indent_of(header))
        out, rest = [header], lines[1:]
    blank_run = 0
    for line in rest:
        if len(out) >= max_lines:
            return out, True
        if not line.strip():
            blank_run += 1
            if blank_run >= 2 or base == 0:
                return out, True
            out.append("")
            continue
        blank_run = 0
        width = len(indent_of(line))
        if base is None:
            if width <= outer:
                return out, True  # nothing indented under the header
            base = width
        if width < base:
            closes = line.strip()[:1] in CLOSERS and width <= max(outer, 0)
            if closes and ctx.opener_line and not ctx.block_closed:
                out.append(line)
            return out, True
        out.append(line)
    return out, False


def _shape(ctx: CursorContext, full: str, truncated: bool, max_lines: int) -> str:
    lines = full.split("\n")
    if ctx.mode == "single":
        return lines[0]
    kept, ended = _trim_block(ctx, lines, max_lines)
    if truncated and not ended and len(kept) > 1:
        kept = kept[:-1]  # the last line was cut by the token limit
    while len(kept) > 1 and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept)


def _insert_text(ctx: CursorContext, full: str, prompt_line: str) -> str:
    """The part of the shaped line(s) the editor inserts at the cursor."""
    if full.startswith(ctx.line_prefix):
        return full[len(ctx.line_prefix) :]
    if not ctx.line_prefix.strip():
        return full.lstrip(" \t")
    return full[len(prompt_line) :]


def _drop_suffix_overlap(ctx: CursorContext, text: str) -> str | None:
    rest = ctx.line_suffix.strip()
    if ctx.mode == "single" and rest:
        if rest.startswith(text.strip()):
            return None
        for k in range(len(rest), 0, -1):
            if (k >= 2 or k == len(rest)) and text.endswith(rest[:k]):
                return text[: len(text) - k]
        return text
    following = [line.strip() for line in ctx.suffix.split("\n")[1:] if line.strip()]
    lines = text.split("\n")
    body = [line.strip() for line in lines if line.strip()]
    if not following or not body:
        return text
    if body[0] == following[0] and (len(body) > 1 or not ctx.line_prefix.strip()):
        return None  # it only retypes the code that follows
    for k in range(min(len(lines), len(following)), 0, -1):
        tail = [line.strip() for line in lines[-k:]]
        if tail == following[:k] and all(tail):
            return "\n".join(lines[:-k])
    return text


def _cut_at_fence(generated: str) -> str:
    """Chat-tuned models drift into Markdown: nothing from a code fence (```) on is code."""
    index = generated.find("```")
    return generated if index < 0 else generated[:index]


def finish_suggestion(
    ctx: CursorContext,
    generated: str,
    *,
    prompt_line: str | None = None,
    truncated: bool = False,
    max_lines: int = 16,
) -> str | None:
    """The text to insert at the cursor, or None when nothing useful is left.

    ``generated`` is the model's continuation of the prompt, whose last line was
    ``prompt_line`` (the cursor line's text before the cursor, or "" when the prompt left out
    the white space of a blank line); ``truncated`` says the token limit cut it.
    """
    if ctx.mode is None:
        return None
    prompt_line = ctx.line_prefix if prompt_line is None else prompt_line
    generated = _cut_at_fence(generated.replace("\r\n", "\n"))
    full = prompt_line + generated
    shaped = _shape(ctx, full, truncated, max_lines)
    text = _insert_text(ctx, shaped, prompt_line)
    cut, _ = scan_brackets(text, ctx.language, _available_openers(ctx))
    if cut is not None:
        text = text[:cut]
    if not text.strip():
        return None
    text = text.rstrip()
    dropped = _drop_suffix_overlap(ctx, text)
    if dropped is None or not dropped.strip():
        return None
    return dropped.rstrip()


def block_complete(
    ctx: CursorContext, generated: str, prompt_line: str | None = None, max_lines: int = 16
) -> bool:
    """Whether ``generated`` already holds everything :func:`finish_suggestion` would keep."""
    if ctx.mode is None:
        return True
    prompt_line = ctx.line_prefix if prompt_line is None else prompt_line
    full = prompt_line + generated
    if ctx.mode == "single":
        return "\n" in generated
    _, ended = _trim_block(ctx, full.split("\n"), max_lines)
    return ended
