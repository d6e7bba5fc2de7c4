"""Building archives: digests, determinism, layout rules, compression choice, re-signing."""

from __future__ import annotations

import ast
import io
import shutil
import zipfile
from pathlib import Path

import pytest

from remora_lsp.errors import ArchiveError, DigestError
from remora_lsp.packs import signing
from remora_lsp.packs.archive import (
    PackArchive,
    build_pack,
    manifest_yaml,
    sign_archive,
    verify_archive,
)
from remora_lsp.packs.manifest import Manifest, load_manifest, parse_manifest

from .conftest import Home
from .factory import flip_byte, good_files, manifest_data, write

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted(p for p in (REPO / "packs").iterdir() if (p / "manifest.yaml").is_file())


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    data = manifest_data(good_files())
    data.pop("files")
    data.pop("templates")
    write(src / "manifest.yaml", manifest_yaml(Manifest.model_validate(data)))
    for rel, blob in good_files().items():
        write(src / rel, blob)
    return src


def test_build_pins_every_file_and_is_deterministic(tmp_path: Path) -> None:
    src = _source(tmp_path)
    write(src / ".git" / "HEAD", b"ref")  # hidden things are skipped
    write(src / "templates" / "__pycache__" / "router.cpython-311.pyc", b"\x00")
    a = build_pack(src, tmp_path / "a.remorapack")
    b = build_pack(src, tmp_path / "b.remorapack")
    assert (tmp_path / "a.remorapack").read_bytes() == (tmp_path / "b.remorapack").read_bytes()
    assert set(a.files) == set(good_files()) and a == b
    assert a.templates == ("templates/router.pym",)  # filled in from templates/
    with zipfile.ZipFile(tmp_path / "a.remorapack") as zf:
        infos = zf.infolist()
    assert infos[0].filename == "manifest.yaml"
    assert [i.filename for i in infos[1:]] == sorted(good_files())
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    kinds = {i.filename: i.compress_type for i in infos}
    assert kinds["adapters/generation/adapter_model.safetensors"] == zipfile.ZIP_STORED
    assert kinds["templates/router.pym"] == zipfile.ZIP_DEFLATED
    assert verify_archive(tmp_path / "a.remorapack", None, allow_unsigned=True)[1] is None


def test_highly_compressible_big_files_are_stored_so_honest_packs_pass(tmp_path: Path) -> None:
    src = _source(tmp_path)
    write(src / "embeddings" / "chunks.jsonl", b'{"text": "same"}\n' * 400_000)
    build_pack(src, tmp_path / "p.remorapack")
    with zipfile.ZipFile(tmp_path / "p.remorapack") as zf:
        assert zf.getinfo("embeddings/chunks.jsonl").compress_type == zipfile.ZIP_STORED
    verify_archive(tmp_path / "p.remorapack", None, allow_unsigned=True)


@pytest.mark.parametrize(
    ("rel", "blob", "message"),
    [
        ("adapters/generation/pytorch_model.bin", b"x", r"\.bin files"),
        ("setup.sh", b"x", "not part of the pack layout"),
        ("templates/bad name.pym", b"x", "is not a safe pack path"),
        ("adapters/generation/adapter_model.safetensors", b"\x80\x04junk", "pickle header"),
    ],
)
def test_build_refuses_what_install_would_refuse(
    tmp_path: Path, rel: str, blob: bytes, message: str
) -> None:
    src = _source(tmp_path)
    write(src / rel, blob)
    with pytest.raises(ArchiveError, match=message):
        build_pack(src, tmp_path / "p.remorapack")
    assert not (tmp_path / "p.remorapack").exists()


