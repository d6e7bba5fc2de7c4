"""One inline completion, start to finish: cursor analysis, cache, prompt, generation, filter.

:func:`complete` is what the LSP handler calls with a document snapshot, a byte offset and an
engine; it returns a :class:`Completion` or None (nothing sensible to suggest, the engine is
down, or the request was cancelled). The generation is streamed, and for a multi-line
suggestion the stream is closed, which aborts the request in the engine, as soon as the block
the cursor is in has ended. :func:`plan_completion` and :func:`finish_suggestion` are the pure
halves, usable without any engine.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from remora_lsp.completion.cache import SuggestionCache
from remora_lsp.completion.cursor import CompletionMode, CursorContext, analyze_cursor
from remora_lsp.completion.postprocess import block_complete, finish_suggestion
from remora_lsp.completion.prompt import ContextSnippet, Prompt, PromptBudget, build_prompt
from remora_lsp.core.documents import Document
from remora_lsp.inference.engine import CancelToken, Engine, GenerationRequest, ModelIdentity
from remora_lsp.inference.errors import EngineError

__all__ = ["Completion", "CompletionOptions", "CompletionPlan", "complete", "plan_completion"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompletionOptions:
    """Knobs of one completion request."""

    max_tokens_single: int = 48
    max_tokens_multi: int = 160
    max_lines: int = 16
    prompt_tokens: int = 1536
    suffix_share: float = 0.15
    context_share: float = 0.25
    temperature: float = 0.0


DEFAULT_OPTIONS = CompletionOptions()


@dataclass(frozen=True, slots=True)
class CompletionPlan:
    """Everything decided before generation: the cursor's context, prompt and token limit."""

    context: CursorContext
    prompt: Prompt
    max_tokens: int
    stop: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Completion:
    """A suggestion to insert at byte ``offset``.

    ``source`` says whether it was generated or served from the cache while the user typed
    through an earlier suggestion.
    """

    text: str
    offset: int
    mode: CompletionMode
    source: Literal["model", "cache"]
    adapter: str | None
    elapsed_s: float
    prompt_tokens: int = 0
    reason: str = ""


def _path_label(uri: str) -> str:
    try:
        path = unquote(urlsplit(uri).path) or uri
    except ValueError:
        path = uri
    parts = [p for p in path.split("/") if p]
    return "/".join(parts[-2:]) if parts else "untitled"


def plan_completion(
    document: Document,
    offset: int,
    identity: ModelIdentity,
    count_tokens: Callable[[str], int],
    *,
    snippets: Sequence[ContextSnippet] = (),
    options: CompletionOptions = DEFAULT_OPTIONS,
    file_separator: str | None = None,
) -> CompletionPlan | None:
    """The plan for a completion at byte ``offset``, or None where nothing should be offered."""
    ctx = analyze_cursor(document.text, document.tree, document.language, offset)
    if ctx.mode is None:
        return None
    separator = file_separator or (identity.fim.file_sep if identity.fim else None)
    prompt = build_prompt(
        ctx,
        document.tree,
        document.text,
        count_tokens=count_tokens,
        fim=identity.fim,
        file_separator=separator,
        path=_path_label(document.uri),
        snippets=snippets,
        budget=PromptBudget(options.prompt_tokens, options.suffix_share, options.context_share),
    )
    if ctx.mode == "single":
        return CompletionPlan(ctx, prompt, options.max_tokens_single, ("\n",))
    stops = ("\n\n\n",) if ctx.indent else ("\n\n",)
    return CompletionPlan(ctx, prompt, options.max_tokens_multi, stops)


