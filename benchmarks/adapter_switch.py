"""Adapter context switching: time to first token by where the adapter is when asked for.

Runs the engine that ``engine`` / ``REMORA_ENGINE`` selects (``transformers``, ``vllm`` or
``remote``; ``auto`` is resolved as the server would) on the configured base model (the default
SmolLM2-135M when installed, else a tiny locally built model, said in the output) with
``--adapters`` real LoRA adapters (rank 16 on all seven projection modules, weights of small
random noise, written as PEFT safetensors). Slots are set to 2 resident and 4 in the CPU cache so
every tier is exercised. Measured, as the median time to first token of a ~120-token prompt:

- ``ttft_base_ms``: no adapter;
- ``ttft_resident_ms``: the adapter used by the previous request too;
- ``ttft_switch_ms``: alternating between two resident adapters (for the merged transformers
  engine this includes unmerging one and merging the other);
- ``ttft_cpu_cache_ms``: loaded in the CPU cache but not resident;
- ``ttft_cold_ms``: evicted to disk, read again on use;

then the mean time to first token while cycling round-robin through 1, 2, 4, ... distinct
adapters, and for backends that batch (vLLM, remote) the throughput of 8 concurrent requests on
one adapter versus 8 different adapters. Prints tables with ratios to the base within this run.

    .venv/bin/python benchmarks/adapter_switch.py [--quick] [--json OUT] [--adapters N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from remora_lsp.inference.config import EngineConfig, load_engine_config  # noqa: E402
from remora_lsp.inference.engine import AdapterRef, Engine, GenerationRequest  # noqa: E402
from remora_lsp.inference.errors import ModelNotFoundError  # noqa: E402

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SAMPLE = Path(__file__).resolve().parents[1] / "remora_lsp" / "inference" / "slots.py"


# -- shared with engine_overhead.py ---------------------------------------------------------------


def lora_shapes(config: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(in, out) features of each projection a LoRA targets, from a Llama/Gemma-style config."""
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or hidden // heads)
    inter = int(config["intermediate_size"])
    return {
        "q_proj": (hidden, heads * head_dim),
        "k_proj": (hidden, kv_heads * head_dim),
        "v_proj": (hidden, kv_heads * head_dim),
        "o_proj": (heads * head_dim, hidden),
        "gate_proj": (hidden, inter),
        "up_proj": (hidden, inter),
        "down_proj": (inter, hidden),
    }


def lora_params(config: dict[str, Any], rank: int) -> int:
    """Parameters of a rank-``rank`` LoRA on all seven projections of every layer."""
    per_layer = sum(rank * (i + o) for i, o in lora_shapes(config).values())
    return per_layer * int(config["num_hidden_layers"])


def write_adapter(model: Path, dest: Path, seed: int, rank: int = 16, scale: float = 0.01) -> Path:
    """A PEFT LoRA adapter for ``model`` with small random weights, without loading the model."""
    import torch
    from safetensors.torch import save_file

    config = json.loads((model / "config.json").read_text())
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    attn = {"q_proj", "k_proj", "v_proj", "o_proj"}
    for layer in range(int(config["num_hidden_layers"])):
        for name, (fan_in, fan_out) in lora_shapes(config).items():
            block = "self_attn" if name in attn else "mlp"
            key = f"base_model.model.model.layers.{layer}.{block}.{name}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(rank, fan_in, generator=generator) * scale
            tensors[f"{key}.lora_B.weight"] = (
                torch.randn(fan_out, rank, generator=generator) * scale
            )
    dest.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(dest / "adapter_model.safetensors"), metadata={"format": "pt"})
    (dest / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "task_type": "CAUSAL_LM",
                "base_model_name_or_path": str(model),
                "r": rank,
                "lora_alpha": 2 * rank,
                "lora_dropout": 0.0,
                "bias": "none",
                "fan_in_fan_out": False,
                "target_modules": list(TARGETS),
                "inference_mode": True,
            },
            indent=2,
        )
    )
    return dest


