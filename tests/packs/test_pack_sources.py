"""The pack sources in packs/: every manifest parses, every template loads, renders and compiles.

Templates are loaded and rendered the way the server does it: through a
:class:`TemplateCatalog` built from the pack folders, which runs each ``.pym`` and each render in
the sandboxed child. For the httpx and click packs the rendered test modules are then run with
pytest (in a child process, in ``tmp_path``) against the rendered client / command line, which
shows that the templates produce working code, not only code that parses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from remora_lsp.packs.manifest import Manifest, load_manifest
from remora_lsp.packs.verify import VerifiedPack
from remora_lsp.templates.catalog import TemplateCatalog
from remora_lsp.templates.render import RenderResult

REPO = Path(__file__).resolve().parents[2]
PACKS = REPO / "packs"
PACK_DIRS = sorted(p for p in PACKS.iterdir() if p.is_dir() and not p.name.startswith("."))
NEW_PACKS = {"httpx": ">=0.27,<1", "click": ">=8,<9"}

# The required parameters of every shipped template, with sensible values; the rest are left to
# their defaults. A template added without an entry here fails test_every_template_has_arguments.
REQUIRED_ARGS: dict[str, dict[str, object]] = {
    "fastapi/app": {"title": "Shop"},
    "fastapi/dependency": {"name": "get_token"},
    "fastapi/router": {"resource": "order", "model": "Order"},
    "fastapi/schemas": {"model": "Order"},
    "fastapi/test_router": {"resource": "order"},
    "pydantic/model": {"model": "Address"},
    "pydantic/settings": {"fields": ["database_url", "debug: bool"]},
    "pydantic/validator": {"model": "Signup"},
    "httpx/client": {"name": "ShopClient", "endpoints": ["orders"]},
    "httpx/async_client": {"name": "ShopClient", "endpoints": ["orders"]},
    "httpx/test_client": {"name": "ShopClient", "endpoints": ["orders"]},
    "click/cli": {"name": "shop", "commands": ["sync"]},
    "click/command": {"name": "greet"},
    "click/test_cli": {"name": "shop", "commands": ["sync"]},
}

ENDPOINTS = [
    "orders",
    "order_items: get",
    "create_order: POST",
    "replace_order: put",
    "cancel: DELETE",
]


@pytest.fixture(scope="module")
def manifests() -> dict[str, Manifest]:
    return {d.name: load_manifest(d) for d in PACK_DIRS}


@pytest.fixture(scope="module")
def catalog(manifests: dict[str, Manifest]) -> TemplateCatalog:
    """Every pack source's templates, loaded through the sandbox as for a trusted pack."""
    packs = [VerifiedPack(PACKS / name, m, signed_by="test") for name, m in manifests.items()]
    loaded = TemplateCatalog.from_packs(packs)
    assert [str(e) for e in loaded.errors] == []
    return loaded


def render(catalog: TemplateCatalog, name: str, args: dict[str, object]) -> RenderResult:
    result = catalog.render(name, args)
    assert result.files, name
    for item in result.files:
        assert item.path.endswith(".py"), item.path
        compile(item.content, f"{name}:{item.path}", "exec")
    return result


def write(result: RenderResult, root: Path) -> None:
    for item in result.files:
        target = root / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(item.content, "utf-8")


