"""FunctionGemma's function-calling format: prompt rendering, a strict call parser, a decider.

FunctionGemma (Gemma 3 270M tuned for tool use) reads and writes tool data between control
tokens inside Gemma turns (``<start_of_turn>role`` … ``<end_of_turn>``):

* the **developer** turn carries the instructions, the trigger sentence "You are a model that
  can do function calling with the following functions" and one
  ``<start_function_declaration>declaration:NAME{description:…,parameters:{…}}<end_function_declaration>``
  per tool, schema types upper-cased (``STRING``, ``OBJECT``) and keys in sorted order;
* the **model** answers ``<start_function_call>call:NAME{key:value,…}<end_function_call>`` (one
  or several, for parallel calls) or plain text;
* tool results go back as ``<start_function_response>response:NAME{…}<end_function_response>``.

Every string value is delimited by the ``<escape>`` token on both sides, so ``{``, ``}``, ``,``
and quotes inside it are text; numbers, ``true``/``false``/``null``, ``{…}`` objects and
``[…]`` arrays are written bare, object keys bare. :func:`parse_calls` is strict: an unknown
tool, unbalanced braces, a string without its closing ``<escape>``, a bare word where a value
should be or trailing text is a :class:`CallParseError` naming the position — the loop turns it
into a trace entry and feedback, it never guesses. :class:`FunctionGemmaDecider` renders the
prompt, asks any :class:`~remora_lsp.inference.engine.Engine` (with an orchestrator adapter if
one is given) and parses the answer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from remora_lsp.inference.engine import Engine, GenerationRequest
from remora_lsp.orchestrator.loop import (
    DECIDE,
    Answer,
    Decision,
    DecisionError,
    Observation,
    OrchestratorRequest,
    ToolCall,
)
from remora_lsp.orchestrator.tools import ToolRegistry, ToolSpec, system_prompt
from remora_lsp.packs.manifest import Manifest

__all__ = [
    "END_CALL",
    "END_DECLARATION",
    "END_RESPONSE",
    "END_TURN",
    "ESCAPE",
    "START_CALL",
    "START_DECLARATION",
    "START_RESPONSE",
    "START_TURN",
    "TRIGGER",
    "CallParseError",
    "FunctionGemmaDecider",
    "format_call",
    "format_declaration",
    "format_response",
    "format_value",
    "parse_calls",
    "parse_value",
    "render_prompt",
]

START_TURN = "<start_of_turn>"
END_TURN = "<end_of_turn>"
START_DECLARATION = "<start_function_declaration>"
END_DECLARATION = "<end_function_declaration>"
START_CALL = "<start_function_call>"
END_CALL = "<end_function_call>"
START_RESPONSE = "<start_function_response>"
END_RESPONSE = "<end_function_response>"
ESCAPE = "<escape>"
TRIGGER = "You are a model that can do function calling with the following functions"

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_SCHEMA_KEYS = ("description", "enum", "items", "properties", "required", "type")
MAX_DEPTH = 32


class CallParseError(DecisionError):
    """A malformed ``call:name{...}``; ``position`` is the offset in the parsed text."""

    def __init__(self, message: str, position: int, text: str) -> None:
        snippet = text[max(0, position - 20) : position + 20].replace("\n", "\\n")
        super().__init__(f"{message} (at offset {position}: …{snippet}…)")
        self.reason = message
        self.position = position


# -- writing -----------------------------------------------------------------------------------


def format_value(value: Any, *, sort_keys: bool = False) -> str:
    """One value in FunctionGemma's notation (strings ``<escape>``-delimited)."""
    if isinstance(value, str):
        if ESCAPE in value:
            raise ValueError(f"a string value cannot contain {ESCAPE}: {value[:40]!r}")
        return f"{ESCAPE}{value}{ESCAPE}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no FunctionGemma form")
        return json.dumps(value)
    if isinstance(value, Mapping):
        items = sorted(value.items()) if sort_keys else list(value.items())
        for key, _ in items:
            if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
                raise ValueError(f"object key {key!r} is not a bare identifier")
        inner = ",".join(f"{k}:{format_value(v, sort_keys=sort_keys)}" for k, v in items)
        return "{" + inner + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(format_value(v, sort_keys=sort_keys) for v in value) + "]"
    raise ValueError(f"{type(value).__name__} has no FunctionGemma form")


