"""``remora index build`` and ``remora search-index`` through a typer app built here (the
commands register themselves with ``register(app)``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from remora_lsp.cli.search import register
from tests.retrieval.helpers import make_pack


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Test root."""

    register(app)
    return app


SOURCE = {
    "shop/__init__.py": "",
    "shop/cart.py": (
        "class Cart:\n"
        '    """A shopping cart holding items."""\n'
        "    def add(self, item: str, count: int = 1) -> None:\n"
        '        """Put an item into the cart."""\n'
        "        self.items.append((item, count))\n\n"
        "def checkout(cart: Cart) -> float:\n"
        '    """Pay for everything in the cart."""\n'
        "    cart.add('receipt')\n    return total(cart)\n"
    ),
    "docs/guide.md": "# Guide\n\nHow to add items to a cart and check out quickly.\n",
}


def test_index_build_and_info(app: typer.Typer, tmp_path: Path) -> None:
    for rel, text in SOURCE.items():
        (tmp_path / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / rel).write_text(text)
    out = tmp_path / "embeddings"
    runner = CliRunner()
    result = runner.invoke(
        app, ["index", "build", str(tmp_path / "src" / "shop"), str(tmp_path / "src" / "docs"),
              "-o", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["collections"]["search"] == 4  # class, method, function, doc section
    assert report["collections"]["usages"] >= 2
    block = report["embeddings"]
    assert block["model"] == "sentence-transformers/all-MiniLM-L6-v2" and block["dims"] == 384
    assert "embeddings/search/vectors.safetensors" in block["files"]
    info = runner.invoke(app, ["index", "info", str(out)])
    assert info.exit_code == 0 and "search: 4 chunks" in info.output.replace("/search:", "search:")
    missing = runner.invoke(app, ["index", "build", str(tmp_path / "nope"), "-o", str(out)])
    assert missing.exit_code != 0


def test_search_index_over_installed_packs(
    app: typer.Typer, tmp_path: Path, fastapi_pack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    folder = home / "packs" / "fastapi" / "0.1.0"
    shutil.copytree(fastapi_pack / "embeddings", folder / "embeddings")
    make_pack(folder, "fastapi", ["fastapi"], None)
    monkeypatch.setenv("REMORA_HOME", str(home))
    monkeypatch.setenv("REMORA_ALLOW_UNSIGNED", "1")
    runner = CliRunner()
    result = runner.invoke(app, ["search-index", "mount a sub application", "--json", "-k", "3"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and all(h["pack"] == "fastapi" for h in hits)
    assert {"score", "kind", "label", "file", "start_line", "text"} <= hits[0].keys()
    table = runner.invoke(app, ["search-index", "dependency", "--kind", "function"])
    assert table.exit_code == 0 and "fastapi" in table.output
    unknown = runner.invoke(app, ["search-index", "x", "--pack", "nope"])
    assert unknown.exit_code != 0 and "nope" in unknown.output
    monkeypatch.setenv("REMORA_ALLOW_UNSIGNED", "0")
    refused = runner.invoke(app, ["search-index", "router"])
    assert refused.exit_code == 0 and "unsigned" in refused.output
