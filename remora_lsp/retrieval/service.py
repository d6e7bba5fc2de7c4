"""``SemanticService``: the one object the server holds for the semantic layer.

It implements the server's ``PackListener`` protocol (structurally; nothing here imports the
server): when a pack activates, :meth:`SemanticService.pack_loaded` opens the indexes in the
pack's ``embeddings/`` folder (memory-mapped; layout in :mod:`~remora_lsp.retrieval.build`),
checks them against the manifest's ``embeddings:`` block and against the models that will
embed queries, and reports problems as a status note instead of failing the pack — a broken
index must not take the pack's templates and adapter down with it. It answers hovers
(:meth:`hover`), searches (:meth:`search`, the ``search_embeddings`` tool) and keeps a
workspace index under ``<remora_home>/workspaces/<hash>/`` current
(:meth:`index_workspace`, :meth:`update_file`, :meth:`remove_file`).

Models load on first use, each once (sentence-transformers alone takes seconds to import).
Every public method may be called from worker threads: indexes are swapped under a lock and
searched on immutable snapshots; the workspace is mutated under its own lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remora_lsp.core.documents import Document
from remora_lsp.errors import RemoraError
from remora_lsp.retrieval.build import (
    MODEL_DIR,
    SEARCH,
    USAGES,
    Progress,
    iter_source_files,
    load_calibration,
    select_usage_rows,
)
from remora_lsp.retrieval.chunkers import Piece, analyse_python, chunk_source, module_name_for
from remora_lsp.retrieval.embedding import DEFAULT_MODEL_ID, Embedder, load_embedder
from remora_lsp.retrieval.errors import (
    DimensionMismatchError,
    IndexCorruptError,
    ModelUnavailableError,
    RetrievalError,
)
from remora_lsp.retrieval.exports import ExportResolver, default_resolver
from remora_lsp.retrieval.index import (
    INDEX_FILE,
    ChunkFilter,
    MergedIndex,
    SearchHit,
    VectorIndex,
    label_root,
)
from remora_lsp.retrieval.lexical import LexicalEmbedder
from remora_lsp.retrieval.types import (
    DEFAULT_THRESHOLD,
    DEFAULT_VOTE,
    Calibration,
    TextEdit,
    TypeInference,
    VoteConfig,
    infer_type,
    type_hint_edit,
)

if TYPE_CHECKING:
    import numpy as np

    from remora_lsp.packs.verify import VerifiedPack

__all__ = ["WORKSPACE", "SemanticService", "SemanticSettings", "load_settings"]

log = logging.getLogger(__name__)

WORKSPACE = "workspace"
WORKSPACE_FILES = "files.json"
EMBED_BATCH = 64


@dataclass(frozen=True)
class SemanticSettings:
    """Settings of the semantic layer (the ``semantic:`` block of ``config.yaml``).

    ``search_model`` embeds the workspace and search queries for indexes built with it:
    ``"default"`` (all-MiniLM-L6-v2 from PyPI) or a local folder. ``models`` maps model ids
    named by pack indexes to local folders (``google/embeddinggemma-300m: /models/eg``).
    ``truncate_dim`` keeps that many Matryoshka dims of ``search_model``. ``threshold`` is the
    confidence a hover needs to state a type. ``rerank`` is how many fast-tier candidates the
    precise tier re-scores.
    """

    search_model: str = "default"
    truncate_dim: int | None = None
    models: Mapping[str, str] = field(default_factory=dict)
    threshold: float = DEFAULT_THRESHOLD
    rerank: int = 1000
    vote: VoteConfig = DEFAULT_VOTE
    workspace_index: bool = True
    max_workspace_files: int = 20_000


def load_settings(data: Mapping[str, Any] | None) -> tuple[SemanticSettings, list[str]]:
    """Settings from a ``semantic:`` mapping; bad values are dropped with a message each."""
    settings = SemanticSettings()
    problems: list[str] = []
    if not data:
        return settings, problems
    if not isinstance(data, Mapping):
        return settings, [f"semantic settings must be a mapping, got {data!r}; ignored"]
    changes: dict[str, Any] = {}
    checks: dict[str, Callable[[Any], Any]] = {
        "search_model": lambda v: str(v),
        "truncate_dim": lambda v: None if v is None else _positive_int(v),
        "models": lambda v: {str(k): str(p) for k, p in dict(v).items()},
        "threshold": lambda v: _unit_float(v),
        "rerank": lambda v: _positive_int(v),
        "workspace_index": lambda v: _bool(v),
        "max_workspace_files": lambda v: _positive_int(v),
    }
    for key, value in data.items():
        check = checks.get(key)
        if check is None:
            problems.append(f"unknown setting `semantic.{key}` ignored")
            continue
        try:
            changes[key] = check(value)
        except (TypeError, ValueError) as exc:
            problems.append(f"setting `semantic.{key}` = {value!r} is invalid ({exc}); ignored")
    return replace(settings, **changes), problems


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError("must be a positive integer")
    return int(value)


def _unit_float(value: Any) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError("must be between 0 and 1")
    return number


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


@dataclass
class _Collection:
    """One opened index and what it takes to query it."""

    index: VectorIndex
    embedder_source: str | Path  # a folder, or "default"
    calibration: Calibration = field(default_factory=Calibration)
    label_counts: Counter[str] = field(default_factory=Counter)


@dataclass
class _PackIndexes:
    name: str
    collections: dict[str, _Collection] = field(default_factory=dict)
    triggers: tuple[str, ...] = ()
    family: frozenset[str] = frozenset()
    state: str = "none"
    reason: str | None = None


@dataclass
class _Workspace:
    root: Path
    folder: Path
    files: dict[str, tuple[int, int]] = field(default_factory=dict)
    collections: dict[str, _Collection] = field(default_factory=dict)
    lexical: LexicalEmbedder | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    dirty: bool = False


class SemanticService:
    """Pack indexes, the workspace index, hovers and searches (see the module docstring)."""

    def __init__(
        self,
        settings: SemanticSettings | None = None,
        *,
        remora_home: Path | None = None,
        resolver: ExportResolver | None = None,
        embedders: Mapping[str, Embedder] | None = None,
    ) -> None:
        self.settings = settings or SemanticSettings()
        self.remora_home = remora_home
        self.resolver = resolver or default_resolver()
        self._embedders: dict[str, Embedder] = dict(embedders or {})
        self._packs: dict[str, _PackIndexes] = {}
        self._workspace: _Workspace | None = None
        self._lock = threading.RLock()
        self._embed_locks: dict[str, threading.Lock] = {}

    # -- models --------------------------------------------------------------------------------

    def embedder(self, source: str | Path, model_id: str | None = None) -> Embedder:
        """The embedder for a model id or folder, loaded once (thread-safe)."""
        key = str(source)
        with self._lock:
            found = self._embedders.get(key) or (
                self._embedders.get(model_id) if model_id else None
            )
            if found is not None:
                return found
            lock = self._embed_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._embedders:
                    return self._embedders[key]
            truncate = self.settings.truncate_dim if key == self.settings.search_model else None
            embedder = load_embedder(source, truncate_dim=truncate)
            with self._lock:
                self._embedders[key] = embedder
            return embedder

    def _source_for(self, model_id: str, pack_dir: Path | None, collection: Path) -> str | Path:
        """Where the model that embeds queries for an index comes from (without loading it)."""
        own = collection / MODEL_DIR
        if own.is_dir():
            return own
        if pack_dir is not None and (pack_dir / "embeddings" / MODEL_DIR).is_dir():
            return pack_dir / "embeddings" / MODEL_DIR
        if model_id in self._embedders:
            return model_id
        if model_id in self.settings.models:
            return Path(self.settings.models[model_id]).expanduser()
        base = model_id.split("@", 1)[0]
        if model_id == DEFAULT_MODEL_ID:
            return "default"
        if self.settings.search_model not in ("default", DEFAULT_MODEL_ID) and (
            base in (self.settings.search_model, Path(self.settings.search_model).name)
        ):
            return self.settings.search_model
        raise ModelUnavailableError(
            f"this index was embedded with {model_id!r}, which is not available here; map it to "
            f"a local folder under `semantic.models` in config.yaml"
        )

    def _query_vectors(
        self, collections: Iterable[_Collection], texts: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Query vectors per model id for the given collections (each model embeds once)."""
        out: dict[str, np.ndarray] = {}
        for coll in collections:
            model_id = coll.index.model_id
            if model_id in out:
                continue
            embedder = self.embedder(coll.embedder_source, model_id)
            if embedder.dims != coll.index.dims:
                raise DimensionMismatchError(
                    f"index {coll.index.name or 'workspace'!r} holds {coll.index.dims}-dim vectors "
                    f"of {model_id} but {embedder.model_id} makes {embedder.dims}-dim ones; "
                    "rebuild the index or configure the model it was built with"
                )
            out[model_id] = embedder.embed_queries(list(texts))[0]
        return out

    # -- the PackListener protocol -------------------------------------------------------------

    def pack_loaded(self, pack: VerifiedPack) -> str | None:
        """Open the pack's indexes; returns a note for the pack status when something is off."""
        manifest = pack.manifest
        entry = _PackIndexes(manifest.name, triggers=tuple(manifest.triggers.python_imports))
        folder = pack.path / "embeddings"
        note: str | None = None
        try:
            self._open_pack(entry, pack.path, folder, manifest.embeddings)
        except RetrievalError as exc:
            entry.collections.clear()
            entry.state, entry.reason = "error", str(exc)
            note = f"index unavailable: {exc}"
            log.warning("pack %s: %s", manifest.key, note)
        with self._lock:
            self._packs[manifest.name] = entry
        return note

    def _open_pack(self, entry: _PackIndexes, pack_dir: Path, folder: Path, block: Any) -> None:
        if not folder.is_dir():
            if block is not None:
                raise IndexCorruptError(f"the manifest lists an index but {folder} is missing")
            return
        names = sorted(p.name for p in folder.iterdir() if (p / INDEX_FILE).is_file())
        if not names:
            if block is not None:
                raise IndexCorruptError(f"{folder} holds no index (no */{INDEX_FILE})")
            return
        for name in names:
            path = folder / name
            index = VectorIndex.open(path, name=entry.name)
            source = self._source_for(index.model_id, pack_dir, path)
            coll = _Collection(index, source)
            if name == USAGES:
                coll.calibration = load_calibration(path)
                coll.label_counts = Counter(c.label for c in index.chunks)
                lexical = self.embedder(source, index.model_id)  # cheap: an IDF table
                if lexical.model_id != index.model_id or lexical.dims != index.dims:
                    raise DimensionMismatchError(
                        f"{path}: vectors of {index.model_id} ({index.dims} dims) but its model "
                        f"is {lexical.model_id} ({lexical.dims} dims); rebuild the index"
                    )
                entry.family = frozenset(
                    label_root(label) for label in coll.label_counts if "." in label
                )
            entry.collections[name] = coll
        search = entry.collections.get(SEARCH)
        if block is not None and search is not None:
            if block.model.split("@", 1)[0] != search.index.model_id.split("@", 1)[0]:
                raise DimensionMismatchError(
                    f"the manifest says the index was embedded with {block.model!r} but "
                    f"{folder / SEARCH} holds vectors of "
                    f"{search.index.model_id!r}; rebuild the pack"
                )
            if block.dims != search.index.dims:
                raise DimensionMismatchError(
                    f"the manifest says {block.dims} dims but {folder / SEARCH} holds "
                    f"{search.index.dims}-dim vectors; rebuild the pack"
                )
        entry.state = "ready"

    def pack_unloaded(self, name: str) -> None:
        with self._lock:
            self._packs.pop(name, None)

    def status_fields(self, name: str) -> dict[str, Any]:
        """``{"index": {...}}`` for the pack's status entry (nothing for unknown packs)."""
        with self._lock:
            entry = self._packs.get(name)
        if entry is None:
            return {}
        if entry.state == "error":
            return {"index": {"state": "error", "reason": entry.reason}}
        if entry.state == "none":
            return {"index": {"state": "none"}}
        return {
            "index": {
                "state": "ready",
                "chunks": sum(len(c.index) for c in entry.collections.values()),
                **{name: len(c.index) for name, c in entry.collections.items()},
            }
        }

    def loaded_packs(self) -> list[str]:
        with self._lock:
            return sorted(n for n, e in self._packs.items() if e.state == "ready")

    # -- hover ---------------------------------------------------------------------------------

    def _module_of(self, document: Document) -> str:
        from urllib.parse import unquote, urlsplit

        try:
            path = Path(unquote(urlsplit(document.uri).path))
        except ValueError:
            return ""
        workspace = self._workspace
        if workspace is not None and path.is_relative_to(workspace.root):
            return module_name_for(path, workspace.root)
        return ""

    def hover(
        self, document: Document, offset: int, active_pack_names: Iterable[str] | None = None
    ) -> TypeInference | None:
        """The inferred type of the name at ``offset`` (see :mod:`~remora_lsp.retrieval.types`).

        Only the usage indexes of active packs that the document's imports trigger are asked,
        plus the workspace's. Returns None when there is nothing to say.
        """
        if document.tree is None or document.language != "python":
            return None
        module = self._module_of(document)
        analysis = analyse_python(
            document.tree, document.text, module=module, resolver=self.resolver
        )
        imported = list(analysis.imports.values())
        with self._lock:
            names = set(self._packs) if active_pack_names is None else set(active_pack_names)
            packs = [self._packs[n] for n in sorted(names) if n in self._packs]
            workspace = self._workspace
        chosen: list[_Collection] = []
        extra: set[str] = set()
        calibrations: dict[str, Calibration] = {}
        for entry in packs:
            coll = entry.collections.get(USAGES)
            if coll is None or not _triggered(entry.triggers, imported):
                continue
            chosen.append(coll)
            extra |= entry.family
            calibrations[entry.name] = coll.calibration
        if workspace is not None and USAGES in workspace.collections:
            chosen.append(workspace.collections[USAGES])

        def search(
            text: str, roots: frozenset[str], k: int
        ) -> tuple[list[SearchHit], Counter[str]]:
            counts: Counter[str] = Counter()
            hits: list[SearchHit] = []
            if not chosen:
                return hits, counts
            vectors = self._query_vectors(chosen, [text])
            flt = ChunkFilter(kinds=frozenset({"usage"}), label_roots=roots)
            for coll in chosen:
                counts.update(coll.label_counts)
                vector = vectors[coll.index.model_id]
                hits.extend(coll.index.search(vector, k, rerank=self.settings.rerank, flt=flt))
            hits.sort(key=lambda h: -h.score)
            return hits[:k], counts

        return infer_type(
            document,
            offset,
            search=search,
            resolver=self.resolver,
            module=module,
            extra_roots=extra,
            threshold=self.settings.threshold,
            calibration=lambda pack: calibrations.get(pack, Calibration()),
            config=self.settings.vote,
            analysis=analysis,
        )

    def type_hint_edit(self, document: Document, result: TypeInference) -> list[TextEdit]:
        """The edits that insert the annotation (and its import) for a hover result."""
        return type_hint_edit(
            document, result, resolver=self.resolver, module=self._module_of(document)
        )

    # -- search --------------------------------------------------------------------------------

    def search(
        self, query: str, filters: ChunkFilter | None = None, k: int = 10
    ) -> list[SearchHit]:
        """``search_embeddings``: the ``k`` chunks most similar to ``query`` over the loaded
        packs' search indexes and the workspace (``filters.packs`` may name ``workspace``)."""
        if not query.strip():
            return []
        with self._lock:
            members: dict[str, _Collection] = {
                name: entry.collections[SEARCH]
                for name, entry in self._packs.items()
                if SEARCH in entry.collections
            }
            workspace = self._workspace
        if workspace is not None and SEARCH in workspace.collections:
            members[WORKSPACE] = workspace.collections[SEARCH]
        if filters is not None and filters.packs is not None:
            members = {n: c for n, c in members.items() if n in filters.packs}
        if not members:
            return []
        vectors = self._query_vectors(members.values(), [query])
        merged = MergedIndex({name: coll.index for name, coll in members.items()})
        return merged.search(vectors, k, rerank=self.settings.rerank, flt=filters)

    # -- the workspace index -------------------------------------------------------------------

    def workspace_folder(self, root: Path) -> Path:
        """``<remora_home>/workspaces/<hash of the root path>/``."""
        if self.remora_home is None:
            raise RetrievalError("no remora_home: the workspace index has nowhere to live")
        digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
        return self.remora_home / "workspaces" / digest

    def open_workspace(self, root: Path) -> None:
        """Use ``root``'s saved workspace index if there is one (else start empty)."""
        root = root.resolve()
        folder = self.workspace_folder(root)
        workspace = _Workspace(root, folder)
        try:
            files = json.loads((folder / WORKSPACE_FILES).read_text("utf-8"))
            workspace.files = {k: (int(v[0]), int(v[1])) for k, v in files.items()}
            for name in (SEARCH, USAGES):
                path = folder / name
                if (path / INDEX_FILE).is_file():
                    index = VectorIndex.open(path, name=WORKSPACE)
                    source = self._source_for(index.model_id, None, path)
                    coll = _Collection(
                        index, source, label_counts=Counter(c.label for c in index.chunks)
                    )
                    workspace.collections[name] = coll
            if (folder / USAGES / MODEL_DIR).is_dir():
                workspace.lexical = LexicalEmbedder.load(folder / USAGES / MODEL_DIR)
        except FileNotFoundError:
            workspace = _Workspace(root, folder)
        except (RemoraError, OSError, ValueError, TypeError, KeyError, IndexError) as exc:
            log.warning("workspace index in %s is unusable (%s); rebuilding", folder, exc)
            workspace = _Workspace(root, folder)
        with self._lock:
            self._workspace = workspace

    def index_workspace(
        self,
        root: Path,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, int]:
        """Bring the workspace index of ``root`` up to date (changed files only) and save it.

        ``progress(done, total)`` is called as files are processed. Returns counts.
        """
        root = root.resolve()
        if self._workspace is None or self._workspace.root != root:
            self.open_workspace(root)
        workspace = self._workspace
        assert workspace is not None
        files = iter_source_files(root, max_files=self.settings.max_workspace_files)
        current: dict[str, tuple[int, int]] = {}
        for path in files:
            try:
                st = path.stat()
            except OSError:
                continue
            current[path.relative_to(root).as_posix()] = (st.st_mtime_ns, st.st_size)
        with workspace.lock:
            changed = [rel for rel, sig in current.items() if workspace.files.get(rel) != sig]
            removed = [rel for rel in workspace.files if rel not in current]
            fresh = not workspace.collections
            if fresh:
                changed = list(current)
            pieces: list[Piece] = []
            processed: list[str] = []
            # progress counts files chunked, then chunks embedded (the slow part with a
            # transformer): one unit per file, one per EMBED_BATCH chunks
            chunked_units = len(changed)
            for i, rel in enumerate(changed):
                if cancel is not None and cancel.is_set():
                    break
                path = root / rel
                try:
                    source = path.read_bytes()
                except OSError:
                    continue
                module = module_name_for(path, root) if path.suffix in (".py", ".pyi") else None
                pieces.extend(chunk_source(source, rel, module=module, resolver=self.resolver))
                processed.append(rel)
                if progress is not None:
                    estimate = chunked_units + max(1, len(pieces) // EMBED_BATCH)
                    progress(i + 1, estimate)
            for rel in [*removed, *processed]:
                for coll in workspace.collections.values():
                    coll.index.remove_file(rel)
            search_count = sum(p.chunk.kind != "usage" for p in pieces)
            total = chunked_units + -(-search_count // EMBED_BATCH)

            def embedded(done: int, _all: int) -> None:
                if progress is not None:
                    progress(chunked_units + -(-done // EMBED_BATCH), total)

            self._add_pieces(workspace, pieces, refit=fresh, progress=embedded)
            if progress is not None:
                progress(total, total)
            done = set(processed)
            workspace.files = {
                rel: sig
                for rel, sig in current.items()
                if rel in done or (rel in workspace.files and rel not in changed)
            }
            self._save_workspace(workspace)
            return {
                "files": len(current),
                "changed": len(changed),
                "removed": len(removed),
                "chunks": sum(len(c.index) for c in workspace.collections.values()),
            }

    def _add_pieces(
        self,
        workspace: _Workspace,
        pieces: Sequence[Piece],
        *,
        refit: bool,
        progress: Progress | None = None,
    ) -> None:
        search = [p for p in pieces if p.chunk.kind != "usage"]
        usages = select_usage_rows(
            [p for p in pieces if p.chunk.kind == "usage"], family=None, resolver=self.resolver,
            per_label=10_000, strict_classes=False,
        )  # fmt: skip
        if search:
            embedder = self.embedder(self.settings.search_model)
            coll = workspace.collections.get(SEARCH)
            if coll is not None and coll.index.model_id != embedder.model_id:
                coll = None  # the configured model changed: start this collection again
            texts = [p.embed_text for p in search]
            parts = []
            for lo in range(0, len(texts), EMBED_BATCH):
                parts.append(embedder.embed_documents(texts[lo : lo + EMBED_BATCH]))
                if progress is not None:
                    progress(min(lo + EMBED_BATCH, len(texts)), len(texts))
            import numpy as np

            vectors = np.concatenate(parts)
            if coll is None:
                index = VectorIndex(model_id=embedder.model_id, dims=embedder.dims,
                                    mrl_dims=embedder.mrl_dims, name=WORKSPACE)  # fmt: skip
                coll = workspace.collections[SEARCH] = _Collection(
                    index, self.settings.search_model
                )
            coll.index.add(vectors, [p.chunk for p in search])
        if usages:
            if workspace.lexical is None or (refit and USAGES not in workspace.collections):
                workspace.lexical = LexicalEmbedder.fit(
                    [p.embed_text for p in usages], name="workspace"
                )
            lexical = workspace.lexical
            coll = workspace.collections.get(USAGES)
            if coll is None or coll.index.model_id != lexical.model_id:
                index = VectorIndex(model_id=lexical.model_id, dims=lexical.dims, name=WORKSPACE)
                model_dir = workspace.folder / USAGES / MODEL_DIR
                lexical.save(model_dir)
                with self._lock:
                    self._embedders[str(model_dir)] = lexical
                coll = workspace.collections[USAGES] = _Collection(index, model_dir)
            coll.index.add(
                lexical.embed_documents([p.embed_text for p in usages]), [p.chunk for p in usages]
            )
            coll.label_counts = Counter(c.label for c in coll.index.chunks)
        workspace.dirty = True

    def _save_workspace(self, workspace: _Workspace) -> None:
        workspace.folder.mkdir(parents=True, exist_ok=True)
        for name, coll in workspace.collections.items():
            coll.index.save(workspace.folder / name)
        (workspace.folder / "root.txt").write_text(str(workspace.root) + "\n", encoding="utf-8")
        tmp = workspace.folder / f".{WORKSPACE_FILES}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({k: list(v) for k, v in workspace.files.items()}), "utf-8")
        os.replace(tmp, workspace.folder / WORKSPACE_FILES)
        workspace.dirty = False

    def _workspace_rel(self, path: Path) -> tuple[_Workspace, str] | None:
        workspace = self._workspace
        if workspace is None:
            return None
        path = path.resolve()
        if not path.is_relative_to(workspace.root):
            return None
        return workspace, path.relative_to(workspace.root).as_posix()

    def update_file(self, path: Path, text: str, *, save: bool = True) -> int:
        """Re-index one saved file of the workspace from ``text``; returns its chunk count."""
        found = self._workspace_rel(Path(path))
        if found is None:
            return 0
        workspace, rel = found
        module = (
            module_name_for(Path(path), workspace.root) if rel.endswith((".py", ".pyi")) else None
        )
        pieces = chunk_source(
            text.encode("utf-8", "replace"), rel, module=module, resolver=self.resolver
        )
        with workspace.lock:
            for coll in workspace.collections.values():
                coll.index.remove_file(rel)
            self._add_pieces(workspace, pieces, refit=False)
            try:
                st = Path(path).stat()
                workspace.files[rel] = (st.st_mtime_ns, st.st_size)
            except OSError:
                workspace.files.pop(rel, None)
            if save:
                self._save_workspace(workspace)
        return len(pieces)

    def remove_file(self, path: Path, *, save: bool = True) -> int:
        """Drop a deleted file of the workspace from its index; returns rows removed."""
        found = self._workspace_rel(Path(path))
        if found is None:
            return 0
        workspace, rel = found
        with workspace.lock:
            removed = sum(coll.index.remove_file(rel) for coll in workspace.collections.values())
            workspace.files.pop(rel, None)
            for coll in workspace.collections.values():
                coll.label_counts = Counter(c.label for c in coll.index.chunks)
            if save and removed:
                self._save_workspace(workspace)
        return removed

    def workspace_status(self) -> dict[str, Any]:
        workspace = self._workspace
        if workspace is None:
            return {"state": "none"}
        return {
            "state": "ready",
            "root": str(workspace.root),
            "files": len(workspace.files),
            **{name: len(c.index) for name, c in workspace.collections.items()},
        }


def _triggered(triggers: Sequence[str], imported: Iterable[str]) -> bool:
    for qualified in imported:
        for trigger in triggers:
            if qualified == trigger or qualified.startswith(trigger + "."):
                return True
    return False
