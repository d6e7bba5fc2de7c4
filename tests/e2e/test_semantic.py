"""The semantic layer through pytest-lsp: a real pack index (the shipped fastapi pack) answers a
hover on an untyped parameter with type, confidence and evidence; the type-hint code action
inserts the annotation and the import; a corrupt index is a status, not a crash."""

from __future__ import annotations

import shutil
from pathlib import Path

from lsprotocol import types

from .conftest import Editor

REPO = Path(__file__).resolve().parents[2]
HANDLER = (
    "from fastapi import FastAPI\n"
    "\n"
    "app = FastAPI()\n"
    "\n"
    "\n"
    '@app.get("/health")\n'
    "async def health(request):\n"
    '    agent = request.headers.get("user-agent", "")\n'
    "    client = request.client.host if request.client else None\n"
    '    return {"client": client, "agent": agent}\n'
)


def install_dev_copy(home: Path) -> Path:
    target = home / "packs" / "fastapi" / "0.1.0"
    shutil.rmtree(target)
    shutil.copytree(REPO / "packs" / "fastapi", target)
    return target


async def test_hover_and_type_hint_from_the_pack_index(editor: Editor, home: Path) -> None:
    install_dev_copy(home)
    await editor.wait(lambda: (editor.pack("fastapi") or {}).get("state") == "inactive")
    uri = editor.open("app/main.py", HANDLER)
    await editor.wait(
        lambda: ((editor.pack("fastapi") or {}).get("index") or {}).get("state") == "ready", 60
    )
    hover = await editor.hover(uri, 6, 19)
    assert hover is not None
    text = hover.contents.value
    assert "`request: Request`" in text and "inferred from usages" in text, text
    assert "Evidence" in text
    pos = types.Position(6, 19)
    actions = await editor.client.text_document_code_action_async(
        types.CodeActionParams(
            types.TextDocumentIdentifier(uri),
            types.Range(pos, pos),
            types.CodeActionContext(diagnostics=[]),
        )
    )
    hint = next(a for a in actions or [] if a.title.startswith("Add type hint"))
    edits = hint.edit.changes[uri]
    assert sorted(e.new_text for e in edits) == [": Request", "from fastapi import Request\n"]


async def test_corrupt_index_is_a_status_and_the_server_keeps_going(
    editor: Editor, home: Path
) -> None:
    target = install_dev_copy(home)
    (target / "embeddings" / "usages" / "vectors.safetensors").write_bytes(b"\x00" * 64)
    uri = editor.open("app/main.py", HANDLER)
    # The pack gate checks every safetensors header before any layer reads it.
    pack = await editor.wait_state("fastapi", "error", 60)
    assert "vectors.safetensors" in pack["reason"] and "safetensors" in pack["reason"]
    hover = await editor.hover(uri, 2, 0)  # `app = FastAPI()`: answered from the syntax
    assert hover is not None and "FastAPI" in hover.contents.value
