"""The lexical channel: TF-IDF over identifier sub-tokens, as dense hashed vectors.

Usage windows are mostly identifiers (``request.headers``, ``Depends``, ``raw_request``), and
for type inference a sparse TF-IDF over their sub-tokens beats a small sentence model
(docs/semantic.md has the numbers). :class:`LexicalEmbedder` keeps that behaviour but emits
dense vectors so the same two-stage index serves it: every token gets a fixed pseudo-random
Gaussian direction derived from a hash of the token (no stored projection matrix), a text is
the sum of its tokens' directions weighted by ``(1 + log tf) · idf``, normalised — a random
projection of the TF-IDF vector, whose inner products approximate TF-IDF cosine similarity.
Only the IDF table is learned (:meth:`LexicalEmbedder.fit`) and saved, so a model is a few
hundred kB. Tokens the table does not know are skipped: they could match nothing anyway.

Tokens (:func:`usage_tokens`): on a rendered usage window's feature lines (``attrs headers
url``) each value gives ``key:value`` and ``key~subtoken`` tokens; in the code part every
identifier gives its sub-tokens (``raw_request`` → ``raw``, ``request``; ``APIRouter`` →
``api``, ``router``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from remora_lsp.retrieval.embedding import MODEL_CARD, l2_normalize, read_model_card
from remora_lsp.retrieval.errors import ModelUnavailableError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["IDF_FILE", "TOKENIZER", "LexicalEmbedder", "split_identifier", "usage_tokens"]

IDF_FILE = "idf.json"
TOKENIZER = "remora-usage-1"
MAX_VOCABULARY = 100_000

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PARTS = re.compile(r"[_\W]+")


def split_identifier(name: str) -> list[str]:
    """Lower-case sub-tokens: ``raw_request`` → raw, request; ``HTTPConnection`` → http,
    connection."""
    out: list[str] = []
    for part in _PARTS.split(name):
        out.extend(m.lower() for m in _CAMEL.findall(part))
    return out


def usage_tokens(text: str) -> list[str]:
    """Tokens of a rendered usage window (or any code text: then only the code rule runs)."""
    out: list[str] = []
    lines = text.split("\n")
    in_code = "code" not in lines
    for line in lines:
        if not in_code:
            if line == "code":
                in_code = True
                continue
            key, _, rest = line.partition(" ")
            for value in rest.split():
                out.append(f"{key}:{value.lower()}")
                out.extend(f"{key}~{sub}" for sub in split_identifier(value))
        else:
            for ident in _IDENT.findall(line):
                out.extend(split_identifier(ident))
    return out


class LexicalEmbedder:
    """Hashed TF-IDF vectors (see the module docstring). Thread-safe."""

    def __init__(self, idf: dict[str, float], *, dims: int = 384, name: str = "") -> None:
        self.idf = dict(idf)
        self._dims = dims
        self.name = name
        digest = hashlib.sha256(
            json.dumps(sorted(self.idf.items()), separators=(",", ":")).encode()
        ).hexdigest()[:12]
        self._model_id = f"remora-lexical-{dims}-{name + '-' if name else ''}{digest}"
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    # -- identity ------------------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dims(self) -> int:
        return self._dims

    @property
    def mrl_dims(self) -> tuple[int, ...]:
        return (self._dims,)

    # -- fitting and persistence ---------------------------------------------------------------

    @classmethod
    def fit(cls, texts: Iterable[str], *, dims: int = 384, name: str = "") -> LexicalEmbedder:
        """Learn the IDF table from ``texts`` (smoothed: ``ln((1 + N) / (1 + df)) + 1``)."""
        df: Counter[str] = Counter()
        n = 0
        for text in texts:
            n += 1
            df.update(set(usage_tokens(text)))
        common = df.most_common(MAX_VOCABULARY)
        idf = {tok: round(math.log((1 + n) / (1 + c)) + 1.0, 4) for tok, c in common}
        return cls(idf, dims=dims, name=name)

    def save(self, folder: Path) -> None:
        """Write ``remora_embedding.json`` and ``idf.json`` into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / IDF_FILE).write_text(
            json.dumps(self.idf, ensure_ascii=False, separators=(",", ":"), sort_keys=True),
            encoding="utf-8",
        )
        card = {
            "kind": "lexical",
            "model_id": self.model_id,
            "dims": self.dims,
            "mrl_dims": [self.dims],
            "tokenizer": TOKENIZER,
            "name": self.name,
        }
        (folder / MODEL_CARD).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalEmbedder:
        """Read a folder written by :meth:`save`."""
        card = read_model_card(folder)
        if card.get("kind") != "lexical":
            raise ModelUnavailableError(f"{folder}: not a lexical model folder")
        if card.get("tokenizer") != TOKENIZER:
            raise ModelUnavailableError(
                f"{folder}: tokenizer {card.get('tokenizer')!r} is not {TOKENIZER!r}; rebuild it"
            )
        try:
            idf = json.loads((folder / IDF_FILE).read_text(encoding="utf-8"))
            dims = int(card["dims"])
        except (OSError, ValueError, KeyError) as exc:
            raise ModelUnavailableError(f"{folder}: unreadable lexical model ({exc})") from exc
        if not isinstance(idf, dict):
            raise ModelUnavailableError(f"{folder / IDF_FILE}: not a token → weight table")
        name = str(card.get("name", ""))
        model = cls({str(k): float(v) for k, v in idf.items()}, dims=dims, name=name)
        if card.get("model_id") and card["model_id"] != model.model_id:
            # the id carries a digest of the table: a mismatch means the files were edited
            raise ModelUnavailableError(
                f"{folder}: idf.json does not match the model id in {MODEL_CARD}; rebuild it"
            )
        return model

    # -- embedding -----------------------------------------------------------------------------

    def _direction(self, token: str) -> np.ndarray:
        import numpy as np

        vector = self._cache.get(token)
        if vector is None:
            seed = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
            vector = np.random.default_rng(seed).standard_normal(self._dims).astype(np.float32)
            with self._lock:
                if len(self._cache) < 2 * MAX_VOCABULARY:
                    self._cache[token] = vector
        return vector

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(texts), self._dims), np.float32)
        for i, text in enumerate(texts):
            for token, count in Counter(usage_tokens(text)).items():
                weight = self.idf.get(token)
                if weight is not None:
                    out[i] += (1.0 + math.log(count)) * weight * self._direction(token)
        return l2_normalize(out)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_documents(texts)
