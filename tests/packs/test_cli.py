"""The pack commands end to end: build → sign → trust → install → list → use → remove."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from remora_lsp.cli import app

REPO = Path(__file__).resolve().parents[2]
REPO_FASTAPI = REPO / "packs" / "fastapi"


def archive_files(src: Path) -> list[str]:
    """What `pack build` puts in the archive: every file of the source folder."""
    return sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("REMORA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REMORA_ALLOW_UNSIGNED", raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    if code:
        assert result.stderr.startswith("error: "), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stdout


def test_round_trip(cli: CliRunner, tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = run(cli, "key", "generate", "-o", "team.key")
    assert "team.key.pub" in out
    assert oct((tmp_path / "team.key").stat().st_mode & 0o777) == "0o600"
    run(cli, "key", "generate", "-o", "team.key", code=1)

    out = run(cli, "pack", "build", str(REPO / "packs" / "fastapi"), "-o", "fastapi.remorapack")
    assert "built fastapi@0.1.0" in out and "UNSIGNED" in out
    run(cli, "pack", "verify", "fastapi.remorapack", code=1)
    assert "UNSIGNED (allowed)" in run(
        cli, "pack", "verify", "fastapi.remorapack", "--allow-unsigned"
    )

    assert "signed fastapi@0.1.0" in run(
        cli, "pack", "sign", "fastapi.remorapack", "--key", "team.key"
    )
    verify = cli.invoke(app, ["pack", "verify", "fastapi.remorapack"])
    assert verify.exit_code == 1 and "untrusted key" in verify.stderr

    assert "as 'team'" in run(cli, "trust", "add", "team.key.pub")
    keys = json.loads(run(cli, "trust", "list", "--json"))
    assert [k["name"] for k in keys] == ["team"]
    report = json.loads(run(cli, "pack", "verify", "fastapi.remorapack", "--json"))
    assert report == {
        "ok": True,
        "pack": "fastapi@0.1.0",
        "signed_by": "team",
        "key_id": keys[0]["key_id"],
        "files": len(archive_files(REPO_FASTAPI)) - 1,  # every file but the manifest
    }
    inspect = json.loads(run(cli, "pack", "inspect", "fastapi.remorapack", "--json"))
    assert inspect["manifest"]["triggers"]["python_imports"] == ["fastapi"]
    assert inspect["signature"]["trusted_as"] == "team"
    assert sorted(inspect["archive"]["files"]) == archive_files(REPO_FASTAPI)
    assert "templates/router.pym" in inspect["archive"]["files"]
    assert "signed by trusted key 'team'" in run(cli, "pack", "inspect", "fastapi.remorapack")

    assert "installed fastapi@0.1.0 (signed by 'team')" in run(cli, "install", "fastapi.remorapack")
    assert "already installed" in run(cli, "install", "fastapi.remorapack")
    assert (home / "packs" / "fastapi" / "0.1.0" / "templates" / "router.pym").is_file()

    # a second version, from the source folder, unsigned: needs --allow-unsigned
    src = tmp_path / "fastapi-src"
    shutil.copytree(REPO / "packs" / "fastapi", src)
    manifest = src / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("version: 0.1.0", "version: 0.2.0"))
    run(cli, "install", str(src), code=1)
    assert "UNSIGNED" in run(cli, "install", str(src), "--allow-unsigned")

    listing = json.loads(run(cli, "list", "--json"))
    rows = {(p["name"], p["version"]): p for p in listing}
    assert rows["fastapi", "0.1.0"]["signed_by"] == "team"
    assert rows["fastapi", "0.2.0"]["trust"] == "UNSIGNED"
    assert rows["fastapi", "0.2.0"]["active"] and not rows["fastapi", "0.1.0"]["active"]
    table = run(cli, "list")
    assert "UNSIGNED" in table and "team" in table

    assert "is now the active version" in run(cli, "use", "fastapi@0.1.0")
    listing = json.loads(run(cli, "list", "--json"))
    active = [p["version"] for p in listing if p["active"]]
    assert active == ["0.1.0"]
    assert (home / "packs" / "fastapi" / "ACTIVE").read_text().strip() == "0.1.0"

    run(cli, "use", "fastapi@9.0.0", code=1)
    assert cli.invoke(app, ["use", "fastapi"]).exit_code == 2  # usage error: no version
    assert "removed fastapi@0.2.0" in run(cli, "remove", "fastapi@0.2.0")
    assert "removed fastapi@0.1.0" in run(cli, "remove", "fastapi")
    assert json.loads(run(cli, "list", "--json")) == []
    assert "removed trusted key 'team'" in run(cli, "trust", "remove", "team")
    run(cli, "trust", "remove", "team", code=1)
    assert not (home / "packs" / ".tmp").exists() or not any((home / "packs" / ".tmp").iterdir())


def test_build_with_sign_and_default_output(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "key", "generate", "-o", "k")
    out = run(cli, "pack", "build", str(REPO / "packs" / "pydantic"), "--sign", "k")
    assert "pydantic-0.1.0.remorapack" in out and "signed with key" in out
    assert (tmp_path / "pydantic-0.1.0.remorapack").is_file()


def test_failures_are_one_line(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "pack", "build", str(tmp_path / "nowhere"), code=1)
    run(cli, "pack", "verify", str(tmp_path / "missing.remorapack"), code=1)
    run(cli, "install", str(tmp_path / "missing.remorapack"), code=1)
    run(cli, "trust", "add", str(tmp_path / "missing.pub"), code=1)
    (tmp_path / "garbage.pub").write_text("not a key\n")
    run(cli, "trust", "add", str(tmp_path / "garbage.pub"), code=1)
    run(cli, "remove", "../../etc", code=1)
    run(cli, "pack", "sign", str(tmp_path / "missing.remorapack"), "--key", "nokey", code=1)


def test_verify_installed_folder(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "key", "generate", "-o", "k")
    run(cli, "trust", "add", "k.pub", "--name", "me")
    run(cli, "pack", "build", str(REPO / "packs" / "fastapi"), "-o", "f.remorapack", "--sign", "k")
    run(cli, "install", "f.remorapack")
    folder = tmp_path / "home" / "packs" / "fastapi" / "0.1.0"
    assert "OK fastapi@0.1.0" in run(cli, "pack", "verify", str(folder))
    (folder / "templates" / "app.pym").write_text("import os\n")
    result = cli.invoke(app, ["pack", "verify", str(folder)])
    assert result.exit_code == 1 and "tampered" in result.stderr


def test_real_console_script(tmp_path: Path) -> None:
    """The installed ``remora`` entry point, as a user runs it."""
    exe = Path(sys.executable).with_name("remora")
    if not exe.exists():
        pytest.skip("remora console script not installed in this environment")
    env = {**os.environ, "REMORA_HOME": str(tmp_path / "home")}
    env.pop("REMORA_ALLOW_UNSIGNED", None)

    def remora(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(exe), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )

    assert remora("key", "generate", "-o", "k").returncode == 0
    assert remora("trust", "add", "k.pub").returncode == 0
    src = str(REPO / "packs" / "pydantic")
    assert remora("pack", "build", src, "-o", "p.remorapack", "--sign", "k").returncode == 0
    assert remora("install", "p.remorapack").returncode == 0
    listed = remora("list", "--json")
    assert json.loads(listed.stdout)[0]["signed_by"] == "k"
    bad = remora("install", "nothing-here.remorapack")
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