def base_model(config: EngineConfig, workdir: Path) -> tuple[Path, str]:
    """(model folder, description): the configured model, or a tiny one built here."""
    from remora_lsp.inference.models import resolve_model

    try:
        path = resolve_model(config)
        return path, path.name
    except ModelNotFoundError as exc:
        from tests.inference.tiny import build_model

        print(f"note: {exc}; using a tiny locally built model instead", file=sys.stderr)
        return build_model(workdir / "tiny-model"), "tiny-llama (run `remora models fetch`)"


def prompt_of(engine: Engine, tokens: int) -> str:
    """Real source text of about ``tokens`` tokens."""
    text = SAMPLE.read_text()
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi) // 2
        if engine.count_tokens(text[:mid]) < tokens:
            lo = mid + 1
        else:
            hi = mid
    return text[:lo]


async def ttft_ms(engine: Engine, prompt: str, adapter: str | None) -> float:
    result = await engine.generate(GenerationRequest(prompt, max_tokens=1, adapter=adapter))
    return (result.ttft_s or result.total_s) * 1000


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    widths = [max(len(str(x)) for x in [h, *(r[i] for r in rows)]) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))


# -- the benchmark --------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from remora_lsp.inference.selection import choose_backend, select_engine

    settings, _ = load_engine_config()
    backend, why = choose_backend(settings)
    workdir = Path(tempfile.mkdtemp(prefix="remora-bench-"))
    try:
        model, label = base_model(settings, workdir)
        settings = settings.model_copy(
            update={
                "engine": backend,
                "model": str(model),
                "model_id": None,
                "max_loras": 2,
                "max_cpu_loras": 4,
                "max_lora_rank": 16,
            }
        )
        names = [f"pack{i:03d}" for i in range(args.adapters)]
        print(f"writing {len(names)} rank-16 adapters for {label} ...", file=sys.stderr)
        refs = [
            AdapterRef(name, i + 1, write_adapter(model, workdir / name, seed=i))
            for i, name in enumerate(names)
        ]
        adapter_bytes = (refs[0].path / "adapter_model.safetensors").stat().st_size
        engine = select_engine(settings)
        started = time.perf_counter()
        await engine.start()
        start_s = time.perf_counter() - started
        try:
            return await measure(engine, refs, args, backend, why, label, start_s, adapter_bytes)
        finally:
            await engine.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def measure(
    engine: Engine,
    refs: list[AdapterRef],
    args: argparse.Namespace,
    backend: str,
    why: str,
    label: str,
    start_s: float,
    adapter_bytes: int,
) -> dict[str, Any]:
    repeats = args.repeats
    prompt = prompt_of(engine, 120)
    for _ in range(2):  # warm up
        await ttft_ms(engine, prompt, None)
    for ref in refs[:5]:
        await engine.load_adapter(ref)
    a, b, c, d = (r.name for r in refs[:4])
    base, resident, switch, cached, cold = [], [], [], [], []
    for _ in range(repeats):
        await ttft_ms(engine, prompt, None)  # the switch back to the base is not the base
        base.append(await ttft_ms(engine, prompt, None))
        await ttft_ms(engine, prompt, a)
        resident.append(await ttft_ms(engine, prompt, a))
        await ttft_ms(engine, prompt, b)
        switch.append(await ttft_ms(engine, prompt, a))
        switch.append(await ttft_ms(engine, prompt, b))
        # c is in the CPU cache: make a and b the resident pair, then ask for c
        await engine.load_adapter(refs[2])
        await ttft_ms(engine, prompt, a)
        await ttft_ms(engine, prompt, b)
        cached.append(await ttft_ms(engine, prompt, c))
        # cold: d is used, then four others pass through the 4-adapter cache and push it to disk
        await engine.load_adapter(refs[3])
        await ttft_ms(engine, prompt, d)
        for ref in (refs[0], refs[1], refs[2], refs[4]):
            await engine.load_adapter(ref)
            await ttft_ms(engine, prompt, ref.name)
        assert d not in engine.cached_adapters(), engine.cached_adapters()
        cold.append(await ttft_ms(engine, prompt, d))
    results: dict[str, Any] = {
        "backend": backend,
        "backend_reason": why,
        "model": label,
        "adapters": len(refs),
        "engine_start_s": round(start_s, 2),
        "prompt_tokens": engine.count_tokens(prompt),
        "adapter_file_bytes": adapter_bytes,
        "ttft_base_ms": round(median(base), 2),
        "ttft_resident_ms": round(median(resident), 2),
        "ttft_switch_ms": round(median(switch), 2),
        "ttft_cpu_cache_ms": round(median(cached), 2),
        "ttft_cold_ms": round(median(cold), 2),
    }
    # cycling through k distinct adapters round-robin
    cycle: dict[int, float] = {}
    k = 1
    while k <= len(refs):
        times = []
        for ref in refs[:k]:
            await engine.load_adapter(ref)
        for i in range(max(repeats * 2, 2 * k)):
            times.append(await ttft_ms(engine, prompt, refs[i % k].name))
        cycle[k] = round(statistics.mean(times), 2)
        k *= 2
    results["cycle_ttft_ms"] = cycle
    if backend in {"vllm", "remote"}:
        results.update(await batch_throughput(engine, refs, prompt))
    return results