def heal_prompt(prompt: Prompt) -> tuple[str, str]:
    """(prompt text, gap): a prefix-only prompt that ends in a newline (plus any indentation or
    blank lines) is cut before that newline, and the model must write the gap itself.

    BPE tokenizers merge a newline with the next line's indentation (SmolLM2: ``"\n   "`` then
    ``" return"``), so a prompt ending in ``"\n"`` or ``"\n    "`` asks for a continuation of
    a token the model rarely saw in that position; it answers with a stray space or nothing.
    Ending the prompt at the previous line and stripping the regenerated gap (prompt healing)
    gives the continuation it was trained on; what follows the gap is exactly what it would
    have written after the original prompt. FIM prompts are left alone (the suffix follows).
    """
    if prompt.mode != "prefix":
        return prompt.text, ""
    stripped = prompt.text.rstrip(" \t\n")
    newline = prompt.text.find("\n", len(stripped))
    if not stripped or newline < 0:
        return prompt.text, ""
    return prompt.text[:newline], prompt.text[newline:]


def _after_gap(raw: str, gap: str) -> str | None:
    """What the model wrote after the healed gap (None: not past it yet). A model that did not
    rewrite the gap is taken as it is (as if the prompt had not been healed)."""
    if not gap:
        return raw
    if raw.startswith(gap):
        return raw[len(gap) :]
    if gap.startswith(raw):
        return None
    return raw


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


async def complete(
    document: Document,
    offset: int,
    engine: Engine,
    *,
    adapter: str | None = None,
    snippets: Sequence[ContextSnippet] = (),
    options: CompletionOptions = DEFAULT_OPTIONS,
    cache: SuggestionCache | None = None,
    cancel: CancelToken | None = None,
) -> Completion | None:
    """An inline completion at byte ``offset`` of ``document`` generated by ``engine``.

    Returns None when the cursor is not a place to complete, the engine is not ready, the
    request was cancelled, or the model's output filtered down to nothing. Never raises for
    engine failures (they are logged): a completion is a best-effort answer.
    """
    started = time.perf_counter()
    prefix = document.text[:offset].decode("utf-8", errors="replace")
    suffix = document.text[offset:].decode("utf-8", errors="replace")
    if cache is not None:
        hit = cache.lookup(document.uri, adapter, prefix, suffix)
        if hit is not None:
            ctx = analyze_cursor(document.text, document.tree, document.language, offset)
            return Completion(
                hit.remainder,
                offset,
                ctx.mode or "single",
                "cache",
                adapter,
                time.perf_counter() - started,
                reason="typed through a cached suggestion",
            )
    if engine.health().state != "ready" or (cancel is not None and cancel.cancelled):
        return None
    plan = plan_completion(
        document, offset, engine.identity(), engine.count_tokens, snippets=snippets, options=options
    )
    if plan is None:
        return None
    prompt_text, gap = heal_prompt(plan.prompt)
    stop = tuple(s for s in plan.stop if s not in gap) if gap else plan.stop
    request = GenerationRequest(
        prompt_text,
        max_tokens=plan.max_tokens + (engine.count_tokens(gap) if gap else 0),
        temperature=options.temperature,
        stop=stop,
        adapter=adapter,
    )
    raw = generated = ""
    ended = False
    try:
        async with contextlib.aclosing(engine.stream(request, cancel)) as stream:
            async for delta in stream:
                raw += delta
                after = _after_gap(raw, gap)
                if after is None:  # still inside the gap
                    continue
                generated = after
                cut = _first_stop(generated, plan.stop) if gap else None
                if cut is not None:
                    generated, ended = generated[:cut], True
                    break
                if block_complete(
                    plan.context, generated, plan.prompt.prompt_line, options.max_lines
                ):
                    ended = True
                    break
    except EngineError as exc:
        log.warning("completion failed: %s", exc)
        return None
    if cancel is not None and cancel.cancelled:
        return None
    truncated = not ended and engine.count_tokens(generated) >= plan.max_tokens - 1
    text = finish_suggestion(
        plan.context,
        generated,
        prompt_line=plan.prompt.prompt_line,
        truncated=truncated,
        max_lines=options.max_lines,
    )
    if text is None:
        return None
    if cache is not None:
        cache.store(document.uri, adapter, prefix, suffix, text)
    return Completion(
        text,
        offset,
        plan.context.mode or "single",
        "model",
        adapter,
        time.perf_counter() - started,
        prompt_tokens=engine.count_tokens(plan.prompt.text),
        reason=plan.context.reason,
    )
