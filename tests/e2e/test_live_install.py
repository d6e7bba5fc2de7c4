"""The pack CLI and a running server: install, use, remove and tampering, seen live."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import Editor, server_env, start_editor

REMORA = [sys.executable, "-m", "remora_lsp"]


def remora(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = server_env(home)
    env.pop("REMORA_ALLOW_UNSIGNED")
    return subprocess.run([*REMORA, *args], env=env, capture_output=True, text=True, timeout=120)


def make_source(root: Path, version: str) -> Path:
    src = root / f"src-{version}"
    (src / "templates").mkdir(parents=True)
    (src / "manifest.yaml").write_text(
        "format: 1\nname: httpx\n"
        f"version: {version}\n"
        "description: test pack\nlicense: MIT\n"
        "library: {name: httpx, ecosystem: pypi, versions: '>=0.27'}\n"
        "triggers: {python_imports: [httpx]}\n"
    )
    (src / "templates" / "client.pym").write_text('TEMPLATE = "x"\nPARAMS = {}\nINTENTS = []\n')
    return src


async def test_build_sign_trust_install_then_use_remove_live(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    project.mkdir()
    key = tmp_path / "me.key"
    assert remora(home, "key", "generate", "-o", str(key)).returncode == 0
    assert remora(home, "trust", "add", f"{key}.pub", "--name", "me").returncode == 0
    archives = {}
    for version in ("1.0.0", "1.1.0"):
        out = tmp_path / f"httpx-{version}.remorapack"
        built = remora(
            home,
            "pack",
            "build",
            str(make_source(tmp_path, version)),
            "-o",
            str(out),
            "--sign",
            str(key),
        )
        assert built.returncode == 0, built.stderr
        archives[version] = out

    env = server_env(home)
    env.pop("REMORA_ALLOW_UNSIGNED")  # only signed, trusted packs load
    editor: Editor = await start_editor(home, project, "visual-studio-code", env=env)
    try:
        editor.open("client.py", "import httpx\n")
        installed = remora(home, "install", str(archives["1.0.0"]))
        assert installed.returncode == 0, installed.stderr
        pack = await editor.wait_state("httpx", "ready")
        assert pack["version"] == "1.0.0" and pack["signed"] is True

        assert remora(home, "install", str(archives["1.1.0"])).returncode == 0
        await editor.wait(lambda: (editor.pack("httpx") or {}).get("version") == "1.1.0")
        await editor.wait_state("httpx", "ready")

        assert remora(home, "use", "httpx@1.0.0").returncode == 0
        await editor.wait(lambda: (editor.pack("httpx") or {}).get("version") == "1.0.0")
        await editor.wait_state("httpx", "ready")

        # Tampering with an installed file is caught when the pack loads again.
        template = home / "packs" / "httpx" / "1.0.0" / "templates" / "client.pym"
        template.write_text("import os; os.system('echo pwned')\n")
        editor.close(editor.root.joinpath("client.py").as_uri())
        await editor.wait_state("httpx", "inactive")
        editor.open("client2.py", "import httpx.auth\n")
        pack = await editor.wait_state("httpx", "error")
        assert "client.pym" in pack["reason"]

        assert remora(home, "remove", "httpx").returncode == 0
        await editor.wait(lambda: editor.pack("httpx") is None)
        listed = await editor.list_packs()
        assert listed["packs"] == []
    finally:
        await editor.client.shutdown_session()


async def test_untrusted_signature_is_an_error_status(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    project.mkdir()
    key = tmp_path / "stranger.key"
    assert remora(home, "key", "generate", "-o", str(key)).returncode == 0
    out = tmp_path / "httpx.remorapack"
    assert (
        remora(
            home,
            "pack",
            "build",
            str(make_source(tmp_path, "1.0.0")),
            "-o",
            str(out),
            "--sign",
            str(key),
        ).returncode
        == 0
    )
    refused = remora(home, "install", str(out))
    assert refused.returncode != 0 and "trust" in refused.stderr.lower()
    assert not (home / "packs" / "httpx").exists()
