"""Completion through the LSP on a replayed typing trace of a real file.

A scripted editor starts ``remora serve`` with a real engine, opens a real Python file with its
last lines removed, then types those lines back one keystroke at a time (a fixed interval
between keystrokes), asking for an inline completion after every keystroke without waiting for
the previous answer — as an editor does. It reports how many requests were issued against how
many generations the engine ran (the debounce and the typed-through cache at work), the cache
hit rate, and request latency p50/p99. In-run baseline: the same trace with the debounce off.

    .venv/bin/python benchmarks/completion_trace.py [--quick] [--json OUT] [--model PATH]

The model defaults to the fetched SmolLM2-135M (`remora models fetch`); without it, a tiny
random model is built (latencies then mean little, the request/generation counts still do).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from remora_lsp.server.editor import ScriptedEditor  # noqa: E402

TRACE_FILE = REPO / "examples" / "sample-project" / "app" / "main.py"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def default_model(tmp: Path) -> tuple[Path, str | None]:
    from remora_lsp.errors import RemoraError
    from remora_lsp.inference.config import load_engine_config
    from remora_lsp.inference.models import resolve_model

    try:
        return resolve_model(load_engine_config()[0]), None
    except RemoraError:
        from tests.inference.tiny import build_tiny

        tiny = build_tiny(tmp / "tiny", adapters=())
        return tiny.path, tiny.model_id


async def replay(
    model: Path, model_id: str | None, lines: int, debounce_ms: int, interval_s: float
) -> dict[str, Any]:
    text = TRACE_FILE.read_text(encoding="utf-8")
    keep = text.splitlines(keepends=True)
    typed = "".join(keep[-lines:])
    start_text = "".join(keep[:-lines])
    with tempfile.TemporaryDirectory() as tmp:
        home, project = Path(tmp) / "home", Path(tmp) / "project"
        (home / "packs").mkdir(parents=True)
        (home / "config.yaml").write_text("semantic:\n  workspace_index: false\n")
        project.mkdir()
        (project / "main.py").write_text(start_text)
        env = {
            "REMORA_HOME": str(home),
            "REMORA_GENERATIVE": "1",
            "REMORA_ENGINE": "transformers",
            "REMORA_MODEL": str(model),
            "REMORA_DEBOUNCE_MS": str(debounce_ms),
            "REMORA_LOG_LEVEL": "ERROR",
        }
        if model_id:
            env["REMORA_MODEL_ID"] = model_id
        editor = ScriptedEditor(project, env=env)
        await editor.start()
        try:
            uri = editor.open("main.py")
            if not await editor.wait_engine(300):
                raise SystemExit("the engine did not start")
            line = start_text.count("\n")
            col = 0
            latencies: list[float] = []
            pending: list[asyncio.Task[None]] = []

            async def ask(at_line: int, at_col: int) -> None:
                started = time.perf_counter()
                await editor.inline_completion(uri, at_line, at_col)
                latencies.append((time.perf_counter() - started) * 1000)

            for char in typed:
                editor.change(uri, (line, col), (line, col), char)
                if char == "\n":
                    line, col = line + 1, 0
                else:
                    col += len(char.encode("utf-16-le")) // 2
                pending.append(asyncio.ensure_future(ask(line, col)))
                await asyncio.sleep(interval_s)
            await asyncio.gather(*pending)
            status = await editor.client.protocol.send_request_async("remora/engineStatus", None)
            completion = getattr(status, "completion", None)
            stats = completion._asdict() if completion is not None else {}
        finally:
            await editor.stop()
    keystrokes = len(typed)
    generations = int(stats.get("cacheMisses", 0))
    hits = int(stats.get("cacheHits", 0))
    return {
        "keystrokes": keystrokes,
        "requests": int(stats.get("requests", keystrokes)),
        "superseded": int(stats.get("superseded", 0)),
        "generations": generations,
        "cache_hit_rate": hits / max(1, hits + generations),
        "p50_ms": statistics.median(latencies) if latencies else 0.0,
        "p99_ms": percentile(latencies, 0.99),
        "debounce_ms": debounce_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="type 2 lines instead of 6")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--model", type=Path, help="a local HF model folder")
    parser.add_argument("--interval-ms", type=int, default=80, help="time between keystrokes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model, model_id = (args.model, None) if args.model else default_model(Path(tmp))
        lines = 2 if args.quick else 6
        runs = [
            asyncio.run(replay(model, model_id, lines, 150, args.interval_ms / 1000)),
            asyncio.run(replay(model, model_id, lines, 0, args.interval_ms / 1000)),
        ]
    print(f"completion over stdio on a replayed typing trace of {TRACE_FILE.name} ({model.name})")
    header = ("debounce", "keystrokes", "generations", "gen/keys", "cache hit", "p50 ms", "p99 ms")
    print("".join(f"{h:>13}" for h in header))
    for r in runs:
        row = (
            f"{r['debounce_ms']} ms",
            r["keystrokes"],
            r["generations"],
            f"{r['generations'] / max(1, r['keystrokes']):.2f}",
            f"{r['cache_hit_rate']:.0%}",
            f"{r['p50_ms']:.0f}",
            f"{r['p99_ms']:.0f}",
        )
        print("".join(f"{v!s:>13}" for v in row))
    if args.json:
        args.json.write_text(json.dumps(runs[0] | {"baseline_no_debounce": runs[1]}, indent=2))


if __name__ == "__main__":
    main()
