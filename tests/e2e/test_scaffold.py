"""Scaffolding end to end: a signed, trusted fastapi pack; "Add user profile endpoint" through
`remora.scaffold` with the real engine (a tiny local model) yields a router file that imports the
project's own `User` model and parses; every step is traced; an untrusted pack's templates never
run."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from rich.console import Console

from remora_lsp.core.languages import new_parser
from remora_lsp.server.demo import prepare_home
from tests.inference.tiny import TinyModel, build_tiny

from .conftest import Editor, plain, server_env, start_editor

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return build_tiny(tmp_path_factory.mktemp("tiny"), adapters=())


def apply_edit(root: Path, edit: types.WorkspaceEdit) -> None:
    """What an editor does with workspace/applyEdit (creates and inserts only)."""
    for change in edit.document_changes or []:
        if isinstance(change, types.CreateFile):
            path = Path(change.uri.removeprefix("file://"))
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("")
        elif isinstance(change, types.TextDocumentEdit):
            path = Path(change.text_document.uri.removeprefix("file://"))
            lines = path.read_text().splitlines(keepends=True)
            for e in sorted(change.edits, key=lambda e: -e.range.start.line):
                line = e.range.start.line
                lines[line:line] = [e.new_text]
            path.write_text("".join(lines))


def parses(text: str) -> bool:
    tree = new_parser("python").parse(text.encode())
    return not tree.root_node.has_error


async def start(home: Path, project: Path, tiny: TinyModel | None) -> tuple[Editor, list[Any]]:
    env = server_env(home)
    env.pop("REMORA_ALLOW_UNSIGNED")
    if tiny is not None:
        env.update(
            REMORA_GENERATIVE="1",
            REMORA_ENGINE="transformers",
            REMORA_MODEL=str(tiny.path),
            REMORA_MODEL_ID=tiny.model_id,
        )
    editor = await start_editor(home, project, "visual-studio-code", env=env)
    traces: list[Any] = []

    @editor.client.feature("remora/trace")
    def on_trace(params: Any) -> None:
        traces.append(plain(params))

    @editor.client.feature(types.WORKSPACE_APPLY_EDIT)
    def on_apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        apply_edit(project, params.edit)
        return types.ApplyWorkspaceEditResult(applied=True)

    return editor, traces


async def test_add_user_profile_endpoint(tiny: TinyModel, tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    shutil.copytree(REPO / "tests" / "data" / "fastapi_app", project)
    prepare_home(home, REPO / "packs", Console(file=io.StringIO()))
    (home / "config.yaml").write_text("semantic:\n  workspace_index: false\n")
    editor, traces = await start(home, project, tiny)
    try:
        main = editor.root / "app" / "main.py"
        uri = editor.open("app/main.py", main.read_text())
        await editor.wait(lambda: (editor.pack("fastapi") or {}).get("templates", 0) >= 3, 60)
        answer = plain(
            await editor.command(
                "remora.scaffold", {"request": "Add user profile endpoint", "uri": uri}
            )
        )
        assert answer["applied"] is True, answer
        created = [f for f in answer["files"] if not f["exists"]]
        assert created, answer
        router = project / created[0]["path"]
        text = router.read_text()
        assert "from app.models import User" in text
        assert parses(text), text
        assert traces and {"tool", "arguments", "elapsedMs", "resultSummary"} <= set(traces[0])
        assert any(t["tool"] == "render_template" for t in traces)
        # The lightbulb on the model class offers scaffolds, resolved on demand.
        models = editor.open("app/models.py", (project / "app" / "models.py").read_text())
        line = next(
            i
            for i, t in enumerate((project / "app/models.py").read_text().splitlines())
            if t.startswith("class User")
        )
        pos = types.Position(line, 8)
        actions = await editor.client.text_document_code_action_async(
            types.CodeActionParams(
                types.TextDocumentIdentifier(models),
                types.Range(pos, pos),
                types.CodeActionContext(diagnostics=[]),
            )
        )
        scaffolds = [a for a in actions or [] if a.title.startswith("Remora: ")]
        assert scaffolds and scaffolds[0].edit is None
        resolved = await editor.client.code_action_resolve_async(scaffolds[0])
        assert resolved.edit is not None and resolved.edit.document_changes
    finally:
        await editor.client.shutdown_session()


async def test_untrusted_pack_templates_do_not_run(tmp_path: Path, home: Path) -> None:
    project = tmp_path / "proj"
    shutil.copytree(REPO / "tests" / "data" / "fastapi_app", project)
    target = home / "packs" / "fastapi" / "0.1.0"
    shutil.rmtree(target)
    shutil.copytree(REPO / "packs" / "fastapi", target)  # unsigned development copy
    editor, _ = await start(home, project, None)
    try:
        editor._event.clear()
        uri = editor.open("app/main.py", (project / "app" / "main.py").read_text())
        await editor.wait_state("fastapi", "error")  # unsigned packs need permission at all
        answer = plain(
            await editor.command("remora.scaffold", {"request": "Add user endpoints", "uri": uri})
        )
        assert answer["ok"] is False and not answer["files"]
    finally:
        await editor.client.shutdown_session()
