"""``.remorapack`` archives: build them from a pack folder, and read them without trusting them.

Building (:func:`build_pack`, :func:`write_pack_archive`) walks a pack source folder, computes
every file's sha256 and size into the manifest's ``files`` block, optionally signs, and writes
a deterministic zip: ``manifest.yaml`` first, then the files in sorted order, fixed timestamps
and permissions, safetensors stored uncompressed.

Reading (:class:`PackArchive`) never writes anything until :meth:`PackArchive.extract` is
called, and that only into a folder the caller chose. Opening checks the zip's structure (names,
file types, duplicates, counts, declared sizes, overlapping members) and parses the manifest;
:meth:`PackArchive.check_signature` applies the trust policy; :meth:`PackArchive.verify_contents`
streams every member through sha256, size, zip-bomb and payload checks
(:mod:`remora_lsp.packs.content`) without keeping more than one chunk in memory. Each refusal
raises its own message (see ``docs/pack-format.md``, "What is refused").
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import yaml

from remora_lsp.errors import ArchiveError, DigestError, ManifestError, SignatureError
from remora_lsp.packs.content import PayloadCheck, check_member_path
from remora_lsp.packs.manifest import (
    LAYOUT_DIRS,
    LAYOUT_TOP_FILES,
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    PATH_RE,
    FileEntry,
    Manifest,
    load_manifest,
    parse_manifest,
)

__all__ = [
    "DEFAULT_LIMITS",
    "PACK_SUFFIX",
    "SILENT_PROGRESS",
    "ZIP_TIMESTAMP",
    "Limits",
    "PackArchive",
    "Progress",
    "build_pack",
    "manifest_yaml",
    "scan_pack_folder",
    "sign_archive",
    "verify_archive",
    "write_pack_archive",
]

PACK_SUFFIX = ".remorapack"
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1 << 20
_FILE_MODE = 0o644
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_SKIPPED_SOURCE_NAMES = {"__pycache__"}
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
# What zipfile and zlib raise on damaged data (RuntimeError: e.g. a password is required).
_CORRUPT = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    struct.error,
    ValueError,
    RuntimeError,
    NotImplementedError,
    OverflowError,
)


@dataclass(frozen=True)
class Limits:
    """Caps that keep a hostile archive from exhausting memory, disk or time."""

    max_members: int = 10_000
    max_file_bytes: int = 4 * 1024**3
    max_total_bytes: int = 8 * 1024**3
    max_ratio: float = 100.0
    ratio_grace_bytes: int = 1024 * 1024


DEFAULT_LIMITS = Limits()


class Progress(Protocol):
    """Receives byte counts while files are hashed, written or extracted (e.g. a progress bar)."""

    def begin(self, label: str, total_bytes: int) -> None:
        """A phase starts that will process ``total_bytes``."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more were processed."""

    def end(self) -> None:
        """The phase is over."""


