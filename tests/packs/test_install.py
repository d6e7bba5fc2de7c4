"""Installing into the store: atomicity, replacement, concurrency, crashes, tampering, folders."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from remora_lsp.errors import ArchiveError, DigestError, SignatureError, StoreError
from remora_lsp.packs.archive import build_pack
from remora_lsp.packs.install import (
    install_pack,
    install_pack_result,
    list_packs,
    remove_pack,
    use_pack,
)
from remora_lsp.packs.store import active_versions, read_active_marker
from remora_lsp.packs.verify import verify_pack_dir

from .conftest import Home
from .factory import good_files, pack_zip, safetensors_bytes, tree_snapshot, write

REPO = Path(__file__).resolve().parents[2]


def _archive(home: Home, tmp_path: Path, version: str = "1.0.0") -> Path:
    data = pack_zip(good_files(), key=home.key, version=version)
    return write(tmp_path / f"demo-{version}.remorapack", data)


def _staging_entries(home: Home) -> list[str]:
    tmp = home.packs / ".tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def test_install_then_verify_then_list(home: Home, tmp_path: Path) -> None:
    result = install_pack_result(_archive(home, tmp_path), home.paths)
    assert result.action == "installed" and result.signed_by == "publisher"
    verified = verify_pack_dir(result.pack.path, home.paths.trust_dir, allow_unsigned=False)
    assert verified.signed_by == "publisher"
    [listing] = list_packs(home.paths)
    assert (listing.name, listing.version, listing.active, listing.trust) == (
        "demo",
        "1.0.0",
        True,
        "publisher",
    )
    assert _staging_entries(home) == []


def test_same_pack_twice_is_unchanged(home: Home, tmp_path: Path) -> None:
    archive = _archive(home, tmp_path)
    install_pack(archive, home.paths)
    before = tree_snapshot(home.packs / "demo")
    assert install_pack_result(archive, home.paths).action == "unchanged"
    assert tree_snapshot(home.packs / "demo") == before


def test_versions_side_by_side_and_use(home: Home, tmp_path: Path) -> None:
    install_pack(_archive(home, tmp_path, "1.0.0"), home.paths)
    install_pack(_archive(home, tmp_path, "1.1.0"), home.paths)
    assert active_versions(home.packs)["demo"].version == "1.1.0"
    use_pack("demo", "1.0.0", home.paths)
    assert read_active_marker(home.packs / "demo") == "1.0.0"
    assert active_versions(home.packs)["demo"].version == "1.0.0"
    with pytest.raises(StoreError, match=r"demo@9.9.9 is not installed \(installed versions"):
        use_pack("demo", "9.9.9", home.paths)
    # removing the pinned version drops the pin; the newest remaining becomes active
    assert remove_pack("demo", "1.0.0", home.paths) == ["demo@1.0.0"]
    assert read_active_marker(home.packs / "demo") is None
    assert active_versions(home.packs)["demo"].version == "1.1.0"
    assert remove_pack("demo", None, home.paths) == ["demo@1.1.0"]
    assert not (home.packs / "demo").exists()
    with pytest.raises(StoreError, match="pack demo is not installed"):
        remove_pack("demo", None, home.paths)


@pytest.mark.parametrize("bad", ["../etc", "Demo", "a/b", ".tmp"])
def test_names_from_the_command_line_cannot_escape_the_store(home: Home, bad: str) -> None:
    with pytest.raises(StoreError, match="is not a pack name"):
        remove_pack(bad, None, home.paths)
    with pytest.raises(StoreError, match="not a semantic version"):
        use_pack("demo", "../../x", home.paths)


def test_tampered_after_install_is_caught_and_reinstall_repairs(home: Home, tmp_path: Path) -> None:
    archive = _archive(home, tmp_path)
    pack = install_pack(archive, home.paths)
    trust = home.paths.trust_dir
    template = pack.path / "templates" / "router.pym"
    original = template.read_bytes()

    template.write_bytes(original.replace(b"router", b"ROUTER"))
    with pytest.raises(DigestError, match=r"templates/router.pym does not match its sha256"):
        verify_pack_dir(pack.path, trust, allow_unsigned=False)
    template.write_bytes(original + b"import os\n")
    with pytest.raises(DigestError, match=r"router.pym is \d+ bytes, the manifest says"):
        verify_pack_dir(pack.path, trust, allow_unsigned=False)
    template.write_bytes(original)
    (pack.path / "templates" / "extra.pym").write_text("import os\n")
    with pytest.raises(DigestError, match=r"templates/extra.pym is not listed in the manifest"):
        verify_pack_dir(pack.path, trust, allow_unsigned=False)
    (pack.path / "templates" / "extra.pym").unlink()
    template.unlink()
    template.symlink_to("/etc/hostname")
    with pytest.raises(DigestError, match=r"router.pym is a symbolic link"):
        verify_pack_dir(pack.path, trust, allow_unsigned=False)
    template.unlink()
    with pytest.raises(DigestError, match=r"listed file templates/router.pym is missing"):
        verify_pack_dir(pack.path, trust, allow_unsigned=False)
    manifest = pack.path / "manifest.yaml"
    manifest.write_bytes(manifest.read_bytes().replace(b"a test pack", b"an evil pack"))
    with pytest.raises(SignatureError, match="bad signature"):
        verify_pack_dir(pack.path, trust, allow_unsigned=False)

    assert install_pack_result(archive, home.paths).action == "replaced"
    verify_pack_dir(pack.path, trust, allow_unsigned=False)
    assert _staging_entries(home) == []


def test_untrusting_the_key_stops_the_pack(home: Home, tmp_path: Path) -> None:
    from remora_lsp.packs.trust import remove_trusted_key

    pack = install_pack(_archive(home, tmp_path), home.paths)
    remove_trusted_key(home.paths.trust_dir, "publisher")
    with pytest.raises(SignatureError, match="untrusted key"):
        verify_pack_dir(pack.path, home.paths.trust_dir, allow_unsigned=True)
    [listing] = list_packs(home.paths)
    assert listing.signed and listing.signed_by is None and "untrusted key" in listing.trust


def test_unsigned_needs_permission(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = write(tmp_path / "u.remorapack", pack_zip())
    with pytest.raises(SignatureError, match="is unsigned"):
        install_pack(archive, home.paths)
    monkeypatch.setenv("REMORA_ALLOW_UNSIGNED", "1")
    result = install_pack_result(archive, home.paths)
    assert result.signed_by is None
    [listing] = list_packs(home.paths)
    assert listing.trust == "UNSIGNED" and not listing.signed


def test_install_source_folder_and_unpacked_folder(home: Home, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(REPO / "packs" / "fastapi", src)
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "x.pyc").write_bytes(b"ignored")
    with pytest.raises(SignatureError, match="is unsigned"):
        install_pack(src, home.paths)
    result = install_pack_result(src, home.paths, allow_unsigned=True)
    assert result.pack.key == "fastapi@0.1.0" and result.signed_by is None
    assert not (result.pack.path / "__pycache__").exists()

    # a signed archive unpacked by hand installs as a folder, keeping its signature
    other = tmp_path / "other"
    signed = build_pack(
        REPO / "packs" / "pydantic", tmp_path / "p.remorapack", sign_key=home.key_file
    )
    unpacked = tmp_path / "unpacked"
    shutil.unpack_archive(tmp_path / "p.remorapack", unpacked, "zip")
    result = install_pack_result(unpacked, home.paths)
    assert result.signed_by == "publisher" and result.pack.key == signed.key
    (unpacked / "templates" / "model.pym").write_text("import os\n")
    with pytest.raises(DigestError):
        install_pack(unpacked, home.paths)
    assert not other.exists()


def test_source_folder_with_a_symlink_is_refused(home: Home, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(REPO / "packs" / "fastapi", src)
    (src / "templates" / "leak.pym").symlink_to("/etc/passwd")
    with pytest.raises(ArchiveError, match=r"leak.pym is a symbolic link"):
        install_pack(src, home.paths, allow_unsigned=True)


def test_failed_extraction_keeps_the_previous_copy(home: Home, tmp_path: Path) -> None:
    archive = _archive(home, tmp_path)
    pack = install_pack(archive, home.paths)
    (pack.path / "docs" / "README.md").write_text("tampered, so the next install replaces\n")
    before = tree_snapshot(home.packs / "demo")

    class DiskFull:
        def begin(self, label: str, total_bytes: int) -> None:
            self.label = label

        def advance(self, nbytes: int) -> None:
            if self.label.startswith("extracting"):
                raise OSError(28, "No space left on device")

        def end(self) -> None:
            pass

    with pytest.raises(OSError, match="No space left"):
        install_pack(archive, home.paths, progress=DiskFull())
    assert tree_snapshot(home.packs / "demo") == before
    assert _staging_entries(home) == []


def test_stale_staging_is_cleaned_and_never_listed(home: Home, tmp_path: Path) -> None:
    stale = home.packs / ".tmp" / "demo@deadbeef"
    write(stale / "manifest.yaml", b"format: 1\nname: demo\nversion: 6.6.6\n")
    write(home.packs / ".tmp" / "other@cafe" / "x", b"")
    assert list_packs(home.paths) == []
    install_pack(_archive(home, tmp_path), home.paths)
    assert _staging_entries(home) == []


# -- several processes ----------------------------------------------------------------------

INSTALL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from remora_lsp.packs.install import StorePaths, install_pack_result
    archive, packs, trust, go = map(Path, sys.argv[1:5])
    while not go.exists():
        time.sleep(0.001)
    result = install_pack_result(archive, StorePaths(packs, trust))
    print(result.action)
    """
)


