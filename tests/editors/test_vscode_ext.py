"""The VS Code extension (editors/vscode): manifest, TypeScript build, .vsix, and behaviour.

VS Code itself cannot run here, so these tests check what can be checked without it: the
package.json contributions match the server's protocol and settings; the TypeScript compiles
and its unit tests pass; the packaged .vsix holds a bundled extension; and that bundle, loaded
by ``vscode_harness.js`` with a stand-in `vscode` module, starts a real `remora serve`, shows
the pack status in its status-bar item and switches packs through its commands. Nothing here
touches the network: `npm ci` belongs to scripts/build-vscode.sh (which `make test` runs before
pytest); the tests use the node_modules it leaves behind and skip, saying so, without them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from remora_lsp.config import Config

REPO = Path(__file__).resolve().parents[2]
EXT = REPO / "editors" / "vscode"
VSIX = EXT / "remora.vsix"
LANGUAGES = {"python", "javascript", "javascriptreact", "typescript", "typescriptreact"}
COMMANDS = {
    "remora.showPacks",
    "remora.activatePack",
    "remora.deactivatePack",
    "remora.restartServer",
}


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXT / "package.json").read_text())
    return data


def need_node_modules() -> None:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm/node are not installed: the VS Code extension cannot be built here")
    if not (EXT / "node_modules" / ".bin" / "tsc").exists():
        pytest.skip(
            "editors/vscode/node_modules is missing: run scripts/build-vscode.sh "
            "(its `npm ci` needs the npm registry, which tests may not contact)"
        )


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        argv, cwd=EXT, capture_output=True, text=True, timeout=300, check=False, **kwargs
    )
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


# -- the manifest (no Node needed) --------------------------------------------------------------


def test_manifest_targets_vscode_1_91_with_languageclient_11() -> None:
    pkg = manifest()
    assert pkg["engines"]["vscode"] == "^1.91.0"
    assert pkg["dependencies"]["vscode-languageclient"].startswith("^11.")
    # vsce refuses a @types/vscode newer than engines.vscode.
    assert pkg["devDependencies"]["@types/vscode"] == "~1.91.0"
    assert pkg["main"] == "./dist/extension.js"
    assert (EXT / "package-lock.json").exists()


def test_manifest_contributes_the_commands_and_languages() -> None:
    pkg = manifest()
    contributed = {c["command"] for c in pkg["contributes"]["commands"]}
    assert contributed == COMMANDS
    events = {e.removeprefix("onLanguage:") for e in pkg["activationEvents"]}
    assert events == LANGUAGES


def test_settings_match_the_server_config() -> None:
    """Every server-bound setting is a real config field, so the server never warns about it."""
    props = manifest()["contributes"]["configuration"]["properties"]
    editor_only = {"remora.serverPath", "remora.serverArgs", "remora.trace.server"}
    server_keys = {k.removeprefix("remora.") for k in props if k not in editor_only}
    assert server_keys <= set(Config.model_fields), server_keys - set(Config.model_fields)
    expected = {
        "allow_unsigned",
        "max_active_packs",
        "deactivate_grace_seconds",
        "debounce_ms",
        "max_document_bytes",
        "log_level",
    }
    assert server_keys == expected
    # The list the extension actually sends (src/packs.ts) is the same set.
    source = (EXT / "src" / "packs.ts").read_text()
    block = re.search(r"SERVER_SETTING_KEYS = \[(.*?)\]", source, re.S)
    assert block is not None
    assert set(re.findall(r'"(\w+)"', block.group(1))) == expected
    for key in expected:
        default = Config.model_fields[key].get_default(call_default_factory=True)
        assert props[f"remora.{key}"]["default"] == default, key


# -- TypeScript (offline, with the node_modules from build-vscode.sh) ---------------------------


@pytest.mark.slow
def test_typescript_compiles_and_unit_tests_pass(tmp_path: Path) -> None:
    need_node_modules()
    out = tmp_path / "out"
    run(["npx", "--no-install", "tsc", "-p", ".", "--outDir", str(out)])
    assert (out / "extension.js").exists()
    proc = run(["node", "--test", str(out / "test")])
    assert "# fail 0" in proc.stdout, proc.stdout


# -- the packaged .vsix -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vsix() -> Path:
    """The .vsix from build-vscode.sh, rebuilt offline when the sources are newer."""
    sources = [EXT / "package.json", EXT / ".vscodeignore", *(EXT / "src").rglob("*.ts")]
    newest = max(p.stat().st_mtime for p in sources)
    if not VSIX.exists() or VSIX.stat().st_mtime < newest:
        need_node_modules()
        run(["bash", str(REPO / "scripts" / "build-vscode.sh"), "--no-install"])
    return VSIX


def test_vsix_holds_manifest_and_bundled_extension(vsix: Path) -> None:
    with zipfile.ZipFile(vsix) as z:
        names = set(z.namelist())
        packaged = json.loads(z.read("extension/package.json"))
        bundle = z.read("extension/dist/extension.js").decode()
    assert "extension/package.json" in names
    assert "extension/dist/extension.js" in names
    assert not any("node_modules" in n for n in names), "dependencies belong in the bundle"
    assert not any(n.startswith("extension/src/") for n in names)
    assert packaged["main"] == "./dist/extension.js"
    assert packaged["contributes"] == manifest()["contributes"]
    # The language client is inside the bundle: it requires only Node built-ins and vscode.
    required = set(re.findall(r'require\("([^"]+)"\)', bundle))
    assert "vscode-languageclient/node" not in required
    assert "vscode" in required
    builtins = {"child_process", "crypto", "fs", "net", "os", "path", "readline", "util", "url"}
    assert required - {"vscode"} <= builtins, required
    assert "remora/packStatus" in bundle


STUB = """
// A stand-in `vscode` module: every name the bundle reads is a class-like proxy.
const names = JSON.parse(process.env.VSCODE_NAMES);
const any = () => new Proxy(class {}, { get: (t, k) => (k in t ? t[k] : any()) });
for (const n of names) module.exports[n] = any();
"""


def test_vsix_bundle_loads_under_node(vsix: Path, tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    with zipfile.ZipFile(vsix) as z:
        z.extract("extension/dist/extension.js", tmp_path)
    bundle = tmp_path / "extension" / "dist" / "extension.js"
    text = bundle.read_text()
    names = sorted(set(re.findall(r"\b(?:code|vscode\w*|import_vscode\w*)\.([A-Za-z_]\w*)", text)))
    stub = tmp_path / "stub" / "node_modules" / "vscode"
    stub.mkdir(parents=True)
    (stub / "index.js").write_text(STUB)
    env = dict(os.environ, NODE_PATH=str(stub.parent), VSCODE_NAMES=json.dumps(names))
    script = (
        f"const e = require({json.dumps(str(bundle))});console.log(Object.keys(e).sort().join(','))"
    )
    proc = run(["node", "-e", script], env=env)
    assert proc.stdout.strip() == "activate,deactivate"


# -- the extension against a real server, under a stand-in VS Code ------------------------------

HARNESS = Path(__file__).with_name("vscode_harness.js")
MANIFEST = """\
format: 1
name: fastapi
version: 0.1.0
triggers:
  python_imports: [fastapi]
