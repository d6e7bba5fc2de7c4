"""Assembles the trained parts into a pack folder and writes the (signed) ``.remorapack``.

The pack folder gets the generation and transform adapters (PEFT, safetensors), the fine-tuned
search embedding under ``embeddings/model/``, the Semantic layer's index built with that model
(code, documentation and usage windows; :func:`remora_lsp.retrieval.build.build_embeddings`),
the templates and tools of the pack source folder (``--pack-dir``), the library's licence, a
README that is the run report, and a manifest with the triggers (the distribution's top-level
modules unless overridden), the base model's identity, the card and every file's digest.
:func:`remora_lsp.packs.archive.build_pack` then writes the archive atomically, signed when a
key is given, and the archive is read back and verified before the run is called done.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from remora_lsp.packs.manifest import FORMAT_VERSION, MANIFEST_NAME, load_manifest
from remora_lsp.training.errors import StageError
from remora_lsp.training.options import TrainOptions
from remora_lsp.training.report import card, report_markdown
from remora_lsp.training.types import DocSection, RepoScan, Source

__all__ = ["assemble_pack", "pack_name", "python_triggers"]

TARGET_MODULES_FILE = "adapter_config.json"
_NAME_BAD = re.compile(r"[^a-z0-9_-]+")


def pack_name(text: str) -> str:
    """A valid pack name from a distribution or folder name (``Foo.Bar`` → ``foo-bar``)."""
    name = _NAME_BAD.sub("-", text.lower()).strip("-_")[:64]
    return name or "pack"


def python_triggers(source: Source, scan: RepoScan) -> list[str]:
    """Import names that should activate the pack: the distribution's top-level modules, or
    for a folder the top-level packages/modules of its non-test code (``src/`` layouts too)."""
    if source.packages:
        return sorted(set(source.packages))
    tests = set(scan.test_files)
    found: set[str] = set()
    for rel in scan.files:
        if rel in tests:
            continue
        parts = rel.split("/")
        if parts[0] == "src" and len(parts) > 1:
            parts = parts[1:]
        head = parts[0].removesuffix(".py") if len(parts) == 1 else parts[0]
        if (
            head.isidentifier()
            and head not in {"setup", "conftest", "noxfile", "docs"}
            and (len(parts) == 1 or (scan.root / rel).parent.joinpath("__init__.py").exists())
        ):
            found.add(head)
    return sorted(found)


def _pack_source(opts: TrainOptions) -> dict[str, Any]:
    if opts.pack_dir is None:
        return {}
    if not (opts.pack_dir / MANIFEST_NAME).is_file():
        raise StageError(f"--pack-dir {opts.pack_dir} has no {MANIFEST_NAME}")
    data = load_manifest(opts.pack_dir).to_data()
    for key in ("files", "signature", "embeddings", "adapters", "card"):
        data.pop(key, None)
    return data


def _copy_tree(src: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, symlinks=False)


def _adapter_entry(role: str, folder: Path, identity: Mapping[str, str]) -> dict[str, Any]:
    config = json.loads((folder / TARGET_MODULES_FILE).read_text("utf-8"))
    targets = config.get("target_modules") or []
    if isinstance(targets, str):
        targets = [targets]
    return {
        "role": role,
        "path": f"adapters/{role}",
        "base_model": {"id": identity["id"], "config_sha256": identity["config_sha256"]},
        "rank": int(config.get("r", 16)),
        "alpha": float(config.get("lora_alpha", 32)),
        "target_modules": sorted(targets),
    }


def _docs_folder(sections: Sequence[DocSection], folder: Path) -> Path | None:
    """Write the documentation sections as Markdown files the index builder can chunk."""
    if not sections:
        return None
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    by_source: dict[str, list[DocSection]] = {}
    for section in sections:
        by_source.setdefault(section.source, []).append(section)
    for i, (source, items) in enumerate(sorted(by_source.items())):
        lines = [f"<!-- {source} -->"]
        for section in items:
            depth = min(6, max(1, len(section.headings)))
            lines += [
                f"{'#' * depth} {' > '.join(section.headings) or source}",
                "",
                section.text,
                "",
            ]
        (folder / f"{i:05d}.md").write_text("\n".join(lines), encoding="utf-8")
    return folder


def _index_sources(source: Source, scan: RepoScan) -> list[Path]:
    if source.packages:
        out = []
        for package in source.packages:
            for candidate in (source.root / package, source.root / f"{package}.py"):
                if candidate.exists():
                    out.append(candidate)
        return out
    tests = set(scan.test_files)
    return [scan.root / rel for rel in scan.files if rel not in tests]


def _sizes(folder: Path) -> dict[str, int]:
    parts: dict[str, int] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(folder).as_posix()
        bits = rel.split("/")
        part = (
            "/".join(bits[:2])
            if bits[0] in ("adapters", "embeddings") and len(bits) > 2
            else (bits[0] if len(bits) > 1 else "manifest, README, LICENSE")
        )
        parts[part] = parts.get(part, 0) + path.stat().st_size
    return parts


def _check_written(path: Path, sign_key: Path | None) -> None:
    """Read the archive back: every digest, and the signature against the signing key."""
    from remora_lsp.packs.archive import PackArchive
    from remora_lsp.packs.signing import load_private_key, signature_matches

    with PackArchive(path) as archive:
        archive.verify_contents()
        if sign_key is not None and not signature_matches(
            archive.manifest, load_private_key(sign_key).public_key()
        ):
            raise StageError(f"{path}: the signature written does not verify")


def assemble_pack(
    *,
    opts: TrainOptions,
    source: Source,
    scan: RepoScan,
    sections: Sequence[DocSection],
    identity: Mapping[str, str],
    embed_dir: Path,
    gen_dir: Path,
    tr_dir: Path,
    report: dict[str, Any],
    work: Path,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the pack folder in ``work/pack`` and write ``opts.out``; return the pack's facts."""
    from remora_lsp.packs.archive import build_pack
    from remora_lsp.retrieval.build import build_embeddings
    from remora_lsp.retrieval.embedding import MODEL_CARD, load_embedder

    base = _pack_source(opts)
    name = opts.name or base.get("name") or pack_name(source.name)
    version = opts.version or base.get("version") or "0.1.0"
    stage = work / "pack"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)

    # Adapters.
    adapters = []
    for role, folder in (("generation", gen_dir), ("transform", tr_dir)):
        if not (folder / TARGET_MODULES_FILE).is_file():
            raise StageError(f"the {role} adapter is missing from {folder}")
        _copy_tree(folder, stage / "adapters" / role)
        adapters.append(_adapter_entry(role, folder, identity))

    # Embedding model + index.
    model_dest = stage / "embeddings" / "model"
    _copy_tree(embed_dir, model_dest)
    card_path = model_dest / MODEL_CARD
    model_card = json.loads(card_path.read_text("utf-8")) if card_path.is_file() else {}
    model_card["model_id"] = f"remora-pack/{name}@{version}/search"
    card_path.write_text(json.dumps(model_card, indent=2) + "\n", encoding="utf-8")
    docs = _docs_folder(sections, work / "docs-md")
    sources = _index_sources(source, scan) + ([docs] if docs else [])
    library = (source.packages or (source.name,))[0]

    def step(stage_name: str, done: int, total: int) -> None:
        if progress is not None:
            progress(done, total)

    built = build_embeddings(
        sources,
        stage / "embeddings",
        library=library,
        search_embedder=load_embedder(model_dest),
        progress=step,
    )
    if log is not None:
        log(f"index: {built.collections} chunks with {built.model}")

    # Templates, licence, README.
    templates: list[str] = []
    if opts.pack_dir is not None and (opts.pack_dir / "templates").is_dir():
        _copy_tree(opts.pack_dir / "templates", stage / "templates")
        templates = sorted(
            p.relative_to(stage).as_posix() for p in (stage / "templates").rglob("*.pym")
        )
    for rel in scan.license_files or source.license_files:
        licence = scan.root / rel
        if licence.is_file():
            shutil.copyfile(licence, stage / "LICENSE")
            break
    (stage / "README.md").write_text(report_markdown(report), encoding="utf-8")

    # Manifest.
    library_name = source.name if source.kind == "distribution" else library
    data: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "name": name,
        "version": version,
        "description": base.get("description")
        or f"{library_name}: completions, search and docstrings trained on its code and docs.",
        "license": base.get("license") or source.license or scan.license or "",
        "library": base.get("library")
        or {
            "name": library_name,
            "ecosystem": "pypi",
            "versions": f">={source.version}" if source.version else "",
        },
        "triggers": {
            "python_imports": list(opts.triggers)
            or list((base.get("triggers") or {}).get("python_imports") or [])
            or python_triggers(source, scan)
        },
        "adapters": adapters,
        "embeddings": built.manifest_block(),
        "templates": templates,
        "tools": base.get("tools", []),
        "card": card(report),
    }
    if not data["triggers"]["python_imports"]:
        raise StageError(
            "no import names found to trigger the pack; pass --triggers NAME[,NAME...]"
        )
    data["license"] = str(data["license"])[:200]
    (stage / MANIFEST_NAME).write_text(
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    manifest = build_pack(stage, opts.out, sign_key=opts.sign_key)
    _check_written(opts.out, opts.sign_key)
    digest = hashlib.sha256(opts.out.read_bytes()).hexdigest()
    return {
        "name": manifest.name,
        "version": manifest.version,
        "file": str(opts.out),
        "bytes": opts.out.stat().st_size,
        "sha256": digest,
        "signed": manifest.signed,
        "triggers": list(manifest.triggers.python_imports),
        "parts": _sizes(stage),
    }