def _big_files() -> dict[str, bytes]:
    files = good_files()
    # ~24 MiB of tensors so that extraction takes long enough for the processes to overlap
    files["adapters/generation/adapter_model.safetensors"] = safetensors_bytes(
        {"lora_A": ("F32", [1536, 2048]), "lora_B": ("F32", [2048, 1536])}, random=True
    )
    return files


def test_concurrent_installs_end_in_one_correct_copy(home: Home, tmp_path: Path) -> None:
    archive = write(
        tmp_path / "big.remorapack", pack_zip(_big_files(), key=home.key, version="2.0.0")
    )
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                INSTALL_SCRIPT,
                str(archive),
                str(home.packs),
                str(home.paths.trust_dir),
                str(go),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    time.sleep(0.5)
    go.touch()
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    actions = sorted(out.strip() for out, _ in results)
    assert actions.count("installed") == 1 and actions.count("unchanged") == 2, actions
    assert [p.name for p in (home.packs / "demo").iterdir()] == ["2.0.0"]
    verify_pack_dir(home.packs / "demo" / "2.0.0", home.paths.trust_dir, allow_unsigned=False)
    assert _staging_entries(home) == []


HANG_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from remora_lsp.packs.install import StorePaths, install_pack
    archive, packs, trust, ready = map(Path, sys.argv[1:5])

    class HangWhileExtracting:
        def begin(self, label, total):
            self.label = label
            self.seen = 0
        def advance(self, n):
            self.seen += n
            if self.label.startswith("extracting") and self.seen > 4 * 1024 * 1024:
                ready.touch()
                time.sleep(600)
        def end(self):
            pass

    install_pack(archive, StorePaths(packs, trust), progress=HangWhileExtracting())
    """
)


@pytest.mark.parametrize("same_version", [False, True], ids=["new-version", "same-version"])
def test_killed_install_leaves_store_consistent(
    home: Home, tmp_path: Path, same_version: bool
) -> None:
    old = install_pack(_archive(home, tmp_path, "1.0.0"), home.paths)
    if same_version:
        # a damaged copy is being repaired by reinstalling the same version when the kill comes
        (old.path / "docs" / "README.md").write_text("damaged\n")
    version = "1.0.0" if same_version else "2.0.0"
    big = write(tmp_path / "big.remorapack", pack_zip(_big_files(), key=home.key, version=version))
    before = tree_snapshot(home.packs / "demo")
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HANG_SCRIPT,
            str(big),
            str(home.packs),
            str(home.paths.trust_dir),
            str(ready),
        ],
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None, "the install finished or failed before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    assert tree_snapshot(home.packs / "demo") == before, "the kill touched the installed copy"
    assert [e for e in _staging_entries(home) if e.startswith("demo@")], "no half-extracted folder"
    assert {p.key for p in list_packs(home.paths)} == {"demo@1.0.0"}

    result = install_pack_result(big, home.paths)
    assert result.action == ("replaced" if same_version else "installed")
    verify_pack_dir(home.packs / "demo" / version, home.paths.trust_dir, allow_unsigned=False)
    assert _staging_entries(home) == []
    if not same_version:
        verify_pack_dir(old.path, home.paths.trust_dir, allow_unsigned=False)
