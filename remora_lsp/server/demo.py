"""``remora demo``: a scripted editor session against the sample project.

It prepares a private ``REMORA_HOME`` with the packs from ``packs/`` (built, signed with a demo
key that the demo home trusts, and installed through the same code path as ``remora install``;
a pack trained by ``remora train`` is used instead of its source when one is found in the
``trained`` folders, and its card — base vs adapter metrics — is shown),
starts ``remora serve`` as a real subprocess, and walks through what a user would see: packs
activating as files that import them are opened, hovers, an edit that removes an import, the
grace period, and a manual override. Each step prints what the editor's status bar would show.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from remora_lsp.server.editor import ScriptedEditor, status_bar_text

__all__ = ["prepare_home", "run_demo"]

GRACE_S = 2.0


def _remora(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REMORA_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "remora_lsp", *args], env=env, capture_output=True, text=True
    )


def _install_via_registry(home: Path, archive_path: Path, name: str, console: Console) -> str:
    """Publish one pack to a local registry and install it by name, as a team would."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url, token = f"http://127.0.0.1:{port}", secrets.token_urlsafe(16)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "remora_lsp",
            "registry",
            "serve",
            "--storage",
            str(home / "registry"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--publish-token",
            token,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        steps = (
            ("publish", str(archive_path), "--registry", url, "--token", token),
            ("install", f"pack:{name}@^0", "--registry", url),
        )
        for args in steps:
            done = _remora(home, *args)
            if done.returncode != 0:
                raise RuntimeError(f"remora {args[0]} failed: {done.stderr.strip()}")
        console.print(
            f"  published {name} to a registry at {url}, installed pack:{name}@^0 from it "
            "(signed, verified)"
        )
    finally:
        server.terminate()
        server.wait(10)
    return name


def _show_card(console: Console, card: dict[str, Any]) -> None:
    """The trained pack's card: what its adapters and embedding measured against the bases."""
    gen = card.get("generation", {})
    rows = [
        ("perplexity, held-out library code", "heldout_ppl_base", "heldout_ppl_adapter"),
        (
            f"perplexity, other code ({gen.get('other_library')})",
            "other_ppl_base",
            "other_ppl_adapter",
        ),
        ("next-line exact match", "next_line_em_base", "next_line_em_adapter"),
    ]
    table = Table(
        title=f"trained on {card.get('source', {}).get('name')} "
        f"({card.get('train_seconds')} s training)",
        show_lines=False,
    )
    for column in ("metric", "base", "pack"):
        table.add_column(column)
    for label, base, tuned in rows:
        if base in gen:
            table.add_row(label, f"{gen[base]:.3f}", f"{gen[tuned]:.3f}")
    mrr = card.get("embedding", {}).get("mrr_at_10", {})
    for dims in sorted(mrr, key=int, reverse=True):
        table.add_row(
            f"search MRR@10 at {dims} dims", f"{mrr[dims]['base']:.3f}", f"{mrr[dims]['tuned']:.3f}"
        )
    tr = card.get("transform", {})
    if tr.get("rougeL_base") is not None:
        table.add_row(
            "docstring ROUGE-L", f"{tr['rougeL_base']:.3f}", f"{tr['rougeL_adapter']:.3f}"
        )
    console.print(table)


def _trained_archive(trained: tuple[Path, ...], name: str) -> Path | None:
    for folder in trained:
        candidate = folder / f"{name}.remorapack"
        if candidate.is_file():
            return candidate
    return None


def prepare_home(
    home: Path,
    pack_sources: Path,
    console: Console,
    *,
    registry: bool = False,
    trained: tuple[Path, ...] = (),
) -> list[str]:
    """Fresh demo home: build, sign and install every pack source (the last one through a
    local registry when ``registry``), or the pack ``remora train`` made from it when one is in
    ``trained``; return their names."""
    from remora_lsp.config import merge_config
    from remora_lsp.packs.archive import build_pack, sign_archive
    from remora_lsp.packs.install import install_pack
    from remora_lsp.packs.signing import generate_keypair
    from remora_lsp.packs.trust import add_trusted_key

    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    key = home / "demo-signing.key"
    generate_keypair(key)
    config, _ = merge_config(environ={"REMORA_HOME": str(home)})
    add_trusted_key(config.trust_dir, Path(f"{key}.pub"), name="remora-demo")
    names = []
    sources = sorted(p for p in pack_sources.iterdir() if (p / "manifest.yaml").is_file())
    via_registry = sources[-1:] if registry else []
    for src in sources:
        out = home / "built" / f"{src.name}.remorapack"
        made = _trained_archive(trained, src.name)
        if made is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(made, out)
            manifest = sign_archive(out, key)
            console.print(f"  [bold]{manifest.key}[/] was trained by `remora train` ({made}):")
            _show_card(console, manifest.card)
        else:
            build_pack(src, out, sign_key=key)
        if src in via_registry:
            names.append(_install_via_registry(home, out, src.name, console))
            continue
        installed = install_pack(out, config)
        console.print(f"  installed [bold]{installed.key}[/] (signed, verified)")
        names.append(installed.name)
    return names


async def _step(console: Console, title: str, action: Callable[[], Awaitable[Any]]) -> Any:
    console.rule(f"[bold cyan]{title}")
    started = time.perf_counter()
    result = await action()
    console.print(f"[dim]  ({(time.perf_counter() - started) * 1000:.0f} ms)[/]")
    return result


def _code_model() -> tuple[bool, str, dict[str, str]]:
    """The fetched default base model (``remora models fetch``), as server environment."""
    from remora_lsp.errors import RemoraError
    from remora_lsp.inference.config import load_engine_config
    from remora_lsp.inference.models import resolve_model

    config, _ = load_engine_config()
    try:
        path = resolve_model(config)
    except RemoraError as exc:
        return False, f"not available ({exc})", {}
    return True, f"{config.model} from {path}", {"REMORA_MODEL": str(path)}


def _edits(action: Any) -> list[Any]:
    edit = getattr(action, "edit", None)
    if edit is None or not edit.changes:
        return []
    return [e for edits in edit.changes.values() for e in edits]


def _show_status(console: Console, editor: ScriptedEditor) -> None:
    payload = editor.latest()
    console.print(f"  status bar: [bold green]{status_bar_text(payload)}[/]")
    table = Table(show_header=True, header_style="bold", box=None, padding=(0, 2))
    for column in ("pack", "version", "state", "signed", "reason", "triggered by"):
        table.add_column(column)
    for pack in payload["packs"]:
        files = ", ".join(Path(u).name for u in pack["triggeredBy"]) or "-"
        extra = [f"adapter {pack['adapter']}"] if pack.get("adapter") else []
        if isinstance(pack.get("index"), dict) and pack["index"].get("chunks"):
            extra.append(f"index {pack['index']['chunks']} chunks")
        reason = "; ".join(x for x in (pack["reason"] or "", *extra) if x)
        table.add_row(
            pack["name"],
            pack["version"],
            pack["state"],
            "yes" if pack.get("signed") else "UNSIGNED",
            reason,
            files,
        )
    console.print(table)


async def run_demo(
    project: Path, pack_sources: Path, home: Path, trained: tuple[Path, ...] = ()
) -> int:
    """Run the scripted session; return a process exit code (0 when every step behaved)."""
    console = Console()
    console.rule("[bold]Remora demo: packs activate from your imports")
    console.print(
        f"sample project: {project}\npack sources:   {pack_sources}\nREMORA_HOME:    {home}"
    )
    prepare_home(home, pack_sources, console, registry=True, trained=trained)
    # The editor works on a copy, so scaffolding never writes into the sample project itself.
    project = Path(shutil.copytree(project, home / "project"))
    model_ready, model_note, model_env = _code_model()
    console.print(f"code model:     {model_note}")
    env = {
        "REMORA_HOME": str(home),
        "REMORA_DEACTIVATE_GRACE_SECONDS": str(GRACE_S),
        "REMORA_LOG_LEVEL": "WARNING",
        "REMORA_GENERATIVE": "1" if model_ready else "0",
        **model_env,
    }
    editor = ScriptedEditor(project, env=env)
    await editor.start()
    try:
        await editor.wait_for(lambda p: bool(p["packs"]), 30)
        _show_status(console, editor)

        main_uri = ""

        async def open_main() -> None:
            nonlocal main_uri
            main_uri = editor.open("app/main.py")
            await editor.wait_state("fastapi", "ready")

        await _step(console, "open app/main.py (imports fastapi)", open_main)
        _show_status(console, editor)

        async def hover_import() -> None:
            text = await editor.hover(main_uri, 2, 7)
            console.print(f"  hover on `fastapi`: {text}")

        await _step(console, "hover the fastapi import", hover_import)

        async def hover_untyped() -> None:
            text = await editor.hover(main_uri, 30, 19)
            console.print("  hover on the untyped parameter `request` of health():")
            for line in (text or "(no answer)").splitlines()[:12]:
                console.print(f"    {line}")
            actions = await editor.code_actions(main_uri, 30, 19)
            for action in actions:
                console.print(f"  code action: [bold]{action.title}[/]")
                for edit in _edits(action):
                    console.print(f"    edit line {edit.range.start.line + 1}: {edit.new_text!r}")

        await _step(console, "hover an untyped name (type inference)", hover_untyped)

        async def complete_body() -> None:
            if not model_ready:
                console.print(f"  skipped: {model_note}")
                return
            editor.change(main_uri, (37, 0), (37, 0), "    ")
            await editor.wait_engine(180)
            started = time.perf_counter()
            items = await editor.inline_completion(main_uri, 37, 4)
            took = (time.perf_counter() - started) * 1000
            if not items:
                console.print(f"  no suggestion ({took:.0f} ms)")
            for item in items[:1]:
                console.print(
                    f"  suggestion in {took:.0f} ms (SmolLM2-135M + active pack adapters):"
                )
                for line in str(item).splitlines()[:8]:
                    console.print(f"    [green]{line}[/]")
            editor.change(main_uri, (37, 0), (37, 4), "")

        await _step(console, "inline completion in count_items()", complete_body)

        async def search() -> None:
            hits = await editor.command(
                "remora.search", {"query": "include a router in the application", "k": 3}
            )
            if not hits:
                console.print("  no indexed chunks (the packs carry no index)")
            for hit in hits or []:
                console.print(
                    f"  {hit['score']:.2f}  {hit['pack']}: {hit['label']} "
                    f"({hit['file']}:{hit['line'] + 1})"
                )

        await _step(console, "command remora.search", search)

        async def scaffold() -> None:
            answer = await editor.command(
                "remora.scaffold", {"request": "Add user profile endpoint", "uri": main_uri}
            )
            data = answer if isinstance(answer, dict) else vars(answer)
            console.print(f"  template: {data.get('template')}, applied: {data.get('applied')}")
            for step in editor.traces:
                console.print(
                    f"  trace {step['index']}: {step['tool']} ({step['elapsedMs']} ms) "
                    f"{str(step.get('resultSummary') or '')[:70]}"
                )
            written = dict.fromkeys(p for paths in editor.applied for p in paths)
            for path in written:
                console.print(f"  wrote {path.relative_to(project)}:")
                for line in path.read_text(encoding="utf-8").splitlines()[:14]:
                    console.print(f"    [cyan]{line}[/]")

        await _step(console, 'command remora.scaffold "Add user profile endpoint"', scaffold)

        async def open_models() -> None:
            editor.open("app/models.py")
            await editor.wait_state("pydantic", "ready")

        await _step(console, "open app/models.py (imports pydantic)", open_models)
        _show_status(console, editor)

        async def delete_import() -> None:
            editor.change(main_uri, (2, 0), (3, 0), "")  # the `from fastapi import` line
            await editor.wait_for(
                lambda p: any(x["name"] == "fastapi" and not x["triggeredBy"] for x in p["packs"]),
                10,
            )
            console.print(f"  import deleted; fastapi stays for the {GRACE_S:.0f} s grace period")
            _show_status(console, editor)
            await editor.wait_state("fastapi", "inactive", 10 + GRACE_S)

        await _step(console, "delete the fastapi import in app/main.py", delete_import)
        _show_status(console, editor)

        async def manual() -> None:
            await editor.command("remora.activatePack", "fastapi")
            await editor.wait_state("fastapi", "ready")

        await _step(console, "command remora.activatePack fastapi (manual override)", manual)
        _show_status(console, editor)

        listed = await editor.list_packs()
        console.rule("[bold cyan]remora/listPacks")
        console.print(
            f"  {len(listed['packs'])} packs installed: "
            + ", ".join(f"{p['name']} {p['version']}" for p in listed["packs"])
        )
        console.rule("[bold green]demo finished")
        return 0
    except TimeoutError as exc:
        console.print(f"[bold red]demo step timed out: {exc}")
        return 1
    finally:
        await editor.stop()


def main(project: Path, pack_sources: Path, home: Path, trained: tuple[Path, ...] = ()) -> int:
    """Synchronous entry point for the CLI."""
    return asyncio.run(run_demo(project, pack_sources, home, trained))
