"""Inline completion through the real server with a real engine (transformers + PEFT on a tiny
local model): ImportGenie picks the adapter, editing the import swaps it, the engine's adapter
state shows in the pack status, and stale or cancelled requests answer empty."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from lsprotocol import types

from tests.inference.packs import make_pack
from tests.inference.tiny import TinyModel, build_tiny

from .conftest import Editor, server_env, start_editor

SOURCE = "import alpha\n\n\ndef total(values):\n    result = 0\n    for v in values:\n        "


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny(tmp_path_factory.mktemp("tiny"))


async def completion(editor: Editor, uri: str, line: int, character: int) -> types.CompletionList:
    result = await editor.client.text_document_completion_async(
        types.CompletionParams(types.TextDocumentIdentifier(uri), types.Position(line, character))
    )
    assert isinstance(result, types.CompletionList)
    return result


@pytest.mark.parametrize("engine", ["transformers", "vllm"])
async def test_completion_uses_the_adapter_of_the_imported_pack(
    engine: str, tiny: TinyModel, home: Path, project: Path
) -> None:
    if engine == "vllm":
        pytest.importorskip("vllm", reason="vLLM is not installed on this machine")
    for name in ("alpha", "beta"):
        pack = make_pack(
            home / "packs", name, tiny.adapters[name], base_id=tiny.model_id, base_sha=tiny.path
        )
        (pack.path / "manifest.yaml").write_text(yaml.safe_dump(pack.manifest.to_data()))
    env = server_env(
        home,
        REMORA_GENERATIVE="1",
        REMORA_ENGINE=engine,
        REMORA_MODEL=str(tiny.path),
        REMORA_MODEL_ID=tiny.model_id,
        REMORA_DEBOUNCE_MS="0",
        VLLM_CPU_KVCACHE_SPACE="1",
    )
    editor = await start_editor(home, project, "neovim", env=env)
    try:
        uri = editor.open("calc.py", SOURCE)
        status = await editor.wait_state("alpha", "ready", 60)
        await editor.wait(
            lambda: (editor.pack("alpha") or {}).get("adapter") in {"resident", "cached"}, 240
        )
        line, col = SOURCE.count("\n"), len(SOURCE.splitlines()[-1])
        first = await completion(editor, uri, line, col)
        assert first.items, "the tiny model suggested nothing"
        assert first.items[0].detail == "Remora (alpha)"
        # Inline completion answers from the cache while the text has not changed.
        inline = await editor.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked
                ),
                text_document=types.TextDocumentIdentifier(uri),
                position=types.Position(line, col),
            )
        )
        assert inline is not None and inline.items
        assert inline.items[0].insert_text == first.items[0].text_edit.new_text

        editor.edit(uri, (0, 7), (0, 12), "beta")  # import alpha → import beta
        await editor.wait_state("beta", "ready", 60)
        await editor.wait(
            lambda: (editor.pack("beta") or {}).get("adapter") in {"resident", "cached"}, 120
        )
        second = await completion(editor, uri, line, col)
        assert second.items and second.items[0].detail == "Remora (beta)"
        assert status["signed"] is False
    finally:
        await editor.client.shutdown_session()


async def test_no_engine_means_empty_answers_not_errors(home: Path, project: Path) -> None:
    env = server_env(home, REMORA_GENERATIVE="1", REMORA_MODEL=str(project / "no-such-model"))
    editor = await start_editor(home, project, "visual-studio-code", env=env)
    try:
        uri = editor.open("main.py", "import fastapi\nx = ")
        result = await completion(editor, uri, 1, 4)
        assert not result.items
        hover = await editor.hover(uri, 0, 8)
        assert hover is not None  # the rest of the server keeps serving
    finally:
        await editor.client.shutdown_session()
