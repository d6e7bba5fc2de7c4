"""The README's main job: `remora demo` runs the scripted editor session and succeeds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "remora_lsp", "demo", "--home", str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=240,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "installed fastapi@0.1.0 (signed, verified)" in out
    assert "installed pack:pydantic@^0 from it" in out.replace("\n", " ")
    assert "Packs: fastapi ✓ pydantic ✓" in out
    assert "grace period" in out
    assert "`request: Request` — inferred from usages" in out  # the fastapi pack's index
    assert "code action: Add type hint `request: Request`" in out
    assert "template: fastapi/router, applied: True" in out
    assert "from app.models import User" in out
    assert "demo finished" in out
