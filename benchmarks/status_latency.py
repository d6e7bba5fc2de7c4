"""didChange → remora/packStatus latency over a real stdio session.

A scripted editor starts ``remora serve`` with one development pack, opens a file without the
import, then repeatedly types ``import fastapi`` and deletes it again. For each edit it measures
the time from sending didChange to receiving the packStatus that reflects it (``triggeredBy``
gains or loses the file), and, as the in-run baseline, the round trip of a ``remora/listPacks``
request on the same connection. The status path includes the configured debounce (reported).

    .venv/bin/python benchmarks/status_latency.py [--quick] [--json OUT] [--debounce-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from remora_lsp.server.editor import ScriptedEditor


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(rounds: int, debounce_ms: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        home, project = Path(tmp) / "home", Path(tmp) / "project"
        pack = home / "packs" / "fastapi" / "0.1.0"
        pack.mkdir(parents=True)
        (pack / "manifest.yaml").write_text(
            "format: 1\nname: fastapi\nversion: 0.1.0\ntriggers: {python_imports: [fastapi]}\n"
        )
        project.mkdir()
        (project / "main.py").write_text("x = 1\n")
        editor = ScriptedEditor(
            project,
            env={
                "REMORA_HOME": str(home),
                "REMORA_ALLOW_UNSIGNED": "1",
                "REMORA_DEBOUNCE_MS": str(debounce_ms),
                "REMORA_DEACTIVATE_GRACE_SECONDS": "0",
                "REMORA_LOG_LEVEL": "ERROR",
            },
        )
        await editor.start()
        try:
            await editor.wait_for(lambda p: bool(p["packs"]))
            uri = editor.open("main.py")
            status_ms: list[float] = []
            rpc_ms: list[float] = []
            for i in range(rounds):
                added = i % 2 == 0
                started = time.perf_counter()
                if added:
                    editor.change(uri, (0, 0), (0, 0), "import fastapi\n")
                else:
                    editor.change(uri, (0, 0), (1, 0), "")

                def reflected(payload: dict, want: bool = added) -> bool:
                    pack = payload["packs"][0]
                    return bool(pack["triggeredBy"]) is want

                await editor.wait_for(reflected, 10)
                status_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                await editor.list_packs()
                rpc_ms.append((time.perf_counter() - started) * 1000)
        finally:
            await editor.stop()
    return {
        "rounds": rounds,
        "debounce_ms": debounce_ms,
        "status_p50_ms": statistics.median(status_ms),
        "status_p99_ms": percentile(status_ms, 0.99),
        "rpc_p50_ms": statistics.median(rpc_ms),
        "rpc_p99_ms": percentile(rpc_ms, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 edits instead of 200")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--debounce-ms", type=int, default=150, help="server debounce setting")
    args = parser.parse_args()
    result = asyncio.run(measure(20 if args.quick else 200, args.debounce_ms))
    net = result["status_p50_ms"] - result["debounce_ms"]
    print(f"didChange → packStatus over stdio ({result['rounds']} edits)")
    print(f"{'path':<34}{'p50 ms':>10}{'p99 ms':>10}{'× rpc p50':>12}")
    rows = [
        ("listPacks round trip (baseline)", result["rpc_p50_ms"], result["rpc_p99_ms"]),
        (
            f"didChange→status (debounce {result['debounce_ms']} ms)",
            result["status_p50_ms"],
            result["status_p99_ms"],
        ),
    ]
    for label, p50, p99 in rows:
        print(f"{label:<34}{p50:>10.1f}{p99:>10.1f}{p50 / result['rpc_p50_ms']:>12.1f}")
    print(f"status latency beyond the debounce: {net:.1f} ms (p50)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
