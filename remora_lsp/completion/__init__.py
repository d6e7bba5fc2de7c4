"""Inline completion as pure logic: what to ask the model at the cursor and what to show.

Code map: ``cursor`` reads the syntax at the cursor (single line, a block, or nothing);
``prompt`` builds a token-budgeted prompt (fill-in-the-middle when the model has FIM tokens,
else prefix-only) with same-file definitions and retrieved snippets; ``postprocess`` trims the
model's output (block end, brackets, suffix repeats, indentation); ``cache`` serves the rest of
a suggestion the user is typing through; ``complete`` runs the whole thing against an engine.
Nothing here imports pygls, lsprotocol or the server; positions are byte offsets.
"""

from __future__ import annotations

from remora_lsp.completion.cache import CacheHit, SuggestionCache
from remora_lsp.completion.complete import (
    Completion,
    CompletionOptions,
    CompletionPlan,
    complete,
    plan_completion,
)
from remora_lsp.completion.cursor import CursorContext, analyze_cursor
from remora_lsp.completion.postprocess import block_complete, finish_suggestion
from remora_lsp.completion.prompt import ContextSnippet, Prompt, PromptBudget, build_prompt

__all__ = [
    "CacheHit",
    "Completion",
    "CompletionOptions",
    "CompletionPlan",
    "ContextSnippet",
    "CursorContext",
    "Prompt",
    "PromptBudget",
    "SuggestionCache",
    "analyze_cursor",
    "block_complete",
    "build_prompt",
    "complete",
    "finish_suggestion",
    "plan_completion",
]
