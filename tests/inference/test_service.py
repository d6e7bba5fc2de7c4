"""GenerativeService: engine lifecycle, pack adapters and the routing policy.

Most tests drive it with the scripted FakeEngine (milliseconds); the last ones run it with
the real transformers engine on the tiny model, including a crash and a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from remora_lsp.core.documents import DocumentStore
from remora_lsp.core.imports import detect_imports
from remora_lsp.inference.config import EngineConfig
from remora_lsp.inference.engine import Engine, GenerationRequest
from remora_lsp.inference.errors import EngineUnavailableError, ModelNotFoundError
from remora_lsp.inference.service import GenerativeService
from tests.inference.fakes import FakeEngine
from tests.inference.packs import make_pack
from tests.inference.tiny import TinyModel

SHA = "ab" * 32


def config(tmp_path: Path, **extra: object) -> EngineConfig:
    values: dict[str, object] = {
        "remora_home": tmp_path,
        "restart_backoff_s": 0.05,
        "restart_backoff_max_s": 0.2,
    }
    values.update(extra)
    return EngineConfig(**values)  # type: ignore[arg-type]


def factory(*engines: FakeEngine) -> Callable[[], Engine]:
    queue = list(engines)

    def make() -> Engine:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return make


async def in_thread(service: GenerativeService, pack):  # type: ignore[no-untyped-def]
    """pack_loaded runs in a worker thread in the server, so here too."""
    return await asyncio.to_thread(service.pack_loaded, pack)


@pytest.fixture
def adapter_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"r": 8}')
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    return folder


async def test_adapters_load_once_the_engine_is_up(tmp_path: Path, adapter_dir: Path) -> None:
    fake = FakeEngine(start_delay=0.2, model_id="smollm2-135m", config_sha256=SHA)
    changes: list[int] = []
    service = GenerativeService(
        config(tmp_path), engine_factory=factory(fake), on_change=lambda: changes.append(1)
    )
    await service.start()
    pack = make_pack(
        tmp_path / "packs", "fastapi", adapter_dir, base_id="smollm2-135m", base_sha=SHA
    )
    assert await in_thread(service, pack) is None
    assert service.status_fields("fastapi")["adapter"] == "loading"
    assert service.ready_engine() is None  # completions answer empty meanwhile
    assert await service.wait_ready(5)
    for _ in range(50):
        if service.status_fields("fastapi")["adapter"] == "cached":
            break
        await asyncio.sleep(0.01)
    assert service.status_fields("fastapi") == {"adapter": "cached", "adapterReason": None}
    await fake.generate(GenerationRequest("x", adapter="fastapi"))
    assert service.status_fields("fastapi")["adapter"] == "resident"
    assert changes
    # a pack activated while the engine runs is loaded before pack_loaded returns
    other = make_pack(
        tmp_path / "packs", "pydantic", adapter_dir, base_id="smollm2-135m", base_sha=SHA
    )
    assert await in_thread(service, other) is None
    assert service.status_fields("pydantic")["adapter"] == "cached"
    # deactivation releases: status gone, the engine may evict it first
    service.pack_unloaded("pydantic")
    assert service.status_fields("pydantic") == {}
    assert fake.slots.is_released("pydantic")
    doctor = service.doctor()
    assert doctor["state"] == "ready" and doctor["model"]["id"] == "smollm2-135m"
    assert doctor["packs"]["fastapi"]["adapter"] == "resident"
    await service.stop()


@pytest.mark.parametrize(
    ("base_id", "base_sha", "note"),
    [
        (
            "codegemma-2b",
            SHA,
            "adapter skipped: trained for codegemma-2b, engine runs smollm2-135m",
        ),
        (
            "smollm2-135m",
            "cd" * 32,
            "adapter skipped: trained for smollm2-135m (config cdcdcdcdcdcd), engine runs "
            "smollm2-135m (config abababababab)",
        ),
    ],
)
async def test_incompatible_adapter_is_skipped_with_a_note(
    tmp_path: Path, adapter_dir: Path, base_id: str, base_sha: str, note: str
) -> None:
    fake = FakeEngine(model_id="smollm2-135m", config_sha256=SHA)
    service = GenerativeService(config(tmp_path), engine_factory=factory(fake))
    await service.start()
    assert await service.wait_ready(5)
    pack = make_pack(tmp_path / "packs", "fastapi", adapter_dir, base_id=base_id, base_sha=base_sha)
    assert await in_thread(service, pack) == note
    assert service.status_fields("fastapi") == {"adapter": "skipped", "adapterReason": note}
    assert fake.loaded == []
    await service.stop()


async def test_rank_above_the_limit_is_skipped(tmp_path: Path, adapter_dir: Path) -> None:
    fake = FakeEngine(model_id="m", config_sha256=SHA)
    service = GenerativeService(config(tmp_path, max_lora_rank=8), engine_factory=factory(fake))
    await service.start()
    await service.wait_ready(5)
    pack = make_pack(tmp_path / "p", "big", adapter_dir, base_id="m", base_sha=SHA, rank=64)
    assert "rank 64 is above max_lora_rank 8" in (await in_thread(service, pack) or "")
    await service.stop()


async def test_a_pack_without_adapter_adds_no_status(tmp_path: Path) -> None:
    service = GenerativeService(config(tmp_path), engine_factory=factory(FakeEngine()))
    await service.start()
    pack = make_pack(tmp_path / "p", "plain", None, base_id="x", base_sha=SHA)
    assert await in_thread(service, pack) is None
    assert service.status_fields("plain") == {}
    await service.stop()


async def test_a_broken_adapter_is_an_error_and_the_pack_stays(
    tmp_path: Path, adapter_dir: Path
) -> None:
    fake = FakeEngine(model_id="m", config_sha256=SHA)
    service = GenerativeService(config(tmp_path), engine_factory=factory(fake))
    await service.start()
    await service.wait_ready(5)
    pack = make_pack(tmp_path / "p", "broken", adapter_dir, base_id="m", base_sha=SHA)
    for item in (pack.path / "adapters").rglob("*"):
        if item.is_file():
            item.unlink()
    (pack.path / "adapters" / "generation").rmdir()
    note = await in_thread(service, pack)
    assert note is not None and note.startswith("adapter error:")
    assert service.status_fields("broken")["adapter"] == "error"
    await service.stop()


async def test_start_failures_back_off_and_recover(tmp_path: Path, adapter_dir: Path) -> None:
    bad1, bad2 = FakeEngine(fail_start="no backend"), FakeEngine(fail_start="no backend")
    good = FakeEngine(model_id="m", config_sha256=SHA)
    service = GenerativeService(config(tmp_path), engine_factory=factory(bad1, bad2, good))
    pack = make_pack(tmp_path / "p", "fastapi", adapter_dir, base_id="m", base_sha=SHA)
    await service.start()
    await in_thread(service, pack)
    assert await service.wait_ready(5)
    assert service.restarts == 2
    for _ in range(50):
        if service.status_fields("fastapi")["adapter"] == "cached":
            break
        await asyncio.sleep(0.01)
    assert service.status_fields("fastapi")["adapter"] == "cached"
    await service.stop()


async def test_crash_restarts_and_reloads_adapters(tmp_path: Path, adapter_dir: Path) -> None:
    first, second = (
        FakeEngine(model_id="m", config_sha256=SHA),
        FakeEngine(model_id="m", config_sha256=SHA),
    )
    service = GenerativeService(
        config(tmp_path), engine_factory=factory(first, second), monitor_interval_s=0.02
    )
    await service.start()
    await service.wait_ready(5)
    await in_thread(
        service, make_pack(tmp_path / "p", "fastapi", adapter_dir, base_id="m", base_sha=SHA)
    )
    first.crash()
    for _ in range(100):
        if service.state != "ready":
            break
        await asyncio.sleep(0.01)
    assert service.ready_engine() is None
    assert service.status_fields("fastapi")["adapter"] in {"loading", "cached"}
    assert await service.wait_ready(5)
    for _ in range(100):
        if "fastapi" in second.loaded:
            break
        await asyncio.sleep(0.01)
    assert service.ready_engine() is second and "fastapi" in second.loaded
    assert service.restarts == 1
    await service.stop()


async def test_a_missing_model_fails_with_the_fix(tmp_path: Path, adapter_dir: Path) -> None:
    def missing() -> Engine:
        raise ModelNotFoundError(
            "the base model 'smollm2-135m' is not installed; run `remora models fetch`"
        )

    service = GenerativeService(config(tmp_path), engine_factory=missing)
    await service.start()
    await in_thread(
        service, make_pack(tmp_path / "p", "fastapi", adapter_dir, base_id="m", base_sha=SHA)
    )
    for _ in range(100):
        if service.state == "failed":
            break
        await asyncio.sleep(0.01)
    assert service.state == "failed" and "remora models fetch" in (service.reason or "")
    status = service.status_fields("fastapi")
    assert status["adapter"] == "error" and "remora models fetch" in status["adapterReason"]
    await service.stop()


def test_default_factory_without_a_model(tmp_path: Path) -> None:
    service = GenerativeService(config(tmp_path, engine="transformers"))
    with pytest.raises(ModelNotFoundError, match="remora models fetch"):
        service._default_factory()
    with pytest.raises((ModelNotFoundError, EngineUnavailableError)):
        GenerativeService(config(tmp_path, engine="vllm"))._default_factory()


ROUTING = [
    # the name used right before the cursor wins
    ("import pandas as pd\nimport numpy as np\n\nx = np.zeros(3)\ny = pd.█", "pandas"),
    ("import pandas as pd\nimport numpy as np\n\ny = pd.read()\nx = np.█", "numpy"),
    # nothing used near the cursor: the most specific trigger
    ("import fastapi\nfrom fastapi.security import OAuth2\n\n█", "fastapi-security"),
    # equally specific: the first import in the file
    ("import numpy\nimport pandas\n\n█", "numpy"),
    # no active pack matches: the base model
    ("import os\n\n█", None),
]


@pytest.mark.parametrize(("source", "expected"), ROUTING)
async def test_adapter_routing_policy(
    tmp_path: Path, adapter_dir: Path, source: str, expected: str | None
) -> None:
    fake = FakeEngine(model_id="m", config_sha256=SHA)
    service = GenerativeService(config(tmp_path), engine_factory=factory(fake))
    await service.start()
    await service.wait_ready(5)
    for name, triggers in [
        ("pandas", ("pandas",)),
        ("numpy", ("numpy",)),
        ("fastapi", ("fastapi",)),
        ("fastapi-security", ("fastapi.security",)),
    ]:
        await in_thread(
            service,
            make_pack(
                tmp_path / "p", name, adapter_dir, base_id="m", base_sha=SHA, triggers=triggers
            ),
        )
    text = source.replace("█", "")
    offset = len(source.split("█")[0].encode())
    doc = DocumentStore().open("file:///a.py", "python", 1, text)
    assert doc.tree is not None
    imports = detect_imports(doc.tree, doc.text, "python")
    assert service.adapter_for(imports, doc.text, offset) == expected
    await service.stop()


async def test_real_transformers_engine_crash_and_restart(tmp_path: Path, tiny: TinyModel) -> None:
    from remora_lsp.inference.hf_engine import TransformersEngine

    engines: list[TransformersEngine] = []

    def make() -> Engine:
        engine = TransformersEngine(tiny.path, max_loras=2, max_cpu_loras=2)
        engines.append(engine)
        return engine

    service = GenerativeService(config(tmp_path), engine_factory=make, monitor_interval_s=0.05)
    await service.start()
    pack = make_pack(
        tmp_path / "p", "json", tiny.adapters["alpha"], base_id="tiny-llama", base_sha=tiny.path
    )
    await in_thread(service, pack)
    assert await service.wait_ready(60)
    for _ in range(200):
        if service.status_fields("json").get("adapter") == "cached":
            break
        await asyncio.sleep(0.02)
    engine = service.ready_engine()
    assert engine is not None
    before = await engine.generate(GenerationRequest("def f(", 8, adapter="json"))
    assert service.status_fields("json")["adapter"] == "resident"

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated crash")

    engines[0]._model.forward = boom
    with pytest.raises(Exception, match="simulated"):
        await engine.generate(GenerationRequest("def f(", 8, adapter="json"))
    service.engine_failed()
    assert await service.wait_ready(60)
    for _ in range(200):
        if (
            service.ready_engine() is not None
            and service.status_fields("json")["adapter"] == "cached"
        ):
            break
        await asyncio.sleep(0.02)
    assert len(engines) == 2 and service.restarts == 1
    again = await service.ready_engine().generate(GenerationRequest("def f(", 8, adapter="json"))  # type: ignore[union-attr]
    assert again.token_ids == before.token_ids
    await service.stop()
