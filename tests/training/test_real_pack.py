"""One real pack, end to end, with a reduced budget: `remora train click` on the real base model.

This is the CI gate of the training pipeline: the `remora-train` command trains the real
SmolLM2-135M (installed by the set-up step with `remora models fetch`) and the real default
embedding model on the installed `click` distribution, with the `packs/click` pack source, and
the test fails unless the report shows the adapter's held-out perplexity on click's own code
below the base model's. The pack must then verify and install into a fresh store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remora_lsp.inference.config import load_engine_config
from remora_lsp.inference.errors import ModelNotFoundError
from remora_lsp.inference.models import resolve_model

ROOT = Path(__file__).parents[2]


def _base_model() -> Path:
    config, _ = load_engine_config(None, {"model": "smollm2-135m"})
    try:
        return resolve_model(config)
    except ModelNotFoundError as exc:  # the set-up step installs it; say so plainly
        pytest.fail(f"{exc} (scripts/test.sh runs `remora models fetch` before the tests)")


def test_click_pack_adapter_beats_base_on_held_out_click(tmp_path: Path) -> None:
    model = _base_model()
    out = tmp_path / "click.remorapack"
    report_dir = tmp_path / "report"
    cmd = [
        str(Path(sys.executable).with_name("remora-train")), "click",
        "--pack-dir", str(ROOT / "packs" / "click"),
        "--out", str(out), "--report-dir", str(report_dir),
        "--base-model", str(model),
        "--time-budget", "10m", "--max-steps", "40", "--seq-len", "256",
        "--eval-tokens", "4000", "--next-line-samples", "20", "--rouge-samples", "6",
        "--other", "jinja2",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((report_dir / "report.json").read_text())
    gen = report["generation"]
    assert gen["heldout_ppl_adapter"] < gen["heldout_ppl_base"], gen
    assert report["pack"]["triggers"] == ["click"]
    for dims in ("384", "256", "128", "64"):
        assert report["embedding"]["mrr_at_10"][dims]["tuned"] > 0

    home = tmp_path / "home"
    installed = subprocess.run(
        [str(Path(sys.executable).with_name("remora")), "install", str(out), "--allow-unsigned"],
        capture_output=True, text=True, env={**env, "REMORA_HOME": str(home)}, timeout=600,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    assert (home / "packs" / "click").is_dir()