async def batch_throughput(engine: Engine, refs: list[AdapterRef], prompt: str) -> dict[str, Any]:
    for ref in refs[:2]:
        await engine.load_adapter(ref)

    async def batch(adapters: list[str | None]) -> float:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(engine.generate(GenerationRequest(prompt, 16, adapter=a)) for a in adapters)
        )
        tokens = sum(len(r.token_ids) for r in results)
        return tokens / (time.perf_counter() - started)

    one = [refs[0].name] * 8
    mixed = [refs[0].name, refs[1].name, None, refs[0].name, refs[1].name, None, refs[0].name, None]
    await batch(one)
    return {
        "batch8_single_adapter_tok_s": round(await batch(one), 1),
        "batch8_mixed_adapters_tok_s": round(await batch(mixed), 1),
    }


def report(results: dict[str, Any]) -> None:
    base = results["ttft_base_ms"]
    print(
        f"\nbackend {results['backend']} ({results['backend_reason']}); model {results['model']}; "
        f"engine start {results['engine_start_s']} s; prompt {results['prompt_tokens']} tokens; "
        f"{results['adapters']} adapters of {results['adapter_file_bytes'] / 1e6:.1f} MB"
    )
    rows = [
        [
            key.removeprefix("ttft_").removesuffix("_ms"),
            f"{results[key]:.1f}",
            f"{results[key] / base:.2f}x",
        ]
        for key in (
            "ttft_base_ms",
            "ttft_resident_ms",
            "ttft_switch_ms",
            "ttft_cpu_cache_ms",
            "ttft_cold_ms",
        )
    ]
    table("time to first token by adapter location (median)", ["where", "ms", "vs base"], rows)
    table(
        "cycling round-robin through k adapters (2 resident slots, 4 cached)",
        ["k", "mean ttft ms", "vs base"],
        [[k, f"{v:.1f}", f"{v / base:.2f}x"] for k, v in results["cycle_ttft_ms"].items()],
    )
    if "batch8_single_adapter_tok_s" in results:
        one, mixed = results["batch8_single_adapter_tok_s"], results["batch8_mixed_adapters_tok_s"]
        table(
            "8 concurrent requests, 16 tokens each",
            ["batch", "tokens/s", "vs single"],
            [
                ["one adapter", one, "1.00x"],
                ["mixed (2 adapters + base)", mixed, f"{mixed / one:.2f}x"],
            ],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer adapters and repeats")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--adapters", type=int, help="distinct adapters (default 16, quick 5)")
    parser.add_argument("--repeats", type=int, help="samples per measurement (default 7, quick 3)")
    args = parser.parse_args()
    args.adapters = max(5, args.adapters or (5 if args.quick else 16))
    args.repeats = args.repeats or (3 if args.quick else 7)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = asyncio.run(run(args))
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