def _schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema reduced to the keys FunctionGemma declarations use, types upper-cased."""
    out: dict[str, Any] = {}
    for key in _SCHEMA_KEYS:
        if key not in schema:
            continue
        value = schema[key]
        if key == "type" and isinstance(value, str):
            out[key] = value.upper()
        elif key == "properties" and isinstance(value, Mapping):
            out[key] = {name: _schema(prop) for name, prop in value.items()}
        elif key == "items" and isinstance(value, Mapping):
            out[key] = _schema(value)
        else:
            out[key] = value
    return out


def format_declaration(spec: ToolSpec | Mapping[str, Any]) -> str:
    """``<start_function_declaration>declaration:NAME{...}<end_function_declaration>``."""
    data = spec.declaration() if isinstance(spec, ToolSpec) else dict(spec)
    parameters = _schema(data.get("parameters") or {"type": "object", "properties": {}})
    parameters.setdefault("type", "OBJECT")
    body = {"description": data.get("description", ""), "parameters": parameters}
    return (
        f"{START_DECLARATION}declaration:{data['name']}"
        f"{format_value(body, sort_keys=True)}{END_DECLARATION}"
    )


def format_call(name: str, arguments: Mapping[str, Any]) -> str:
    """``<start_function_call>call:NAME{key:value,...}<end_function_call>``."""
    return f"{START_CALL}call:{name}{format_value(dict(arguments))}{END_CALL}"


def _clip(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        value = value.replace(ESCAPE, "")
        return value if len(value) <= limit else value[:limit] + "…"
    if isinstance(value, Mapping):
        return {
            k: _clip(v, limit)
            for k, v in value.items()
            if isinstance(k, str) and _KEY_RE.fullmatch(k)
        }
    if isinstance(value, list | tuple):
        return [_clip(v, limit) for v in value[:20]]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:limit]


def format_response(name: str, result: Any, *, limit: int = 1500) -> str:
    """``<start_function_response>response:NAME{...}<end_function_response>``; long strings
    are clipped to ``limit`` characters so a rendered file does not fill the context."""
    payload = result if isinstance(result, Mapping) else {"result": result}
    return f"{START_RESPONSE}response:{name}{format_value(_clip(payload, limit))}{END_RESPONSE}"


def render_prompt(
    instructions: str,
    tools: Iterable[ToolSpec],
    request: str,
    history: Sequence[Observation] = (),
    *,
    response_limit: int = 1500,
) -> str:
    """The full prompt: developer turn with declarations, user turn, the model turn so far."""
    declarations = "".join(format_declaration(t) for t in tools)
    parts = [
        f"{START_TURN}developer\n{instructions.strip()}\n{TRIGGER}{declarations}{END_TURN}\n",
        f"{START_TURN}user\n{request.strip()}{END_TURN}\n",
        f"{START_TURN}model\n",
    ]
    for obs in history:
        if obs.call.name == DECIDE:
            parts.append(format_response("error", {"error": obs.error or ""}, limit=response_limit))
            continue
        parts.append(format_call(obs.call.name, _clip(obs.call.arguments, response_limit)))
        result = {"error": obs.error} if obs.error is not None else obs.result
        parts.append(format_response(obs.call.name, result, limit=response_limit))
    return "".join(parts)


# -- reading -----------------------------------------------------------------------------------


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str, position: int | None = None) -> CallParseError:
        return CallParseError(message, self.pos if position is None else position, self.text)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def expect(self, char: str) -> None:
        if not self.text.startswith(char, self.pos):
            found = self.text[self.pos : self.pos + 1] or "end of text"
            raise self.fail(f"expected {char!r}, found {found!r}")
        self.pos += len(char)

    def value(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels")
        self.skip_space()
        text, pos = self.text, self.pos
        if text.startswith(ESCAPE, pos):
            start = pos + len(ESCAPE)
            end = text.find(ESCAPE, start)
            if end < 0:
                raise self.fail("missing closing <escape> for the string that starts here", pos)
            self.pos = end + len(ESCAPE)
            return text[start:end]
        if pos >= len(text):
            raise self.fail("expected a value, found end of text")
        char = text[pos]
        if char == "{":
            return self.obj(depth + 1)
        if char == "[":
            return self.array(depth + 1)
        number = _NUMBER_RE.match(text, pos)
        if number and (number.end() == len(text) or text[number.end()] in ",}] \t\r\n"):
            self.pos = number.end()
            raw = number.group(0)
            return float(raw) if any(c in raw for c in ".eE") else int(raw)
        for word, value in (("true", True), ("false", False), ("null", None)):
            end = pos + len(word)
            if text.startswith(word, pos) and (end == len(text) or text[end] in ",}] \t\r\n"):
                self.pos = end
                return value
        if char in "}]":
            raise self.fail(f"expected a value, found {char!r}")
        bare = re.match(r"[^,{}\[\]<]*", text[pos:])
        word = bare.group(0).strip() if bare else ""
        if text.startswith("<", pos) and not word:
            raise self.fail("expected a value, found a control token")
        raise self.fail(
            f"bad value {word[:30]!r}: strings must be written <escape>...<escape>; "
            "numbers, true, false, null, {...} and [...] are bare"
        )

    def obj(self, depth: int) -> dict[str, Any]:
        opened = self.pos
        self.expect("{")
        result: dict[str, Any] = {}
        self.skip_space()
        if self.text.startswith("}", self.pos):
            self.pos += 1
            return result
        while True:
            self.skip_space()
            if self.pos >= len(self.text):
                raise self.fail("unbalanced braces: this '{' is never closed", opened)
            key = _KEY_RE.match(self.text, self.pos)
            if key is None:
                found = self.text[self.pos : self.pos + 1]
                raise self.fail(f"expected a key (a bare name), found {found!r}")
            name = key.group(0)
            if name in result:
                raise self.fail(f"duplicate key {name!r}")
            self.pos = key.end()
            self.skip_space()
            self.expect(":")
            result[name] = self.value(depth)
            self.skip_space()
            if self.pos >= len(self.text):
                raise self.fail("unbalanced braces: this '{' is never closed", opened)
            if self.text[self.pos] == ",":
                self.pos += 1
                continue
            if self.text[self.pos] == "}":
                self.pos += 1
                return result
            if self.text[self.pos] == "]":
                raise self.fail("unbalanced brackets: ']' closes a '{'")
            raise self.fail(f"expected ',' or '}}', found {self.text[self.pos]!r}")

    def array(self, depth: int) -> list[Any]:
        opened = self.pos
        self.expect("[")
        items: list[Any] = []
        self.skip_space()
        if self.text.startswith("]", self.pos):
            self.pos += 1
            return items
        while True:
            items.append(self.value(depth))
            self.skip_space()
            if self.pos >= len(self.text):
                raise self.fail("unbalanced brackets: this '[' is never closed", opened)
            if self.text[self.pos] == ",":
                self.pos += 1
                continue
            if self.text[self.pos] == "]":
                self.pos += 1
                return items
            if self.text[self.pos] == "}":
                raise self.fail("unbalanced braces: '}' closes a '['")
            raise self.fail(f"expected ',' or ']', found {self.text[self.pos]!r}")


def parse_value(text: str) -> Any:
    """One value in FunctionGemma's notation; the whole text must be that value."""
    reader = _Reader(text)
    value = reader.value()
    reader.skip_space()
    if reader.pos != len(text):
        raise reader.fail("unexpected text after the value")
    return value


