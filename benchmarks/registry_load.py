"""Registry download throughput and latency under concurrent clients, against ``http.server``.

One run builds a pack of ``--size-mib`` MiB (random bytes, so compression does not help),
publishes it to ``remora registry`` (uvicorn, local-folder storage) and puts the same archive in
a folder served by Python's ``http.server`` (``ThreadingHTTPServer``). Both servers run as
separate processes on loopback. For each concurrency level, N client threads (one httpx
connection pool each) download the file repeatedly for ``--seconds``; every download is a
complete body, checked against the expected length. The table gives throughput (MiB/s), request
rate and per-download latency p50/p99, with the registry ÷ http.server ratio.

    .venv/bin/python benchmarks/registry_load.py [--quick] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

TOKEN = "bench-publish-token"
SERVE_REGISTRY = (
    "import sys\n"
    "from pathlib import Path\n"
    "from remora_lsp.registry.server import serve\n"
    "from remora_lsp.registry.storage import LocalStorage\n"
    "serve(LocalStorage(Path(sys.argv[1])), '127.0.0.1', int(sys.argv[2]),\n"
    "      publish_token=sys.argv[3], log_level='warning')\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def build_pack(folder: Path, size_mib: int) -> Path:
    """A valid, unsigned pack archive whose payload is ``size_mib`` MiB of random bytes."""
    from remora_lsp.packs.archive import build_pack as build

    src = folder / "src"
    (src / "docs").mkdir(parents=True)
    (src / "manifest.yaml").write_text("format: 1\nname: bench\nversion: 1.0.0\n")
    with (src / "docs" / "payload.dat").open("wb") as fh:
        for _ in range(size_mib):
            fh.write(os.urandom(1024 * 1024))
    out = folder / "bench-1.0.0.remorapack"
    build(src, out)
    return out


def wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.args!r}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def load(url: str, clients: int, seconds: float, size: int) -> dict[str, Any]:
    """``clients`` threads download ``url`` in a loop for ``seconds``; return the figures."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        with httpx.Client(timeout=60) as client:
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                try:
                    got = 0
                    with client.stream("GET", url) as response:
                        response.raise_for_status()
                        for chunk in response.iter_raw(256 * 1024):
                            got += len(chunk)
                    if got != size:
                        raise RuntimeError(f"short body: {got} of {size}")
                except Exception as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                with lock:
                    latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    n = len(latencies)
    return {
        "clients": clients,
        "downloads": n,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "mib_per_s": n * size / elapsed / 1024**2,
        "req_per_s": n / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000 if n else float("nan"),
        "p99_ms": percentile(latencies, 0.99) * 1000 if n else float("nan"),
        "mean_ms": statistics.fmean(latencies) * 1000 if n else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small file, short runs")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--size-mib", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--clients", type=int, nargs="*", default=None)
    args = parser.parse_args()
    size_mib = args.size_mib or (2 if args.quick else 16)
    seconds = args.seconds or (2.0 if args.quick else 6.0)
    levels = args.clients or ([1, 8, 50] if args.quick else [1, 8, 32, 64])

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        archive = build_pack(root, size_mib)
        size = archive.stat().st_size
        static = root / "static"
        static.mkdir()
        (static / archive.name).write_bytes(archive.read_bytes())

        reg_port, http_port = free_port(), free_port()
        registry = subprocess.Popen(
            [sys.executable, "-c", SERVE_REGISTRY, str(root / "reg"), str(reg_port), TOKEN]
        )
        plain = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(http_port), "--bind", "127.0.0.1",
             "--directory", str(static)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            reg_url = f"http://127.0.0.1:{reg_port}"
            wait_http(f"{reg_url}/v1/health", registry)
            wait_http(f"http://127.0.0.1:{http_port}/", plain)
            put = httpx.put(
                f"{reg_url}/v1/packs/bench/1.0.0",
                content=archive.read_bytes(),
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=120,
            )
            put.raise_for_status()
            targets = {
                "registry": f"{reg_url}/v1/packs/bench/1.0.0/download",
                "http.server": f"http://127.0.0.1:{http_port}/{archive.name}",
            }
            rows: list[dict[str, Any]] = []
            for clients in levels:
                for server, url in targets.items():
                    rows.append({"server": server, **load(url, clients, seconds, size)})
        finally:
            for proc in (registry, plain):
                proc.terminate()
                proc.wait(15)

    print(
        f"file: {size / 1024**2:.1f} MiB, {seconds:g} s per level, loopback, {os.cpu_count()} CPUs"
    )
    columns = ("clients", "server", "MiB/s", "req/s", "p50 ms", "p99 ms", "err")
    widths = (">7", "<12", ">8", ">7", ">8", ">8", ">4")
    header = " ".join(f"{c:{w}}" for c, w in zip(columns, widths, strict=True))
    print(header)
    print("-" * len(header))
    ratios = []
    for clients in levels:
        pair = {r["server"]: r for r in rows if r["clients"] == clients}
        for server in ("registry", "http.server"):
            r = pair[server]
            print(
                f"{clients:>7} {server:<12} {r['mib_per_s']:>8.1f} {r['req_per_s']:>7.1f} "
                f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['errors']:>4}"
            )
        reg, base = pair["registry"], pair["http.server"]
        ratio = {
            "clients": clients,
            "throughput": reg["mib_per_s"] / base["mib_per_s"] if base["mib_per_s"] else None,
            "p50": reg["p50_ms"] / base["p50_ms"] if base["p50_ms"] else None,
            "p99": reg["p99_ms"] / base["p99_ms"] if base["p99_ms"] else None,
        }
        ratios.append(ratio)
        print(
            f"{'':>7} {'ratio':<12} {ratio['throughput'] or 0:>8.2f} {'':>7} "
            f"{ratio['p50'] or 0:>8.2f} {ratio['p99'] or 0:>8.2f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"size_bytes": size, "seconds": seconds, "rows": rows, "ratios": ratios}, indent=2
            )
        )


if __name__ == "__main__":
    main()
