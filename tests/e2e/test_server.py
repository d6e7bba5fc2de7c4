"""The real server over stdio: activation, grace period, watcher, overrides, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from .conftest import Editor, server_env, start_editor, write_pack

MAIN = "import os\nfrom fastapi import FastAPI\n\napp = FastAPI()\n"


async def test_initial_status_lists_installed_packs(editor: Editor) -> None:
    await editor.wait(lambda: len(editor.latest()["packs"]) == 4)
    assert {p["state"] for p in editor.latest()["packs"]} == {"inactive"}
    listed = await editor.list_packs()
    assert [p["name"] for p in listed["packs"]] == ["fastapi", "mui", "pydantic", "react"]
    assert set(listed["packs"][0]) >= {"name", "version", "state", "reason", "triggeredBy"}


async def test_open_activates_and_close_deactivates_after_grace(editor: Editor) -> None:
    uri = editor.open("main.py", MAIN)
    pack = await editor.wait_state("fastapi", "ready")
    assert pack["triggeredBy"] == [uri]
    assert pack["version"] == "0.1.0"
    assert editor.pack("pydantic")["state"] == "inactive"
    editor.close(uri)
    pack = await editor.wait_state("fastapi", "inactive")
    assert pack["triggeredBy"] == []


async def test_js_and_tsx_imports_activate(editor: Editor) -> None:
    editor.open(
        "web/App.tsx",
        'import React from "react";\nimport Button from "@mui/material/Button";\n'
        "export const A = () => <Button/>;\n",
        "typescriptreact",
    )
    await editor.wait_state("react", "ready")
    await editor.wait_state("mui", "ready")


async def test_editing_the_import_switches_packs(editor: Editor) -> None:
    uri = editor.open("main.py", MAIN)
    await editor.wait_state("fastapi", "ready")
    # Replace `fastapi import FastAPI` by `pydantic import BaseModel` on line 1.
    editor.edit(uri, (1, 5), (1, 27), "pydantic import BaseModel")
    await editor.wait_state("pydantic", "ready")
    await editor.wait_state("fastapi", "inactive")


async def test_status_is_not_sent_on_every_keystroke(editor: Editor) -> None:
    uri = editor.open("main.py", MAIN)
    await editor.wait_state("fastapi", "ready")
    before = len(editor.statuses)
    for i in range(30):
        editor.edit(uri, (3, 0), (3, 0), f"x{i} = {i}\n")
    await editor.list_packs()  # a round trip: every edit has been handled
    assert len(editor.statuses) == before


async def test_manual_override(editor: Editor) -> None:
    await editor.wait(lambda: bool(editor.latest()["packs"]))
    await editor.command("remora.activatePack", "pydantic")
    await editor.wait_state("pydantic", "ready")
    uri = editor.open("main.py", MAIN)
    await editor.wait_state("fastapi", "ready")
    await editor.command("remora.deactivatePack", "fastapi")
    pack = await editor.wait_state("fastapi", "inactive")
    assert pack["reason"] == "deactivated manually"
    editor.edit(uri, (0, 0), (0, 0), "# still importing fastapi\n")
    await editor.list_packs()
    assert editor.pack("fastapi")["state"] == "inactive"
    await editor.command("remora.activatePack", "fastapi")
    await editor.wait_state("fastapi", "ready")
    with pytest.raises(JsonRpcException, match="no installed pack named 'nope'"):
        await editor.command("remora.activatePack", "nope")


async def test_hover_on_an_import_names_the_pack(editor: Editor) -> None:
    uri = editor.open("main.py", MAIN)
    await editor.wait_state("fastapi", "ready")
    hover = await editor.hover(uri, 1, 8)
    assert hover is not None
    assert "fastapi" in hover.contents.value and "ready" in hover.contents.value
    on_name = await editor.hover(uri, 1, 22)  # `FastAPI` in `from fastapi import FastAPI`
    assert on_name is not None and "fastapi" in on_name.contents.value
    typed = await editor.hover(uri, 3, 0)  # `app = FastAPI()`: the syntax states the type
    assert typed is not None and "`app: FastAPI` (constructor)" in typed.contents.value
    assert await editor.hover(uri, 2, 0) is None  # an empty line
    assert await editor.hover(uri, 0, 8) is None  # `import os`: the standard library
    other = editor.open("other.py", "import numpy as np\n")
    assert "no Remora pack" in (await editor.hover(other, 0, 8)).contents.value


async def test_watcher_picks_up_installs_changes_and_removals(editor: Editor, home: Path) -> None:
    await editor.wait(lambda: len(editor.latest()["packs"]) == 4)
    uri = editor.open("report.py", "import pandas as pd\n")
    write_pack(home, "pandas", python=("pandas",))
    await editor.wait_state("pandas", "ready")
    write_pack(home, "pandas", "0.2.0", python=("pandas",))
    await editor.wait(lambda: (editor.pack("pandas") or {}).get("version") == "0.2.0")
    await editor.wait_state("pandas", "ready")
    shutil.rmtree(home / "packs" / "pandas")
    await editor.wait(lambda: editor.pack("pandas") is None)
    editor.close(uri)


async def test_bad_manifest_is_an_error_status_and_the_server_keeps_going(
    editor: Editor, home: Path
) -> None:
    await editor.wait(lambda: len(editor.latest()["packs"]) == 4)
    bad = home / "packs" / "broken" / "1.0.0"
    bad.mkdir(parents=True)
    (bad / "manifest.yaml").write_text(
        "format: 1\nname: broken\nversion: 1.0.0\ntriggers: {python_imports: ['no good']}\n"
    )
    pack = await editor.wait_state("broken", "error")
    assert "triggers.python_imports" in pack["reason"] and "no good" in pack["reason"]
    uri = editor.open("main.py", MAIN)
    await editor.wait_state("fastapi", "ready")
    assert await editor.hover(uri, 1, 8) is not None


async def test_unsigned_packs_need_permission(home: Path, project: Path) -> None:
    env = server_env(home)
    env.pop("REMORA_ALLOW_UNSIGNED")
    ed = await start_editor(home, project, "visual-studio-code", env=env)
    try:
        ed.open("main.py", MAIN)
        pack = await ed.wait_state("fastapi", "error")
        assert "unsigned" in pack["reason"] and "REMORA_ALLOW_UNSIGNED=1" in pack["reason"]
        assert pack["signed"] is False
    finally:
        await ed.client.shutdown_session()


async def test_bad_settings_give_one_message_and_defaults(home: Path, project: Path) -> None:
    ed = await start_editor(
        home,
        project,
        "neovim",
        init_options={"remora": {"max_active_packs": "many", "debounce_ms": 10}},
    )
    try:
        await ed.wait(lambda: any("max_active_packs" in m for m in ed.messages))
        message = next(m for m in ed.messages if "max_active_packs" in m)
        assert "'many'" in message and "default 8" in message
        ed.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"remora": {"max_active_packs": 0}})
        )
        await ed.wait(lambda: any("`max_active_packs` = 0" in m for m in ed.messages))
        ed.open("main.py", MAIN)
        await ed.wait_state("fastapi", "ready")
    finally:
        await ed.client.shutdown_session()


async def test_max_active_packs_evicts_least_recently_used(home: Path, project: Path) -> None:
    ed = await start_editor(
        home, project, "visual-studio-code", init_options={"max_active_packs": 1}
    )
    try:
        ed.open("a.py", "import fastapi\n")
        await ed.wait_state("fastapi", "ready")
        ed.open("b.py", "import pydantic\n")
        await ed.wait_state("pydantic", "ready")
        pack = await ed.wait_state("fastapi", "inactive")
        assert "max_active_packs=1" in pack["reason"]
    finally:
        await ed.client.shutdown_session()


async def test_binary_and_huge_documents_are_tracked_not_parsed(editor: Editor) -> None:
    uri = editor.open("blob.py", "import fastapi\x00\x01\x02")
    big = editor.open("big.py", "import fastapi\n" + "x = 1\n" * 400_000)
    assert await editor.hover(uri, 0, 8) is None
    assert await editor.hover(big, 0, 8) is None
    await editor.list_packs()
    assert editor.pack("fastapi")["state"] == "inactive"
    ok = editor.open("main.py", MAIN)
    await editor.wait_state("fastapi", "ready")
    assert await editor.hover(ok, 1, 8) is not None


async def test_changes_to_unknown_documents_are_ignored(editor: Editor) -> None:
    editor._versions["file:///nowhere.py"] = 1
    editor.edit("file:///nowhere.py", (0, 0), (0, 0), "import fastapi\n")
    editor.close("file:///nowhere.py")
    assert len((await editor.list_packs())["packs"]) == 4