def _parse_call(body: str, offset: int, known: set[str] | None) -> ToolCall:
    reader = _Reader(body)
    reader.skip_space()
    if not body.startswith("call:", reader.pos):
        raise CallParseError("a function call must start with 'call:'", offset + reader.pos, body)
    reader.pos += len("call:")
    name = _NAME_RE.match(body, reader.pos)
    if name is None:
        raise CallParseError("expected a function name after 'call:'", offset + reader.pos, body)
    if known is not None and name.group(0) not in known:
        raise CallParseError(
            f"unknown tool {name.group(0)!r}; known tools: {', '.join(sorted(known))}",
            offset + reader.pos,
            body,
        )
    reader.pos = name.end()
    if not body.startswith("{", reader.pos):
        raise CallParseError(
            f"expected '{{' after the function name {name.group(0)!r}", offset + reader.pos, body
        )
    try:
        arguments = reader.obj(1)
    except CallParseError as exc:
        raise CallParseError(exc.reason, offset + exc.position, body) from exc
    reader.skip_space()
    if reader.pos != len(body):
        raise CallParseError(
            "unexpected text after the call's closing '}' (unbalanced braces?)",
            offset + reader.pos,
            body,
        )
    return ToolCall(name.group(0), arguments)


def parse_calls(text: str, known: Iterable[str] | None = None) -> list[ToolCall]:
    """Every ``<start_function_call>call:NAME{...}<end_function_call>`` in ``text``.

    Returns an empty list when ``text`` has no call (the model answered in words). Raises
    :class:`CallParseError` for anything malformed; ``known`` (tool names) makes an unknown
    tool an error too.
    """
    names = set(known) if known is not None else None
    calls: list[ToolCall] = []
    pos = 0
    while True:
        start = text.find(START_CALL, pos)
        if start < 0:
            stray = text.find(END_CALL, pos)
            if stray >= 0:
                raise CallParseError(f"{END_CALL} without {START_CALL}", stray, text)
            break
        if calls and text[pos:start].strip():
            raise CallParseError("text between function calls", pos, text)
        body_start = start + len(START_CALL)
        end = text.find(END_CALL, body_start)
        nested = text.find(START_CALL, body_start)
        if end < 0 or (0 <= nested < end):
            raise CallParseError(f"{START_CALL} without {END_CALL}", start, text)
        calls.append(_parse_call(text[body_start:end], body_start, names))
        pos = end + len(END_CALL)
    if calls:
        tail = text[pos:].replace(END_TURN, "").strip()
        if tail:
            raise CallParseError("text after the function calls", pos, text)
    return calls


