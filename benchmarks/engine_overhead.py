"""What an active LoRA adapter costs on each backend, and what ~100 cached adapters weigh.

For each backend variant on the configured base model (SmolLM2-135M by default; a tiny local
model when it is not installed): ``transformers`` (PEFT adapter layers), ``transformers-merged``
(the adapter merged into the weights) and ``vllm`` (in-process, LoRA enabled; base requests go
through the all-zero adapter as the engine does on CPU), plus ``vllm-nolora`` (LoRA disabled, a
baseline; not with ``--quick``). Measured: time to first token for a ~300-token prefix (median)
and decode tokens/s, base vs one rank-16 adapter active; bytes per adapter on disk and the
engine's RSS growth per adapter loaded into its CPU cache. The ratios (adapter / base, and each
backend's adapter TTFT / the fastest base) come from this run only. Then a table extrapolated
from model configs: LoRA parameters and memory for 100 adapters at rank 16 on all seven
projections, for SmolLM2-135M, CodeGemma-2B and CodeGemma-7B.

    .venv/bin/python benchmarks/engine_overhead.py [--quick] [--json OUT] [--backends a,b]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapter_switch import (
    base_model,
    lora_params,
    median,
    prompt_of,
    table,
    write_adapter,
)

from remora_lsp.inference.config import load_engine_config
from remora_lsp.inference.engine import AdapterRef, Engine, GenerationRequest
from remora_lsp.inference.system import backend_installed, rss_bytes

# Public configs (config.json on the Hugging Face hub) of the models in the extrapolation.
MODEL_CONFIGS: dict[str, dict[str, int]] = {
    # HuggingFaceTB/SmolLM2-135M-Instruct
    "SmolLM2-135M": {
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "head_dim": 64,
        "params": 134_515_008,
    },
    # google/codegemma-2b
    "CodeGemma-2B": {
        "hidden_size": 2048,
        "intermediate_size": 16384,
        "num_hidden_layers": 18,
        "num_attention_heads": 8,
        "num_key_value_heads": 1,
        "head_dim": 256,
        "params": 2_506_172_416,
    },
    # google/codegemma-7b
    "CodeGemma-7B": {
        "hidden_size": 3072,
        "intermediate_size": 24576,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "head_dim": 256,
        "params": 8_537_680_896,
    },
}
VARIANTS = ("transformers", "transformers-merged", "vllm", "vllm-nolora")


def engine_rss(engine: Engine) -> int:
    """Resident memory of the engine: this process, plus vLLM's engine core and workers."""
    total = rss_bytes() or 0
    pids = getattr(engine, "process_tree", lambda: [])()
    return total + sum(rss_bytes(pid) or 0 for pid in pids)


def make_engine(variant: str, model: Path) -> Engine:
    if variant.startswith("transformers"):
        from remora_lsp.inference.hf_engine import TransformersEngine

        return TransformersEngine(
            model, merge_adapter=variant.endswith("merged"), max_loras=4, max_cpu_loras=8
        )
    from remora_lsp.inference.vllm_engine import VllmEngine

    return VllmEngine(
        model,
        max_loras=4,
        max_cpu_loras=8,
        max_lora_rank=16,
        max_model_len=2048,
        enable_lora=variant == "vllm",
    )


async def decode_rate(engine: Engine, prompt: str, adapter: str | None, tokens: int) -> float:
    result = await engine.generate(GenerationRequest(prompt, max_tokens=tokens, adapter=adapter))
    steps = len(result.token_ids) - 1
    span = result.total_s - (result.ttft_s or 0)
    return steps / span if steps > 0 and span > 0 else float("nan")