"""


def run_harness(vsix: Path, tmp: Path, *, scenario: str, allow_unsigned: bool) -> dict[str, Any]:
    """Runs the packaged extension in vscode_harness.js; returns its JSON report."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    with zipfile.ZipFile(vsix) as z:
        z.extract("extension/dist/extension.js", tmp)
    pack = tmp / "home" / "packs" / "fastapi" / "0.1.0"
    pack.mkdir(parents=True)
    (pack / "manifest.yaml").write_text(MANIFEST)
    proj = tmp / "proj"
    proj.mkdir()
    (proj / "main.py").write_text("from fastapi import FastAPI\napp = FastAPI()\n")
    server = Path(sys.executable).parent / "remora"
    if not server.exists():
        pytest.skip(f"{server} is missing: install the package (scripts/bootstrap.sh)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMORA_")}
    env["REMORA_HOME"] = str(tmp / "home")
    if allow_unsigned:
        env["REMORA_ALLOW_UNSIGNED"] = "1"
    env["REMORA_VSCODE_TEST"] = json.dumps(
        {
            "serverPath": str(server),
            "file": str(proj / "main.py"),
            "settings": {},
            "timeoutMs": 15000,
            "scenario": scenario,
        }
    )
    argv = ["node", str(HARNESS), str(tmp / "extension" / "dist" / "extension.js")]
    try:
        proc = subprocess.run(
            argv, cwd=proj, env=env, capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the harness did not finish within 120 s\nstderr:\n{exc.stderr}")
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no report (exit {proc.returncode})\nstderr:\n{proc.stderr}"
    report: dict[str, Any] = json.loads(lines[-1])
    report["_stderr"] = proc.stderr[-6000:]
    return report


def test_extension_shows_status_and_switches_packs(vsix: Path, tmp_path: Path) -> None:
    report = run_harness(vsix, tmp_path, scenario="normal", allow_unsigned=True)
    why = f"\nreport: {json.dumps(report, indent=1, ensure_ascii=False)[:6000]}"
    assert report["ok"], why
    # The extension's own commands, plus the server's (remora.search, remora.scaffold) that the
    # language client registers from executeCommandProvider.
    assert set(report["commands"]) >= COMMANDS, why
    assert {"remora.search", "remora.scaffold"} <= set(report["commands"]), why
    assert report["errors"] == [], why
    # remora/packStatus drives the status bar item.
    assert report["ready"], why
    assert report["readyText"] == "Remora: fastapi ✓", why
    assert "fastapi 0.1.0 — ready (unsigned) — imported by main.py" in report["readyTooltip"], why
    assert report["readyBackground"] is None, why
    # remora.deactivatePack through the command palette, then activate through the item's pick.
    assert report["deactivated"], why
    assert report["pickLabels"][0] == "$(circle-outline) fastapi", why
    assert report["reactivated"], why
    # Activate without a name when nothing is inactive: a message, no empty picker.
    assert "activateOffered" not in report, why
    assert report["activateInfo"] == "Remora: every installed pack is already active.", why
    # Restart brings the status back; deactivate() releases every command.
    assert report["afterRestart"], why
    assert report["commandsAfterDeactivate"] == [], why


def test_extension_warns_on_pack_error_and_forwards_settings(vsix: Path, tmp_path: Path) -> None:
    report = run_harness(vsix, tmp_path, scenario="unsigned", allow_unsigned=False)
    why = f"\nreport: {json.dumps(report, indent=1, ensure_ascii=False)[:6000]}"
    assert report["ok"], why
    assert report["errored"], why
    assert report["errorText"] == "$(warning) Remora: fastapi ✗", why
    assert report["errorBackground"] == "statusBarItem.warningBackground", why
    assert "unsigned" in report["errorTooltip"], why
    # Setting remora.allow_unsigned reaches the server (didChangeConfiguration): the pack loads.
    assert report["readyAfterSetting"], why
    assert report["textAfterSetting"] == "Remora: fastapi ✓", why