class _Silent:
    def begin(self, label: str, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def end(self) -> None:
        pass


_SILENT = _Silent()
SILENT_PROGRESS: Progress = _SILENT


# ---------------------------------------------------------------------------------------------
# Building


class _PlainDumper(yaml.SafeDumper):
    """Never writes anchors/aliases: the manifest reader refuses them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def manifest_yaml(manifest: Manifest) -> bytes:
    """The ``manifest.yaml`` text written into archives: schema field order, defaults left out."""
    data = manifest.model_dump(mode="json", exclude_defaults=True)
    text = yaml.dump(
        data,
        Dumper=_PlainDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return text.encode("utf-8")


def _layout_error(rel: str) -> str | None:
    if rel in LAYOUT_TOP_FILES or rel.startswith(LAYOUT_DIRS):
        return None
    return (
        f"{rel} is not part of the pack layout (files go under {', '.join(LAYOUT_DIRS)} or are "
        f"one of {', '.join(LAYOUT_TOP_FILES)}); move or delete it"
    )


def scan_pack_folder(src: Path) -> list[tuple[str, Path]]:
    """The files of a pack source folder as sorted ``(relative path, file)`` pairs.

    Skips ``manifest.yaml``, names starting with ``.`` and ``__pycache__``. Refuses links,
    special files, names that are not safe pack paths and refused file types.
    """
    if not src.is_dir():
        raise ArchiveError(f"{src} is not a folder")
    found: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(src, followlinks=False):
        base = Path(root)
        for name in list(dirs):
            if name.startswith(".") or name in _SKIPPED_SOURCE_NAMES:
                dirs.remove(name)
            elif (base / name).is_symlink():
                raise ArchiveError(f"{base / name} is a symbolic link; packs hold regular files")
        for name in files:
            path = base / name
            rel = path.relative_to(src).as_posix()
            if name.startswith(".") or rel == MANIFEST_NAME:
                continue
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise ArchiveError(f"{path} is a symbolic link; packs hold regular files only")
            if not stat.S_ISREG(mode):
                raise ArchiveError(f"{path} is not a regular file; packs hold regular files only")
            if not PATH_RE.match(rel) or len(rel) > 255:
                raise ArchiveError(
                    f"{path}: the name {rel!r} is not a safe pack path (letters, digits, '_.@+-')"
                )
            problem = _layout_error(rel)
            if problem:
                raise ArchiveError(f"{src}: {problem}")
            check_member_path(rel)
            found.append((rel, path))
    found.sort()
    return found


def _hash_file(rel: str, path: Path, progress: Progress) -> FileEntry:
    digest = hashlib.sha256()
    check = PayloadCheck(rel)
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            size += len(block)
            digest.update(block)
            check.feed(block)
            progress.advance(len(block))
    check.finish(size)
    return FileEntry(sha256=digest.hexdigest(), size=size)


def _compress_type(rel: str, path: Path, size: int, limits: Limits) -> int:
    """Deflate, except where the reader's zip-bomb ratio cap could trip on honest data."""
    if rel.lower().endswith(".safetensors"):
        return zipfile.ZIP_STORED
    if size <= limits.ratio_grace_bytes:
        return zipfile.ZIP_DEFLATED
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    compressed = 0
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            compressed += len(compressor.compress(block))
    compressed += len(compressor.flush())
    ratio = size / max(compressed, 1)
    return zipfile.ZIP_STORED if ratio > limits.max_ratio / 2 else zipfile.ZIP_DEFLATED


def _zip_info(name: str, size: int, compress_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
    info.compress_type = compress_type
    info.create_system = 3
    info.external_attr = (stat.S_IFREG | _FILE_MODE) << 16
    info.file_size = size
    return info


def _write_member(
    zf: zipfile.ZipFile,
    rel: str,
    path: Path,
    entry: FileEntry,
    compress_type: int,
    progress: Progress,
) -> None:
    info = _zip_info(rel, entry.size, compress_type)
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as src, zf.open(info, "w", force_zip64=entry.size >= 2**31) as out:
        while block := src.read(_CHUNK):
            size += len(block)
            digest.update(block)
            out.write(block)
            progress.advance(len(block))
    if size != entry.size or digest.hexdigest() != entry.sha256:
        raise DigestError(f"{rel} changed while the pack was being written; build again")


def write_pack_archive(
    out: BinaryIO,
    manifest: Manifest,
    files: list[tuple[str, Path]],
    *,
    manifest_bytes: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress = _SILENT,
) -> None:
    """Write a pack zip to ``out``: the manifest, then ``files`` (which must match its block).

    ``manifest_bytes`` keeps an existing ``manifest.yaml`` byte for byte (installing an
    unpacked signed folder); by default the manifest is dumped with :func:`manifest_yaml`.
    """
    listed = {rel for rel, _ in files}
    if listed != set(manifest.files):
        missing = sorted(set(manifest.files) - listed)
        extra = sorted(listed - set(manifest.files))
        raise DigestError(
            f"{manifest.key}: the folder does not match the manifest's files "
            f"(missing: {', '.join(missing) or '-'}; not listed: {', '.join(extra) or '-'})"
        )
    text = manifest_bytes if manifest_bytes is not None else manifest_yaml(manifest)
    progress.begin(f"writing {manifest.key}", sum(e.size for e in manifest.files.values()))
    with zipfile.ZipFile(out, "w", allowZip64=True) as zf:
        zf.writestr(_zip_info(MANIFEST_NAME, len(text), zipfile.ZIP_DEFLATED), text)
        for rel, path in sorted(files):
            entry = manifest.files[rel]
            kind = _compress_type(rel, path, entry.size, limits)
            _write_member(zf, rel, path, entry, kind, progress)
    progress.end()


def _default_templates(files: list[tuple[str, Path]]) -> list[str]:
    return [rel for rel, _ in files if rel.startswith("templates/") and rel.endswith(".pym")]


def _built_manifest(src: Path, files: list[tuple[str, Path]], progress: Progress) -> Manifest:
    source_manifest = load_manifest(src)
    progress.begin(f"hashing {source_manifest.key}", sum(p.stat().st_size for _, p in files))
    entries = {rel: _hash_file(rel, path, progress) for rel, path in files}
    progress.end()
    data: dict[str, Any] = source_manifest.to_data()
    data.pop("signature", None)
    data["files"] = {rel: e.model_dump() for rel, e in entries.items()}
    if not data.get("templates"):
        data["templates"] = _default_templates(files)
    text = yaml.dump(data, Dumper=_PlainDumper, sort_keys=False, allow_unicode=True)
    return parse_manifest(text.encode("utf-8"), source=str(src / MANIFEST_NAME))


def build_pack(
    src: Path,
    out: Path | BinaryIO,
    *,
    sign_key: Path | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress = _SILENT,
) -> Manifest:
    """Build a pack archive from a source folder; return the manifest written into it.

    ``files`` is computed from the folder (any ``files``/``signature`` in the source manifest is
    replaced); an empty ``templates`` list is filled with ``templates/**/*.pym``. With
    ``sign_key`` the manifest is signed. A path ``out`` is written atomically.
    """
    files = scan_pack_folder(src)
    manifest = _built_manifest(src, files, progress)
    if sign_key is not None:
        from remora_lsp.packs.signing import sign_manifest

        manifest = sign_manifest(manifest, sign_key)
    if not isinstance(out, Path):
        write_pack_archive(out, manifest, files, limits=limits, progress=progress)
        return manifest
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            write_pack_archive(fh, manifest, files, limits=limits, progress=progress)
        os.replace(tmp, out)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()
    return manifest


# ---------------------------------------------------------------------------------------------
# Reading


def _name_problem(name: str) -> str | None:
    """Why a member name is refused, or None. Order matters: the most specific reason first."""
    if "\x00" in name:
        return "contains a NUL byte"
    if "\\" in name:
        return "contains a backslash (a Windows path separator)"
    if name.startswith("/") or _DRIVE_RE.match(name):
        return "is an absolute path"
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        return "has a '..' component (zip-slip: it would be written outside the pack folder)"
    if "" in parts or "." in parts:
        return "is not a normalised path (empty or '.' component)"
    if len(name) > 255 or not PATH_RE.match(name.rstrip("/")):
        return "has characters outside letters, digits and '_.@+-'"
    return None


def _type_problem(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind in (0, stat.S_IFREG) or (kind == stat.S_IFDIR and info.is_dir()):
        return None
    if kind == stat.S_IFLNK:
        return "is a symbolic link"
    if kind in (stat.S_IFCHR, stat.S_IFBLK):
        return "is a device file"
    if kind == stat.S_IFIFO:
        return "is a FIFO (named pipe)"
    if kind == stat.S_IFSOCK:
        return "is a socket"
    if kind == stat.S_IFDIR:
        return "is marked as a directory but has a file name"
    return f"has an unknown file type (mode {mode:o})"


def _open_zip(fp: BinaryIO, label: str, limits: Limits) -> zipfile.ZipFile:
    fp.seek(0)
    magic = fp.read(4)
    fp.seek(0)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise ArchiveError(f"{label} is not a pack archive (not a zip file)")
    end_record = getattr(zipfile, "_EndRecData", None)
    endrec: Any = None
    if end_record is not None:
        with suppress(OSError, *_CORRUPT):
            endrec = end_record(fp)
        fp.seek(0)
        if not endrec:
            raise ArchiveError(
                f"{label} is truncated or corrupt: the zip end-of-archive record is missing"
            )
        entries, cd_size = endrec[4], endrec[5]
        if entries > limits.max_members or cd_size > limits.max_members * 1400:
            raise ArchiveError(
                f"{label} has more than {limits.max_members} members (declares {entries}); refused"
            )
    try:
        return zipfile.ZipFile(fp)
    except NotImplementedError as exc:
        raise ArchiveError(f"{label} uses an unsupported zip feature: {exc}") from exc
    except (*_CORRUPT, OSError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{label} is truncated or corrupt: {exc}") from exc


class PackArchive:
    """An opened pack archive whose structure and manifest have been checked.

    Use as a context manager. Nothing is written anywhere until :meth:`extract`.
    """

    def __init__(
        self,
        source: Path | BinaryIO,
        *,
        limits: Limits = DEFAULT_LIMITS,
        label: str | None = None,
    ) -> None:
        self.limits = limits
        self._own_fp = isinstance(source, Path)
        if isinstance(source, Path):
            self.label = label or str(source)
            try:
                self._fp: BinaryIO = source.open("rb")
            except OSError as exc:
                raise ArchiveError(f"cannot open {source}: {exc}") from exc
        else:
            self.label = label or "pack archive"
            self._fp = source
        try:
            self._zip = _open_zip(self._fp, self.label, limits)
            self.members = self._check_structure()
            self.manifest_bytes = self._read_manifest()
            self.manifest = parse_manifest(
                self.manifest_bytes, source=f"{self.label}:{MANIFEST_NAME}"
            )
            self._check_against_manifest()
        except BaseException:
            self.close()
            raise

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the archive file."""
        zf = getattr(self, "_zip", None)
        if zf is not None:
            zf.close()
        if self._own_fp:
            self._fp.close()

    def __enter__(self) -> PackArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- structure -----------------------------------------------------------------------------

    def _check_structure(self) -> dict[str, zipfile.ZipInfo]:
        infos = self._zip.infolist()
        if len(infos) > self.limits.max_members:
            raise ArchiveError(
                f"{self.label} has {len(infos)} members, more than the cap of "
                f"{self.limits.max_members}"
            )
        members: dict[str, zipfile.ZipInfo] = {}
        seen: set[str] = set()
        folded: dict[str, str] = {}
        for info in infos:
            name = info.orig_filename
            problem = _name_problem(name) or _type_problem(info)
            if problem:
                raise ArchiveError(f"{self.label}: member {name!r} {problem}; refused")
            if info.flag_bits & 0x1:
                raise ArchiveError(f"{self.label}: member {name!r} is encrypted; refused")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ArchiveError(
                    f"{self.label}: member {name!r} uses compression method "
                    f"{info.compress_type}; only stored and deflate are accepted"
                )
            key = name.rstrip("/")
            if key in seen:
                raise ArchiveError(f"{self.label}: duplicate member {key!r}; refused")
            seen.add(key)
            other = folded.setdefault(key.casefold(), key)
            if other != key:
                raise ArchiveError(
                    f"{self.label}: members {other!r} and {key!r} differ only in case; refused"
                )
            if info.is_dir():
                if info.file_size:
                    raise ArchiveError(f"{self.label}: directory entry {name!r} holds data")
                continue
            if info.file_size > self.limits.max_file_bytes:
                raise ArchiveError(
                    f"{self.label}: member {name!r} declares {info.file_size} bytes, over the "
                    f"per-file cap of {self.limits.max_file_bytes}"
                )
            members[key] = info
        declared = sum(i.file_size for i in members.values())
        if declared > self.limits.max_total_bytes:
            raise ArchiveError(
                f"{self.label}: uncompressed size {declared} bytes is over the cap of "
                f"{self.limits.max_total_bytes}"
            )
        self._check_overlaps(list(members.values()))
        return members

    def _check_overlaps(self, infos: list[zipfile.ZipInfo]) -> None:
        """Members must occupy disjoint byte ranges before the central directory.

        Two entries sharing data (the zip form of a hard link) and overlapping entries (a
        zip-bomb technique) are refused.
        """
        start_dir = int(getattr(self._zip, "start_dir", 0)) or None
        spans: list[tuple[int, int, str]] = []
        for info in infos:
            header = b""
            if info.header_offset >= 0:
                self._fp.seek(info.header_offset)
                header = self._fp.read(_LOCAL_HEADER.size)
            if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
                raise ArchiveError(
                    f"{self.label} is truncated or corrupt: no local header for "
                    f"{info.orig_filename!r}"
                )
            fields = _LOCAL_HEADER.unpack(header)
            name_len, extra_len = fields[-2], fields[-1]
            data_start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
            spans.append((info.header_offset, data_start + info.compress_size, info.orig_filename))
        spans.sort()
        for (_, end, name), (start, _, other) in itertools.pairwise(spans):
            if start < end:
                raise ArchiveError(
                    f"{self.label}: member {other!r} overlaps member {name!r} (shared or "
                    "overlapping data, a zip-bomb or hard-link trick); refused"
                )
        if spans and start_dir is not None and spans[-1][1] > start_dir:
            raise ArchiveError(
                f"{self.label}: member {spans[-1][2]!r} runs into the central directory; refused"
            )

    def _read_manifest(self) -> bytes:
        info = self.members.get(MANIFEST_NAME)
        if info is None:
            raise ManifestError(f"{self.label}: no manifest.yaml in the archive")
        if info.file_size > MAX_MANIFEST_BYTES:
            raise ManifestError(
                f"{self.label}:{MANIFEST_NAME}: manifest is {info.file_size} bytes, over the "
                f"{MAX_MANIFEST_BYTES}-byte limit"
            )
        out = bytearray()
        for chunk in self._read_member(MANIFEST_NAME, MAX_MANIFEST_BYTES):
            out += chunk
        return bytes(out)

    def _check_against_manifest(self) -> None:
        files = self.manifest.files
        key = self.manifest.key
        for name in sorted(self.members):
            if name != MANIFEST_NAME and name not in files:
                raise ArchiveError(
                    f"{self.label}: {name} is in the archive but not listed in the manifest of "
                    f"{key}; refused"
                )
        for name in sorted(files):
            if name not in self.members:
                raise DigestError(
                    f"{self.label}: {name} is listed in the manifest of {key} but missing from "
                    "the archive"
                )
        total = 0
        for name in sorted(files):
            entry, info = files[name], self.members[name]
            check_member_path(name)
            if entry.size > self.limits.max_file_bytes:
                raise ArchiveError(
                    f"{self.label}: {name} is {entry.size} bytes, over the per-file cap of "
                    f"{self.limits.max_file_bytes}"
                )
            if info.file_size != entry.size:
                raise DigestError(
                    f"{self.label}: {name} is {info.file_size} bytes in the archive but the "
                    f"manifest says {entry.size}"
                )
            total += entry.size
        if total > self.limits.max_total_bytes:
            raise ArchiveError(
                f"{self.label}: uncompressed size {total} bytes is over the cap of "
                f"{self.limits.max_total_bytes}"
            )

    # -- content -------------------------------------------------------------------------------

    @property
    def total_bytes(self) -> int:
        """Sum of the listed files' sizes (what extraction writes, besides the manifest)."""
        return sum(e.size for e in self.manifest.files.values())

    @property
    def compressed_bytes(self) -> int:
        """Sum of the members' compressed sizes."""
        return sum(i.compress_size for i in self.members.values())

    def _read_member(self, name: str, cap: int) -> Iterator[bytes]:
        """Stream a member's decompressed bytes, enforcing ``cap`` and the ratio cap as it goes."""
        info = self.members[name]
        limit_ratio = self.limits.max_ratio * max(info.compress_size, 1)
        count = 0
        try:
            with self._zip.open(info) as fh:
                while True:
                    chunk = fh.read(_CHUNK)
                    if not chunk:
                        break
                    count += len(chunk)
                    if count > cap:
                        raise DigestError(
                            f"{self.label}: {name} holds more than the {cap} bytes declared for it"
                        )
                    if count > self.limits.ratio_grace_bytes and count > limit_ratio:
                        raise ArchiveError(
                            f"{self.label}: {name} expands more than {self.limits.max_ratio:g} "
                            f"times its compressed size of {info.compress_size} bytes "
                            "(compression ratio over the cap: a zip bomb?); refused"
                        )
                    yield chunk
        except _CORRUPT as exc:
            raise ArchiveError(f"{self.label}: member {name!r} is corrupt: {exc}") from exc

    def _stream_checked(
        self, name: str, sink: Callable[[bytes], object] | None, progress: Progress
    ) -> None:
        entry = self.manifest.files[name]
        digest = hashlib.sha256()
        check = PayloadCheck(name)
        count = 0
        for chunk in self._read_member(name, entry.size):
            count += len(chunk)
            digest.update(chunk)
            check.feed(chunk)
            if sink is not None:
                sink(chunk)
            progress.advance(len(chunk))
        if count != entry.size:
            raise DigestError(
                f"{self.label}: {name} is {count} bytes, the manifest says {entry.size}"
            )
        check.finish(count)
        if digest.hexdigest() != entry.sha256:
            raise DigestError(
                f"{self.label}: {name} does not match its sha256 in the manifest (tampered?)"
            )

    def check_signature(self, trust_dir: Path | None, *, allow_unsigned: bool) -> str | None:
        """Apply the trust policy; return the trusted signer's name (None: unsigned, allowed).

        ``allow_unsigned`` admits packs that carry no signature at all; a signature that is
        malformed, bad or from an untrusted key is refused regardless.
        """
        manifest = self.manifest
        if manifest.signature is None:
            if allow_unsigned:
                return None
            raise SignatureError(
                f"{manifest.key} is unsigned; only packs signed by a trusted key install "
                "(use --allow-unsigned or REMORA_ALLOW_UNSIGNED=1 for local development)"
            )
        if trust_dir is None:
            raise SignatureError(f"{manifest.key}: no trust store to check its signature against")
        from remora_lsp.packs.signing import verify_manifest_signature

        return verify_manifest_signature(manifest, trust_dir)

    def verify_contents(self, progress: Progress = _SILENT) -> None:
        """Check every member's size, sha256 and payload rules, writing nothing."""
        progress.begin(f"verifying {self.manifest.key}", self.total_bytes)
        for name in sorted(self.manifest.files):
            self._stream_checked(name, None, progress)
        progress.end()

    def extract(self, dest: Path, progress: Progress = _SILENT) -> None:
        """Write the manifest and every listed file into the empty folder ``dest``.

        Every file is checked again while it is written; on any error ``dest`` is left for the
        caller (the installer's staging folder) to delete.
        """
        if any(dest.iterdir()):
            raise ArchiveError(f"{dest} is not empty; refusing to extract into it")
        progress.begin(f"extracting {self.manifest.key}", self.total_bytes)
        with _new_file(dest / MANIFEST_NAME) as fh:
            fh.write(self.manifest_bytes)
        for name in sorted(self.manifest.files):
            target = dest.joinpath(*name.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            with _new_file(target) as fh:
                self._stream_checked(name, fh.write, progress)
        progress.end()

    def copy_members(self, zf: zipfile.ZipFile, progress: Progress = _SILENT) -> None:
        """Copy every listed file, checked, into another zip (re-signing rewrites the archive)."""
        for name in sorted(self.manifest.files):
            info = self.members[name]
            entry = self.manifest.files[name]
            new = _zip_info(name, entry.size, info.compress_type)
            with zf.open(new, "w", force_zip64=entry.size >= 2**31) as out:
                self._stream_checked(name, out.write, progress)


@contextmanager
def _new_file(path: Path) -> Iterator[BinaryIO]:
    """Create ``path`` (never following or replacing anything); fsync it when the block ends."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, _FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def verify_archive(
    source: Path | BinaryIO,
    trust_dir: Path | None,
    *,
    allow_unsigned: bool,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress = _SILENT,
) -> tuple[Manifest, str | None]:
    """Fully check an archive without extracting it; return its manifest and signer name."""
    with PackArchive(source, limits=limits) as archive:
        signer = archive.check_signature(trust_dir, allow_unsigned=allow_unsigned)
        archive.verify_contents(progress)
        return archive.manifest, signer


def sign_archive(
    path: Path,
    key: Path,
    *,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress = _SILENT,
) -> Manifest:
    """Re-sign an archive in place with ``key`` (replacing any signature); return the manifest.

    The archive's digests are checked first, so a tampered pack is never signed. The new
    archive is written beside the old one and renamed over it.
    """
    from remora_lsp.packs.signing import load_private_key, sign_manifest

    private = load_private_key(key)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with PackArchive(path, limits=limits) as archive:
            archive.verify_contents(progress)
            manifest = sign_manifest(archive.manifest, private)
            text = manifest_yaml(manifest)
            with tmp.open("wb") as fh, zipfile.ZipFile(fh, "w", allowZip64=True) as zf:
                zf.writestr(_zip_info(MANIFEST_NAME, len(text), zipfile.ZIP_DEFLATED), text)
                progress.begin(f"signing {manifest.key}", archive.total_bytes)
                archive.copy_members(zf, progress)
                progress.end()
        os.replace(tmp, path)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()
    return manifest
