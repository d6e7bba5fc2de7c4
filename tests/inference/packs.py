"""Pack folders carrying a real generation adapter, as the session hands them to listeners."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from remora_lsp.packs.compat import config_fingerprint
from remora_lsp.packs.manifest import Manifest
from remora_lsp.packs.verify import VerifiedPack


def make_pack(
    root: Path,
    name: str,
    adapter_dir: Path | None,
    *,
    base_id: str,
    base_sha: str | Path,
    triggers: tuple[str, ...] = (),
    rank: int = 8,
) -> VerifiedPack:
    """A verified development pack ``name`` whose generation adapter is a copy of
    ``adapter_dir`` (None: a pack without adapter). ``base_sha`` may be a model folder."""
    folder = root / name / "1.0.0"
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "format": 1,
        "name": name,
        "version": "1.0.0",
        "triggers": {"python_imports": list(triggers or (name,))},
    }
    if adapter_dir is not None:
        target = folder / "adapters" / "generation"
        shutil.copytree(adapter_dir, target, dirs_exist_ok=True)
        sha = config_fingerprint(base_sha) if isinstance(base_sha, Path) else base_sha
        data["adapters"] = [
            {
                "role": "generation",
                "path": "adapters/generation",
                "base_model": {"id": base_id, "config_sha256": sha},
                "rank": rank,
                "alpha": 2 * rank,
                "target_modules": ["q_proj", "v_proj"],
            }
        ]
    return VerifiedPack(folder, Manifest.model_validate(data), None)