def test_build_refuses_links(tmp_path: Path) -> None:
    src = _source(tmp_path)
    (src / "docs" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(ArchiveError, match="is a symbolic link"):
        build_pack(src, io.BytesIO())


def test_sign_archive_in_place_and_refuse_tampered(tmp_path: Path, home: Home) -> None:
    out = tmp_path / "p.remorapack"
    build_pack(_source(tmp_path), out)
    signed = sign_archive(out, home.key_file)
    assert signed.signature is not None
    manifest, signer = verify_archive(out, home.paths.trust_dir, allow_unsigned=False)
    assert signer == "publisher" and manifest == signed
    # re-signing with another key replaces the signature
    other = tmp_path / "other.key"
    signing.generate_keypair(other)
    resigned = sign_archive(out, other)
    assert resigned.signature is not None
    assert resigned.signature.key_id != signed.signature.key_id
    broken = write(tmp_path / "broken.remorapack", flip_byte(out.read_bytes(), "docs/README.md"))
    before = broken.read_bytes()
    with pytest.raises(ArchiveError, match="is corrupt"):
        sign_archive(broken, other)
    assert broken.read_bytes() == before


def test_manifest_yaml_never_writes_aliases() -> None:
    shared = ["x", "y"]
    manifest = Manifest.model_validate(
        {"format": 1, "name": "demo", "version": "1.0.0", "card": {"a": shared, "b": shared}}
    )
    text = manifest_yaml(manifest)
    assert b"&" not in text and parse_manifest(text) == manifest


def test_unpacked_folder_with_mismatching_files_is_refused(tmp_path: Path) -> None:
    from remora_lsp.packs.archive import write_pack_archive

    files = good_files()
    manifest = Manifest.model_validate(manifest_data(files))
    folder = tmp_path / "f"
    for rel, blob in files.items():
        write(folder / rel, blob)
    pairs = [(rel, folder / rel) for rel in files if rel != "docs/README.md"]
    with pytest.raises(DigestError, match=r"missing: docs/README\.md"):
        write_pack_archive(io.BytesIO(), manifest, pairs)


def test_archive_stats(tmp_path: Path) -> None:
    build_pack(_source(tmp_path), tmp_path / "p.remorapack")
    with PackArchive(tmp_path / "p.remorapack") as archive:
        assert archive.total_bytes == sum(len(b) for b in good_files().values())
        assert archive.compressed_bytes > 0
        assert set(archive.members) == {"manifest.yaml", *good_files()}


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_repository_pack_sources_build_sign_and_verify(src: Path, home: Home) -> None:
    out = home.root / f"{src.name}.remorapack"
    manifest = build_pack(src, out, sign_key=home.key_file)
    assert manifest.name == src.name and manifest.templates
    assert manifest.triggers.python_imports == (src.name,)
    assert manifest.library is not None and manifest.library.name == src.name
    assert verify_archive(out, home.paths.trust_dir, allow_unsigned=False)[1] == "publisher"
    assert load_manifest(src).files == {}  # the source folder is never rewritten


@pytest.mark.parametrize(
    "template",
    [p for s in SOURCES for p in sorted((s / "templates").glob("*.pym"))],
    ids=lambda p: f"{p.parent.parent.name}/{p.name}",
)
def test_pym_templates_define_template_params_and_intents(template: Path) -> None:
    """Read with ``ast`` (a .pym is code; tests do not run it)."""
    tree = ast.parse(template.read_text(encoding="utf-8"))
    assert ast.get_docstring(tree)
    values = {
        t.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert isinstance(values["TEMPLATE"], str) and "{{" in values["TEMPLATE"]
    assert values["PARAMS"]["type"] == "object" and values["PARAMS"]["required"]
    assert values["INTENTS"] and all(isinstance(i, str) for i in values["INTENTS"])


def test_fastapi_pack_declares_library_range_and_tools() -> None:
    manifest = load_manifest(REPO / "packs" / "fastapi")
    assert manifest.library is not None
    assert (manifest.library.ecosystem, manifest.library.versions) == ("pypi", ">=0.100,<1")
    assert "fastapi_search" in {t.name for t in manifest.tools}
    assert len(manifest.templates) == 5


def test_signatures_survive_a_shutil_repack(tmp_path: Path, home: Home) -> None:
    """Only manifest content is signed: a re-zipped (same files) pack still verifies."""
    out = tmp_path / "p.remorapack"
    build_pack(_source(tmp_path), out, sign_key=home.key_file)
    unpacked = tmp_path / "u"
    shutil.unpack_archive(out, unpacked, "zip")
    repacked = shutil.make_archive(str(tmp_path / "re"), "zip", unpacked)
    assert verify_archive(Path(repacked), home.paths.trust_dir, allow_unsigned=False)[1]