# -- the decider -------------------------------------------------------------------------------


class FunctionGemmaDecider:
    """Decisions from a FunctionGemma-format model served by any :class:`Engine`."""

    def __init__(
        self,
        engine: Engine,
        *,
        adapter: str | None = None,
        packs: Sequence[Manifest] = (),
        max_tokens: int = 256,
        response_limit: int = 1500,
    ) -> None:
        self.engine = engine
        self.adapter = adapter
        self.packs = list(packs)
        self.max_tokens = max_tokens
        self.response_limit = response_limit
        self.last_prompt = ""
        self.last_output = ""

    def prompt(
        self, request: OrchestratorRequest, history: Sequence[Observation], tools: ToolRegistry
    ) -> str:
        """The prompt for the next decision."""
        return render_prompt(
            system_prompt(self.packs, tools),
            tools.specs(available_only=True),
            request.text,
            history,
            response_limit=self.response_limit,
        )

    async def decide(
        self, request: OrchestratorRequest, history: Sequence[Observation], tools: ToolRegistry
    ) -> Decision:
        """Ask the model; its calls, or its words as the answer."""
        self.last_prompt = self.prompt(request, history, tools)
        result = await self.engine.generate(
            GenerationRequest(
                prompt=self.last_prompt,
                max_tokens=self.max_tokens,
                temperature=0.0,
                stop=(START_RESPONSE, END_TURN),
                adapter=self.adapter,
            )
        )
        self.last_output = result.text
        calls = parse_calls(result.text, [s.name for s in tools.specs(available_only=True)])
        if calls:
            return calls
        return Answer(result.text.replace(END_TURN, "").strip())
