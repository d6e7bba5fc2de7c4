"""The orchestrator: tools, the tool-calling loop, decision backends and feature scaffolding.

Pure library: nothing here imports pygls, lsprotocol or :mod:`remora_lsp.server`, and the code
model is reached only through the :class:`~remora_lsp.inference.engine.Engine` protocol. The
server's ``remora.scaffold`` command and scaffold code action call :func:`scaffold`; see
``docs/orchestrator.md``.
"""

from remora_lsp.orchestrator.functiongemma import (
    CallParseError,
    FunctionGemmaDecider,
    format_call,
    format_declaration,
    parse_calls,
    render_prompt,
)
from remora_lsp.orchestrator.loop import (
    Answer,
    Decider,
    DecisionError,
    Observation,
    OrchestratorRequest,
    OrchestratorResult,
    ToolCall,
    TraceStep,
    run,
)
from remora_lsp.orchestrator.router_backend import RouterDecider
from remora_lsp.orchestrator.scaffold import FillOutcome, ScaffoldFile, ScaffoldResult, scaffold
from remora_lsp.orchestrator.symbols import SymbolMatch, find_symbol
from remora_lsp.orchestrator.tools import (
    SearchFn,
    Tool,
    ToolError,
    ToolRegistry,
    ToolSpec,
    build_tools,
    search_adapter,
    system_prompt,
)

__all__ = [
    "Answer",
    "CallParseError",
    "Decider",
    "DecisionError",
    "FillOutcome",
    "FunctionGemmaDecider",
    "Observation",
    "OrchestratorRequest",
    "OrchestratorResult",
    "RouterDecider",
    "ScaffoldFile",
    "ScaffoldResult",
    "SearchFn",
    "SymbolMatch",
    "Tool",
    "ToolCall",
    "ToolError",
    "ToolRegistry",
    "ToolSpec",
    "TraceStep",
    "build_tools",
    "find_symbol",
    "format_call",
    "format_declaration",
    "parse_calls",
    "render_prompt",
    "run",
    "scaffold",
    "search_adapter",
    "system_prompt",
]