def run_pytest(root: Path) -> str:
    """Run pytest on ``root/tests`` in a child process; the rendered modules import from root."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


def test_new_pack_sources_exist() -> None:
    assert {"fastapi", "pydantic", *NEW_PACKS} <= {d.name for d in PACK_DIRS}


@pytest.mark.parametrize("pack", [d.name for d in PACK_DIRS])
def test_manifest_parses_and_lists_its_templates(manifests: dict[str, Manifest], pack: str) -> None:
    manifest = manifests[pack]
    assert manifest.name == pack
    assert manifest.library is not None and manifest.library.name == pack
    assert manifest.triggers.python_imports
    on_disk = sorted(f"templates/{p.name}" for p in (PACKS / pack / "templates").glob("*.pym"))
    assert sorted(manifest.templates) == on_disk
    stems = sorted(t.removeprefix("templates/").removesuffix(".pym") for t in manifest.templates)
    tools = {t.name: t for t in manifest.tools}
    assert tools[f"{pack}_search"].kind == "search"
    assert tools[f"{pack}_search"].parameters["required"] == ["query"]
    for tool in tools.values():
        if tool.kind == "template":
            assert sorted(tool.parameters["properties"]["template"]["enum"]) == stems


@pytest.mark.parametrize("pack", sorted(NEW_PACKS))
def test_new_sources_carry_identity_triggers_templates_and_tools_only(
    manifests: dict[str, Manifest], pack: str
) -> None:
    manifest = manifests[pack]
    assert manifest.license == "BSD-3-Clause"
    assert manifest.library is not None and manifest.library.versions == NEW_PACKS[pack]
    assert manifest.triggers.python_imports == (pack,)
    assert manifest.embeddings is None and not manifest.adapters and not manifest.files
    assert not (PACKS / pack / "embeddings").exists()
    assert {t.name: t.kind for t in manifest.tools} == {
        f"{pack}_search": "search",
        f"{pack}_scaffold": "template",
    }


def test_every_template_has_arguments(
    catalog: TemplateCatalog, manifests: dict[str, Manifest]
) -> None:
    listed = {
        f"{m.name}/{t[len('templates/') : -len('.pym')]}"
        for m in manifests.values()
        for t in m.templates
    }
    assert {s.name for s in catalog.specs} == listed
    assert set(REQUIRED_ARGS) == listed
    for spec in catalog.specs:
        required = {p.name for p in spec.params if p.required}
        assert set(REQUIRED_ARGS[spec.name]) == required, spec.name


@pytest.mark.parametrize("name", sorted(REQUIRED_ARGS))
def test_template_renders_with_defaults_and_compiles(catalog: TemplateCatalog, name: str) -> None:
    result = render(catalog, name, REQUIRED_ARGS[name])
    assert catalog.render_template(name, REQUIRED_ARGS[name])["ok"] is True
    for marker in result.fills:
        content = next(f.content for f in result.files if f.path == marker.path)
        assert content.splitlines()[marker.line].strip().startswith("# remora: fill")


@pytest.mark.slow
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_httpx_client_passes_its_generated_tests(
    catalog: TemplateCatalog, tmp_path: Path, asynchronous: bool
) -> None:
    client = "httpx/async_client" if asynchronous else "httpx/client"
    args = {"name": "ShopClient", "endpoints": ENDPOINTS, "base_url": "https://shop.test/api/v1"}
    write(render(catalog, client, {**args, "timeout": 3}), tmp_path)
    tests = render(catalog, "httpx/test_client", {**args, "asynchronous": asynchronous})
    write(tests, tmp_path)
    assert sorted(f.path for f in tests.files) == ["tests/test_api_client.py"]
    assert (tmp_path / "api_client.py").is_file()
    # 5 endpoints + 3 error statuses + headers + closing + the fill-marked test
    assert "11 passed" in run_pytest(tmp_path)


@pytest.mark.slow
def test_click_cli_and_command_pass_their_tests(catalog: TemplateCatalog, tmp_path: Path) -> None:
    args = {"name": "shop", "commands": ["add_user", "sync", "export_data"], "version": "2.1.0"}
    write(render(catalog, "click/cli", args), tmp_path)
    write(render(catalog, "click/test_cli", args), tmp_path)
    command = render(
        catalog,
        "click/command",
        {"name": "copy_files", "params": ["src: path", "dest", "--count: int", "--dry-run: bool"]},
    )
    assert [f.path for f in command.files] == ["copy_files.py"]
    write(command, tmp_path)
    (tmp_path / "tests" / "test_copy_files.py").write_text(
        "from click.testing import CliRunner\n\n"
        "from copy_files import copy_files\n\n\n"
        "def test_copy_files() -> None:\n"
        "    result = CliRunner().invoke(copy_files, ['a.txt', 'b', '--count', '3', '--dry-run'])\n"
        "    assert result.exit_code == 0, result.output\n"
        "    assert result.output.strip() == 'copy-files: src=a.txt dest=b count=3 dry_run=True'\n"
        "    assert CliRunner().invoke(copy_files, ['a.txt']).exit_code == 2\n"
        "    assert CliRunner().invoke(copy_files, ['a', 'b', '--count', 'x']).exit_code == 2\n",
        "utf-8",
    )
    # help, version, unknown command, 3 commands x (plain, --verbose), the command module
    assert "10 passed" in run_pytest(tmp_path)