async def one_variant(
    variant: str, model: Path, adapters: list[AdapterRef], repeats: int, tokens: int
) -> dict[str, Any]:
    engine = make_engine(variant, model)
    started = time.perf_counter()
    await engine.start()
    out: dict[str, Any] = {"start_s": round(time.perf_counter() - started, 1)}
    try:
        prompt = prompt_of(engine, 300)
        out["prompt_tokens"] = engine.count_tokens(prompt)
        lora = variant != "vllm-nolora"
        if lora:
            await engine.load_adapter(adapters[0])
        name = adapters[0].name if lora else None

        async def ttft(adapter: str | None) -> list[float]:
            await engine.generate(GenerationRequest(prompt, 1, adapter=adapter))  # warm, switch
            values = []
            for _ in range(repeats):
                r = await engine.generate(GenerationRequest(prompt, 1, adapter=adapter))
                values.append((r.ttft_s or r.total_s) * 1000)
            return values

        out["ttft_base_ms"] = round(median(await ttft(None)), 1)
        out["decode_base_tok_s"] = round(await decode_rate(engine, prompt, None, tokens), 1)
        if lora:
            out["ttft_adapter_ms"] = round(median(await ttft(name)), 1)
            out["decode_adapter_tok_s"] = round(await decode_rate(engine, prompt, name, tokens), 1)
            out["ttft_ratio"] = round(out["ttft_adapter_ms"] / out["ttft_base_ms"], 2)
            # What one user waits for a typical single-line suggestion with the adapter on.
            out["completion16_adapter_ms"] = round(
                out["ttft_adapter_ms"] + 15_000 / out["decode_adapter_tok_s"], 1
            )
            gc.collect()
            before = engine_rss(engine)
            for ref in adapters[1:]:
                await engine.load_adapter(ref)
                await engine.generate(GenerationRequest("x", 1, adapter=ref.name))
            gc.collect()
            grown = engine_rss(engine) - before
            out["rss_per_cached_adapter_bytes"] = max(0, grown // max(1, len(adapters) - 1))
        out["rss_bytes"] = engine_rss(engine)
    finally:
        await engine.close()
    return out


def extrapolate(rank: int = 16, count: int = 100) -> list[dict[str, Any]]:
    rows = []
    for name, config in MODEL_CONFIGS.items():
        params = lora_params(config, rank)
        rows.append(
            {
                "model": name,
                "base_params": config["params"],
                "adapter_params": params,
                "adapter_fp32_bytes": params * 4,
                "adapter_bf16_bytes": params * 2,
                f"{count}_adapters_fp32_bytes": params * 4 * count,
                f"{count}_adapters_bf16_bytes": params * 2 * count,
                "adapter_share_of_base": round(params / config["params"], 4),
            }
        )
    return rows


async def merged_vs_layers(model: Path, adapters: list[AdapterRef], repeats: int) -> dict[str, Any]:
    """One transformers engine, requests interleaved so machine noise hits every variant alike:
    base; adapter as PEFT layers; adapter merged; and switching between two adapters each way."""
    from remora_lsp.inference.hf_engine import TransformersEngine

    engine = TransformersEngine(model, merge_adapter=False, max_loras=4, max_cpu_loras=8)
    await engine.start()
    try:
        prompt = prompt_of(engine, 300)
        a, b = adapters[0], adapters[1]
        await engine.load_adapter(a)
        await engine.load_adapter(b)
        names = ("base", "layers", "merged", "layers_switch", "merged_switch")
        samples: dict[str, list[float]] = {k: [] for k in names}

        async def ttft(adapter: str | None) -> float:
            r = await engine.generate(GenerationRequest(prompt, 1, adapter=adapter))
            return (r.ttft_s or r.total_s) * 1000

        for _ in range(repeats):
            await ttft(None)
            samples["base"].append(await ttft(None))
            await engine.set_merge(False)
            await ttft(a.name)
            samples["layers"].append(await ttft(a.name))
            samples["layers_switch"].append(await ttft(b.name))
            await engine.set_merge(True)
            await ttft(a.name)
            samples["merged"].append(await ttft(a.name))
            samples["merged_switch"].append(await ttft(b.name))
        return {f"{k}_ttft_ms": round(median(v), 1) for k, v in samples.items()}
    finally:
        await engine.close()


async def head_to_head(model: Path, adapter: AdapterRef, repeats: int) -> dict[str, Any]:
    """transformers-merged and vLLM alive together, requests alternating between them, so a
    busy machine slows both alike: TTFT and a whole 16-token suggestion, adapter active."""
    engines = {name: make_engine(name, model) for name in ("transformers-merged", "vllm")}
    for engine in engines.values():
        await engine.start()
    try:
        prompt = prompt_of(engines["vllm"], 300)
        samples: dict[str, dict[str, list[float]]] = {
            name: {"ttft": [], "suggestion": []} for name in engines
        }
        for engine in engines.values():
            await engine.load_adapter(adapter)
            await engine.generate(GenerationRequest(prompt, 4, adapter=adapter.name))
        for _ in range(repeats):
            for name, engine in engines.items():
                r = await engine.generate(GenerationRequest(prompt, 16, adapter=adapter.name))
                samples[name]["ttft"].append((r.ttft_s or 0) * 1000)
                samples[name]["suggestion"].append(r.total_s * 1000)
        return {
            name: {f"{k}_ms": round(median(v), 1) for k, v in values.items()}
            for name, values in samples.items()
        }
    finally:
        for engine in engines.values():
            await engine.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings, _ = load_engine_config()
    workdir = Path(tempfile.mkdtemp(prefix="remora-overhead-"))
    try:
        model, label = base_model(settings, workdir)
        adapters = [
            AdapterRef(f"pack{i}", i + 1, write_adapter(model, workdir / f"pack{i}", seed=i))
            for i in range(args.cached)
        ]
        file_bytes = sum(p.stat().st_size for p in adapters[0].path.iterdir())
        results: dict[str, Any] = {
            "model": label,
            "adapter_rank": 16,
            "adapter_file_bytes": file_bytes,
        }
        for variant in args.backends:
            if variant.startswith("vllm") and not backend_installed("vllm"):
                results[variant] = {"skipped": "vLLM is not installed"}
                continue
            print(f"measuring {variant} ...", file=sys.stderr)
            results[variant] = await one_variant(
                variant, model, adapters, args.repeats, args.tokens
            )
        if any(v.startswith("transformers") for v in args.backends):
            print("measuring transformers merged vs adapter layers, interleaved", file=sys.stderr)
            results["transformers_interleaved"] = await merged_vs_layers(
                model, adapters, args.repeats
            )
        if {"transformers-merged", "vllm"} <= set(args.backends) and backend_installed("vllm"):
            print("measuring transformers-merged against vllm, alternating", file=sys.stderr)
            results["head_to_head"] = await head_to_head(model, adapters[0], args.repeats)
        results["extrapolated_rank16"] = extrapolate()
        return results
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB" if n < 1e9 else f"{n / 1e9:,.2f} GB"


def report(results: dict[str, Any]) -> None:
    measured = {k: v for k, v in results.items() if k in VARIANTS and "skipped" not in v}
    print(
        f"\nmodel {results['model']}; one rank-16 adapter on 7 projections = "
        f"{mb(results['adapter_file_bytes'])} on disk"
    )
    if measured:
        best_base = min(v["ttft_base_ms"] for v in measured.values())
        rows = []
        for name, v in measured.items():
            adapter = v.get("ttft_adapter_ms")
            rows.append(
                [
                    name,
                    v["start_s"],
                    v["ttft_base_ms"],
                    adapter if adapter is not None else "-",
                    f"{v['ttft_ratio']:.2f}x" if "ttft_ratio" in v else "-",
                    f"{adapter / best_base:.2f}x" if adapter is not None else "-",
                    v["decode_base_tok_s"],
                    v.get("decode_adapter_tok_s", "-"),
                    mb(v["rss_per_cached_adapter_bytes"])
                    if "rss_per_cached_adapter_bytes" in v
                    else "-",
                    mb(v["rss_bytes"]),
                    v.get("completion16_adapter_ms", "-"),
                ]
            )
        table(
            f"~{next(iter(measured.values()))['prompt_tokens']}-token prefix (median TTFT)",
            [
                "backend",
                "start s",
                "TTFT base ms",
                "TTFT adapter ms",
                "adapter/base",
                "adapter/best base",
                "decode base tok/s",
                "decode adapter tok/s",
                "RSS per cached adapter",
                "RSS",
                "16-token suggestion ms",
            ],
            rows,
        )
    inter = results.get("transformers_interleaved")
    if inter:
        base = inter["base_ttft_ms"]
        table(
            "transformers, one engine, requests interleaved (median TTFT)",
            ["request", "ms", "vs base"],
            [
                [k.removesuffix("_ttft_ms").replace("_", " "), v, f"{v / base:.2f}x"]
                for k, v in inter.items()
            ],
        )
    duel = results.get("head_to_head")
    if duel:
        ref = duel["transformers-merged"]
        table(
            "both engines alive, requests alternating, adapter active (median)",
            ["backend", "TTFT ms", "16-token suggestion ms", "suggestion vs transformers-merged"],
            [
                [
                    n,
                    v["ttft_ms"],
                    v["suggestion_ms"],
                    f"{v['suggestion_ms'] / ref['suggestion_ms']:.2f}x",
                ]
                for n, v in duel.items()
            ],
        )
    timed = {
        k: v["completion16_adapter_ms"]
        for k, v in measured.items()
        if "completion16_adapter_ms" in v
    }
    if timed:
        fastest = min(timed, key=lambda k: timed[k])
        print(
            f"fastest 16-token suggestion with an adapter active: {fastest} "
            f"({timed[fastest]:.0f} ms; TTFT + 15 tokens at the measured decode rate)"
        )
        if "vllm-nolora" in measured and "vllm" in measured:
            lora_cost = measured["vllm"]["ttft_base_ms"] / measured["vllm-nolora"]["ttft_base_ms"]
            print(f"enabling LoRA in vLLM multiplies its base TTFT by {lora_cost:.2f}x")
    for name, v in results.items():
        if name in VARIANTS and "skipped" in v:
            print(f"{name}: skipped ({v['skipped']})")
    rows = [
        [
            r["model"],
            f"{r['adapter_params'] / 1e6:.1f} M",
            mb(r["adapter_fp32_bytes"]),
            mb(r["100_adapters_fp32_bytes"]),
            mb(r["100_adapters_bf16_bytes"]),
            f"{100 * r['adapter_share_of_base']:.2f} %",
        ]
        for r in results["extrapolated_rank16"]
    ]
    table(
        "100 cached adapters, rank 16 on q/k/v/o/gate/up/down (from public model configs)",
        [
            "model",
            "params/adapter",
            "one (fp32)",
            "100 (fp32)",
            "100 (bf16)",
            "adapter/base params",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no vllm-nolora")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--backends", help=f"comma-separated subset of {','.join(VARIANTS)}")
    args = parser.parse_args()
    chosen = (
        args.backends.split(",")
        if args.backends
        else list(VARIANTS[:3] if args.quick else VARIANTS)
    )
    unknown = set(chosen) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    args.backends = chosen
    args.repeats = 3 if args.quick else 9
    args.tokens = 16 if args.quick else 48
    args.cached = 3 if args.quick else 5
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = asyncio.run(run(args))
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
