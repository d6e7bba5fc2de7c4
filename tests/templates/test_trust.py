"""A pack's .pym runs only when the pack is trusted, and never writes into the pack folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from remora_lsp.packs.manifest import parse_manifest
from remora_lsp.packs.verify import VerifiedPack
from remora_lsp.templates.catalog import TemplateCatalog
from remora_lsp.templates.errors import UntrustedTemplateError
from remora_lsp.templates.pym import load_pack_templates


def make_pack(root: Path, pym: str, signed_by: str | None) -> VerifiedPack:
    folder = root / "pack"
    (folder / "templates").mkdir(parents=True)
    text = "format: 1\nname: demo\nversion: 1.0.0\ntemplates: [templates/a.pym]\n"
    (folder / "manifest.yaml").write_text(text)
    (folder / "templates" / "a.pym").write_text(pym)
    return VerifiedPack(folder, parse_manifest(text), signed_by)


def writer(marker: Path) -> str:
    """A .pym that writes a marker file the moment it runs, by any means it has."""
    return f"open({str(marker)!r}, 'w').write('ran')\nTEMPLATE = 'x = 1\\n'\nOUTPUT = 'x.py'\n"


def test_untrusted_pack_is_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    pack = make_pack(tmp_path, writer(marker), signed_by=None)
    with pytest.raises(UntrustedTemplateError, match="not executed"):
        load_pack_templates(pack)
    catalog = TemplateCatalog.from_packs([pack])
    assert len(catalog) == 0
    assert isinstance(catalog.errors[0], UntrustedTemplateError)
    assert not marker.exists()


def test_untrusted_pack_does_not_run_even_harmless_code(tmp_path: Path) -> None:
    # If the code ran, the load would fail inside the sandbox instead of being refused upfront.
    pack = make_pack(tmp_path, "raise SystemExit(3)\n", signed_by=None)
    with pytest.raises(UntrustedTemplateError):
        load_pack_templates(pack)


def test_trusted_pack_runs_but_only_inside_the_sandbox(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    pack = make_pack(tmp_path, writer(marker), signed_by="team")
    specs, errors = load_pack_templates(pack)
    assert specs == []
    assert "is refused" in str(errors[0])
    assert not marker.exists()


def test_dev_flag_runs_an_unsigned_pack_in_the_sandbox(tmp_path: Path) -> None:
    pack = make_pack(
        tmp_path,
        "TEMPLATE = 'x = {{ n }}\\n'\nOUTPUT = 'x.py'\nPARAMS = [{'name': 'n', 'type': 'int'}]\n",
        signed_by=None,
    )
    catalog = TemplateCatalog.from_packs([pack], allow_untrusted_templates=True)
    assert catalog.render_template("demo/a", {"n": 3})["files"] == [
        {"path": "x.py", "content": "x = 3\n"}
    ]


def test_loading_leaves_the_pack_folder_untouched(tmp_path: Path) -> None:
    pack = make_pack(tmp_path, "import re\nTEMPLATE = ''\nOUTPUT = 'x.py'\n", signed_by="team")
    before = sorted(p.relative_to(pack.path) for p in pack.path.rglob("*"))
    specs, errors = load_pack_templates(pack)
    assert errors == [] and len(specs) == 1
    assert sorted(p.relative_to(pack.path) for p in pack.path.rglob("*")) == before
