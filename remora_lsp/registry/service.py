"""The registry's rules on top of a :class:`~remora_lsp.registry.storage.Storage`, without HTTP.

Storage layout (all keys relative to the storage root)::

    blobs/<sha256>.remorapack       pack archives, content-addressed (same key = same bytes)
    packs/<name>/_pack.json         {"namespace": ...}: created once, by the first publish
    packs/<name>/<version>.json     version metadata; its creation *is* the publication
    packs/<name>/<version>.yanked   present while that version is yanked
    tokens/<sha256(token)>.json     scope and namespaces of a token (never the token)

A publication is committed by one create-only write of ``<version>.json``, made only after the
blob it points to is completely stored, so a partial upload is never visible, concurrent
publishes of one version have exactly one winner, and a publication that was acknowledged
survives a restart (every write is durable before it is acknowledged).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from remora_lsp.errors import PackError
from remora_lsp.packs.manifest import NAME_RE, SEMVER_RE, Manifest
from remora_lsp.packs.store import semver_key
from remora_lsp.registry.errors import RegistryHTTPError
from remora_lsp.registry.storage import Storage

__all__ = [
    "PUBLIC",
    "Principal",
    "PublishOutcome",
    "Registry",
    "TokenRecord",
    "check_name",
    "check_namespace",
    "check_version",
    "create_token",
    "revoke_token",
]

PUBLIC = "public"
NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
TOKEN_PREFIX = "rmr_"
Scope = Literal["read", "publish"]


def _http(status: int, code: str, message: str) -> RegistryHTTPError:
    return RegistryHTTPError(status, code, message)


def check_name(name: str) -> str:
    """A pack name as the manifest allows it, else 422."""
    if not NAME_RE.match(name):
        raise _http(422, "invalid_name", f"{name[:80]!r} is not a pack name (a-z, 0-9, _ or -)")
    return name


def check_version(version: str) -> str:
    """A semantic version, else 422."""
    if not SEMVER_RE.match(version) or len(version) > 128:
        raise _http(
            422, "invalid_version", f"{version[:80]!r} is not a semantic version such as 1.2.3"
        )
    return version


def check_namespace(namespace: str) -> str:
    """A namespace name (same alphabet as pack names), else 422."""
    if not NAMESPACE_RE.match(namespace):
        raise _http(422, "invalid_namespace", f"{namespace[:80]!r} is not a namespace name")
    return namespace


# ---------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True)
class TokenRecord:
    """What a token may do: ``read`` or ``publish`` (which includes read) in some namespaces."""

    token_id: str
    scope: Scope
    namespaces: tuple[str, ...]  # ("*",) = every namespace
    label: str = ""
    created: float = 0.0

    def covers(self, namespace: str) -> bool:
        """True if this token applies to ``namespace``."""
        return "*" in self.namespaces or namespace in self.namespaces

    def to_data(self) -> dict[str, Any]:
        """JSON data as stored (and as ``token create --json`` prints it, minus the secret)."""
        return {
            "id": self.token_id,
            "scope": self.scope,
            "namespaces": list(self.namespaces),
            "label": self.label,
            "created": self.created,
        }


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(
    storage: Storage, scope: Scope, namespaces: Iterable[str], label: str = ""
) -> tuple[TokenRecord, str]:
    """Create a token; return its record and the secret (shown once, stored only hashed)."""
    spaces = tuple(sorted(set(namespaces))) or ("*",)
    for ns in spaces:
        if ns != "*":
            check_namespace(ns)
    if scope not in ("read", "publish"):
        raise _http(422, "invalid_scope", f"scope {scope!r} must be read or publish")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    digest = _token_hash(secret)
    record = TokenRecord(digest[:12], scope, spaces, label[:200], time.time())
    storage.put_bytes(f"tokens/{digest}.json", json.dumps(record.to_data()).encode())
    return record, secret


def revoke_token(storage: Storage, token_id: str) -> TokenRecord:
    """Delete the token whose id is ``token_id``; raise 404 if there is none."""
    if not re.fullmatch(r"[0-9a-f]{6,64}", token_id):
        raise _http(422, "invalid_token_id", f"{token_id[:80]!r} is not a token id")
    for key in storage.list(f"tokens/{token_id}"):
        record = _read_token(storage, key)
        storage.delete(key)
        if record is not None:
            return record
    raise _http(404, "no_such_token", f"no token with id {token_id}")


def _read_token(storage: Storage, key: str) -> TokenRecord | None:
    raw = storage.get_bytes(key)
    if raw is None:
        return None
    data = json.loads(raw)
    return TokenRecord(
        data["id"], data["scope"], tuple(data["namespaces"]), data.get("label", ""),
        float(data.get("created", 0.0)),
    )  # fmt: skip


def list_tokens(storage: Storage) -> list[TokenRecord]:
    """Every stored token record (never the secrets, which are not stored)."""
    out = [_read_token(storage, key) for key in storage.list("tokens/")]
    return [r for r in out if r is not None]


@dataclass(frozen=True)
class Principal:
    """Who is calling: anonymous, or the holder of a token (or of the server's publish token)."""

    token: TokenRecord | None = None

    @property
    def authenticated(self) -> bool:
        """True if a valid token came with the request."""
        return self.token is not None

    def can_read(self, namespace: str) -> bool:
        """Public namespaces are open to all; private ones need a token covering them."""
        return namespace == PUBLIC or (self.token is not None and self.token.covers(namespace))

    def can_publish(self, namespace: str) -> bool:
        """Publishing needs a publish token covering the namespace."""
        return (
            self.token is not None
            and self.token.scope == "publish"
            and self.token.covers(namespace)
        )


# ---------------------------------------------------------------------------------------------
# Packs


@dataclass(frozen=True)
class PublishOutcome:
    """``created`` (201) or ``unchanged`` (200: the same bytes were already published)."""

    action: Literal["created", "unchanged"]
    metadata: dict[str, Any]


def manifest_summary(manifest: Manifest) -> dict[str, Any]:
    """The manifest fields a catalogue shows; never file contents."""
    lib = manifest.library
    return {
        "description": manifest.description,
        "license": manifest.license,
        "library": lib.model_dump(mode="json") if lib else None,
        "triggers": manifest.triggers.model_dump(mode="json"),
        "adapters": [
            {"role": a.role, "base_model": a.base_model.id, "rank": a.rank}
            for a in manifest.adapters
        ],
        "embeddings": (
            {"model": manifest.embeddings.model, "dims": manifest.embeddings.dims}
            if manifest.embeddings
            else None
        ),
        "templates": list(manifest.templates),
        "tools": [t.name for t in manifest.tools],
        "files": len(manifest.files),
    }


@dataclass
class Registry:
    """Packs, versions and tokens in one storage; ``admin_token`` is the ``--publish-token``."""

    storage: Storage
    admin_token: str | None = None
    _token_cache: dict[str, tuple[float, TokenRecord | None]] = field(default_factory=dict)

    # -- auth ----------------------------------------------------------------------------------

    def principal(self, secret: str | None) -> Principal:
        """The caller a bearer token stands for; raise 401 for an unknown token."""
        if not secret:
            return Principal()
        if self.admin_token and hmac.compare_digest(secret.encode(), self.admin_token.encode()):
            return Principal(TokenRecord("admin", "publish", ("*",), "--publish-token"))
        digest = _token_hash(secret)
        now = time.monotonic()
        cached = self._token_cache.get(digest)
        if cached and now - cached[0] < 2.0:  # revocation takes effect within 2 s
            record = cached[1]
        else:
            record = _read_token(self.storage, f"tokens/{digest}.json")
            if len(self._token_cache) > 10_000:  # random bad tokens must not grow memory
                self._token_cache.clear()
            self._token_cache[digest] = (now, record)
        if record is None:
            raise _http(401, "invalid_token", "the token is not valid (revoked or mistyped)")
        return Principal(record)

    def require_read(self, who: Principal, namespace: str, what: str) -> None:
        """401 without a token, 403 with one that does not cover ``namespace``."""
        if who.can_read(namespace):
            return
        if not who.authenticated:
            raise _http(401, "token_required", f"{what} is private: a read token is needed")
        raise _http(403, "forbidden", f"this token cannot read namespace {namespace!r}")

    def require_publish(self, who: Principal, namespace: str) -> None:
        """401 without a token, 403 with one that may not publish to ``namespace``."""
        if who.can_publish(namespace):
            return
        if not who.authenticated:
            raise _http(401, "token_required", "publishing needs a publish token")
        raise _http(403, "forbidden", f"this token cannot publish to namespace {namespace!r}")

    # -- reading -------------------------------------------------------------------------------

    def namespace_of(self, name: str) -> str | None:
        """The namespace a pack belongs to, or None if it was never published."""
        raw = self.storage.get_bytes(f"packs/{check_name(name)}/_pack.json")
        return None if raw is None else str(json.loads(raw)["namespace"])

    def pack_names(self) -> list[str]:
        """Every published pack name."""
        names = {
            key.split("/")[1]
            for key in self.storage.list("packs/")
            if key.endswith("/_pack.json") and key.count("/") == 2
        }
        return sorted(names)

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Metadata of every published version, oldest first, with the ``yanked`` flag."""
        keys = self.storage.list(f"packs/{check_name(name)}/")
        yanked = {k.rsplit("/", 1)[1][: -len(".yanked")] for k in keys if k.endswith(".yanked")}
        out = []
        for key in keys:
            leaf = key.rsplit("/", 1)[1]
            if not leaf.endswith(".json") or leaf == "_pack.json":
                continue
            raw = self.storage.get_bytes(key)
            if raw is None:
                continue
            meta = json.loads(raw)
            meta["yanked"] = meta["version"] in yanked
            out.append(meta)
        return sorted(out, key=lambda m: semver_key(m["version"]))

    def version(self, name: str, version: str) -> dict[str, Any]:
        """One version's metadata; 404 if it is not published."""
        check_name(name)
        check_version(version)
        raw = self.storage.get_bytes(f"packs/{name}/{version}.json")
        if raw is None:
            raise _http(404, "no_such_version", f"{name}@{version} is not published")
        meta: dict[str, Any] = json.loads(raw)
        meta["yanked"] = self.storage.exists(f"packs/{name}/{version}.yanked")
        return meta

    def search(self, who: Principal, text: str = "") -> list[dict[str, Any]]:
        """Packs the caller may read whose name, description, library or triggers hold ``text``."""
        needle = text.strip().lower()
        out = []
        for name in self.pack_names():
            namespace = self.namespace_of(name) or PUBLIC
            if not who.can_read(namespace):
                continue
            versions = self.versions(name)
            live = [v for v in versions if not v["yanked"]] or versions
            if not live:
                continue
            latest = live[-1]
            summary = latest.get("manifest", {})
            haystack = " ".join(
                [
                    name,
                    summary.get("description", ""),
                    (summary.get("library") or {}).get("name", ""),
                    *summary.get("triggers", {}).get("python_imports", []),
                    *summary.get("triggers", {}).get("js_imports", []),
                ]
            ).lower()
            if needle and needle not in haystack:
                continue
            out.append(
                {
                    "name": name,
                    "namespace": namespace,
                    "latest": latest["version"],
                    "description": summary.get("description", ""),
                    "versions": len(versions),
                }
            )
        return out

    # -- writing -------------------------------------------------------------------------------

    def claim_namespace(self, name: str, namespace: str) -> str:
        """Record ``name``'s namespace at its first publication; 409 if it already has another."""
        record = json.dumps({"namespace": namespace}).encode()
        self.storage.put_bytes(f"packs/{name}/_pack.json", record, create_only=True)
        current = self.namespace_of(name)
        if current != namespace:
            raise _http(409, "namespace_conflict", f"pack {name} belongs to namespace {current!r}")
        return namespace

    def publish(
        self, name: str, version: str, namespace: str, upload: Path, sha256: str
    ) -> PublishOutcome:
        """Check the complete upload at ``upload`` and publish it as ``name@version``.

        The archive must pass the structural and digest checks of a ``.remorapack`` (its
        signature's trust is the installer's business: the registry has no trust store) and
        its manifest must name ``name@version``.
        """
        from remora_lsp.packs.archive import PackArchive

        check_name(name)
        check_version(version)
        try:
            with PackArchive(upload, label=f"upload of {name}@{version}") as archive:
                archive.verify_contents()
                manifest = archive.manifest
        except PackError as exc:
            raise _http(422, "invalid_pack", str(exc)) from exc
        if (manifest.name, manifest.version) != (name, version):
            raise _http(
                422,
                "name_mismatch",
                f"the archive holds {manifest.key}, not {name}@{version}",
            )
        existing = self._existing(name, version)
        if existing is not None:
            return self._same_or_conflict(existing, sha256)
        self.claim_namespace(name, namespace)
        size = upload.stat().st_size
        blob = f"blobs/{sha256}.remorapack"
        if self.storage.size(blob) != size:
            self.storage.put_file(blob, upload)
        meta = {
            "name": name,
            "version": version,
            "namespace": namespace,
            "sha256": sha256,
            "size": size,
            "signed": manifest.signature is not None,
            "key_id": manifest.signature.key_id if manifest.signature else None,
            "published": time.time(),
            "manifest": manifest_summary(manifest),
        }
        created = self.storage.put_bytes(
            f"packs/{name}/{version}.json", json.dumps(meta).encode(), create_only=True
        )
        if not created:  # another publisher won the race
            winner = self._existing(name, version)
            assert winner is not None
            return self._same_or_conflict(winner, sha256)
        meta["yanked"] = False
        return PublishOutcome("created", meta)

    def _existing(self, name: str, version: str) -> dict[str, Any] | None:
        try:
            return self.version(name, version)
        except RegistryHTTPError as exc:
            if exc.status == 404:
                return None
            raise

    @staticmethod
    def _same_or_conflict(existing: dict[str, Any], sha256: str) -> PublishOutcome:
        if existing["sha256"] == sha256:
            return PublishOutcome("unchanged", existing)
        raise _http(
            409,
            "version_exists",
            f"{existing['name']}@{existing['version']} is already published with other bytes; "
            "publish a new version",
        )

    def set_yanked(self, name: str, version: str, yanked: bool) -> dict[str, Any]:
        """Yank (hide from resolution, keep downloadable) or unyank a version."""
        self.version(name, version)  # 404 if absent
        marker = f"packs/{name}/{version}.yanked"
        if yanked:
            self.storage.put_bytes(marker, b"{}")
        else:
            self.storage.delete(marker)
        return self.version(name, version)

    def blob_key(self, meta: dict[str, Any]) -> str:
        """Where a version's archive is stored."""
        return f"blobs/{meta['sha256']}.remorapack"
