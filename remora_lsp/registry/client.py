"""The registry client: which registries to ask, resolving ``pack:NAME@RANGE``, downloading
with resume and retries, publishing, and installing through the normal install path.

Registries come from ``--registry``/``--token``, else from ``REMORA_REGISTRY`` /
``REMORA_REGISTRY_TOKEN`` followed by the ``registries:`` list of ``$REMORA_HOME/config.yaml``
(entries with a token — private registries — first, so a private pack shadows a public one of
the same name). The first registry that has a matching version wins.

A download goes to ``$REMORA_HOME/cache/registry/<name>-<version>-<sha>.part``; an interrupted
download resumes there with ``Range`` + ``If-Range``, transient failures (connection errors,
cut streams, 429/5xx) are retried with exponential backoff, and the finished file's sha256 must
equal the registry's before :func:`~remora_lsp.packs.install.install_pack_result` verifies the
signature against the user's trust store and every digest, exactly as for a local file.
Tokens travel only in the ``Authorization`` header; they are never printed or logged.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from remora_lsp.config import Config, load_config_file
from remora_lsp.errors import ConfigError
from remora_lsp.packs.archive import SILENT_PROGRESS, Progress
from remora_lsp.packs.manifest import NAME_RE
from remora_lsp.registry.errors import RegistryError, RegistryHTTPError, RegistryUnreachable
from remora_lsp.registry.versions import VersionRange, newest_match, parse_range

if TYPE_CHECKING:
    import httpx

    from remora_lsp.packs.install import InstallResult

__all__ = [
    "PackSpec",
    "RegistryClient",
    "RegistryRef",
    "install_from_registries",
    "parse_pack_spec",
    "resolve_registries",
    "update_from_registries",
]

_TRANSIENT_STATUS = {429, 500, 502, 503, 504}
_CHUNK = 256 * 1024


# ---------------------------------------------------------------------------------------------
# Which registries


class _RegistryEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(pattern=r"^https?://\S+$", max_length=2000)
    token: str | None = Field(default=None, max_length=1000)
    name: str | None = Field(default=None, max_length=100)


class _RegistrySettings(BaseModel):
    """The ``registries:`` key of config.yaml (other keys belong to other packages)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    registries: tuple[_RegistryEntry, ...] = ()


@dataclass(frozen=True)
class RegistryRef:
    """One registry to ask; ``token`` never appears in ``repr``."""

    url: str
    token: str | None = field(default=None, repr=False)
    name: str | None = None

    @property
    def label(self) -> str:
        """How messages name it."""
        return f"{self.name} ({self.url})" if self.name else self.url


def _config_registries(home: Path) -> list[RegistryRef]:
    path = home / "config.yaml"
    data = load_config_file(path)
    try:
        settings = _RegistrySettings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: `{where}` is invalid ({first['msg']})") from None
    refs = [RegistryRef(e.url.rstrip("/"), e.token, e.name) for e in settings.registries]
    return sorted(refs, key=lambda r: r.token is None)  # private (with a token) first


def resolve_registries(
    config: Config,
    url: str | None = None,
    token: str | None = None,
    environ: dict[str, str] | None = None,
) -> list[RegistryRef]:
    """The registries to ask, in order (see the module docstring)."""
    env = dict(os.environ) if environ is None else environ
    from_file = _config_registries(config.remora_home)
    env_url = env.get("REMORA_REGISTRY", "").strip().rstrip("/")
    env_token = env.get("REMORA_REGISTRY_TOKEN", "").strip() or None
    if url:
        url = url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise RegistryError(f"registry URL {url!r} must start with http:// or https://")
        known = next((r for r in from_file if r.url == url), None)
        chosen = token or (known.token if known else None)
        if chosen is None and (not env_url or env_url == url):
            chosen = env_token
        return [RegistryRef(url, chosen, known.name if known else None)]
    refs: list[RegistryRef] = []
    if env_url:
        refs.append(RegistryRef(env_url, token or env_token, "REMORA_REGISTRY"))
    refs += [r for r in from_file if r.url != env_url]
    if not refs:
        raise RegistryError(
            "no registry configured: pass --registry URL, set REMORA_REGISTRY, or list "
            "`registries:` in $REMORA_HOME/config.yaml"
        )
    return refs


# ---------------------------------------------------------------------------------------------
# pack:NAME@RANGE


@dataclass(frozen=True)
class PackSpec:
    """A parsed ``pack:NAME[@RANGE]``."""

    name: str
    range: VersionRange


def parse_pack_spec(spec: str) -> PackSpec:
    """Parse ``pack:NAME[@RANGE]`` (the ``pack:`` prefix is optional here)."""
    body = spec.removeprefix("pack:")
    name, _, wanted = body.partition("@")
    if not NAME_RE.match(name):
        raise RegistryError(f"{name!r} is not a pack name (a-z, 0-9, '_' or '-', at most 64)")
    return PackSpec(name, parse_range(wanted))


# ---------------------------------------------------------------------------------------------
# HTTP


def _backoff(attempt: int, base: float) -> float:
    return float(min(base * (2**attempt), 8.0))


class RegistryClient:
    """One registry over HTTP (httpx, synchronous). Use as a context manager."""

    def __init__(
        self,
        ref: RegistryRef,
        *,
        attempts: int = 4,
        backoff: float = 0.25,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        self.ref = ref
        self.attempts = max(1, attempts)
        self.backoff = backoff
        headers = {"User-Agent": "remora-registry-client"}
        if ref.token:
            headers["Authorization"] = f"Bearer {ref.token}"
        self._http = httpx.Client(
            base_url=ref.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _fail(self, response: httpx.Response) -> RegistryHTTPError:
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
        except Exception:
            code, message = "http_error", response.reason_phrase or "error"
        hint = {
            401: "; pass a token with --token or REMORA_REGISTRY_TOKEN",
            413: "; the registry's upload cap is lower than this pack",
        }.get(response.status_code, "")
        return RegistryHTTPError(
            response.status_code,
            code,
            f"{self.ref.label} answered {response.status_code}: {message}{hint}",
        )

    def _unreachable(self, exc: Exception) -> RegistryUnreachable:
        return RegistryUnreachable(
            f"cannot reach the registry {self.ref.label} ({type(exc).__name__}); "
            "installed packs keep working offline"
        )

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        last: Exception | None = None
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(_backoff(attempt - 1, self.backoff))
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                last = exc
                continue
            if response.status_code in _TRANSIENT_STATUS and attempt + 1 < self.attempts:
                continue
            if response.status_code >= 400:
                raise self._fail(response)
            return response
        assert last is not None
        raise self._unreachable(last)

    # -- API -----------------------------------------------------------------------------------

    def search(self, text: str = "") -> list[dict[str, Any]]:
        """Packs matching ``text`` that this registry lets us see."""
        packs: list[dict[str, Any]] = self._request("GET", "/v1/packs", params={"q": text}).json()[
            "packs"
        ]
        return packs

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version's metadata (oldest first)."""
        data: list[dict[str, Any]] = self._request("GET", f"/v1/packs/{name}").json()["versions"]
        return data

    def publish(self, archive: Path, namespace: str | None = None) -> tuple[int, dict[str, Any]]:
        """Upload an archive (streamed); return the status (201 new, 200 same bytes) and data."""
        from remora_lsp.packs.archive import PackArchive

        with PackArchive(archive) as pack:
            name, version = pack.manifest.name, pack.manifest.version
        params = {"namespace": namespace} if namespace else {}
        size = archive.stat().st_size

        def body() -> Iterator[bytes]:
            with archive.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    yield chunk

        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        response = self._request(
            "PUT", f"/v1/packs/{name}/{version}", params=params, content=body(), headers=headers
        )
        data: dict[str, Any] = response.json()
        return response.status_code, data

    def set_yanked(self, name: str, version: str, yanked: bool) -> dict[str, Any]:
        """Yank or unyank a version (needs a publish token)."""
        method = "POST" if yanked else "DELETE"
        data: dict[str, Any] = self._request(method, f"/v1/packs/{name}/{version}/yank").json()
        return data

    def download(self, meta: dict[str, Any], dest: Path, progress: Progress) -> Path:
        """Download a version into ``dest`` (a ``.part`` file), resuming what is already there.

        Returns ``dest`` once its size and sha256 equal the registry's metadata.
        """
        import httpx

        name, version = meta["name"], meta["version"]
        size, sha256 = int(meta["size"]), str(meta["sha256"])
        etag = f'"{sha256}"'
        url = f"/v1/packs/{name}/{version}/download"
        dest.parent.mkdir(parents=True, exist_ok=True)
        have = dest.stat().st_size if dest.exists() else 0
        if have > size:
            dest.unlink()
            have = 0
        progress.begin(f"downloading {name}@{version}", size)
        progress.advance(have)
        last: Exception | None = None
        attempt = 0
        while have < size:
            if attempt >= self.attempts:
                assert last is not None
                progress.end()
                if isinstance(last, RegistryHTTPError):
                    raise last
                raise self._unreachable(last)
            if attempt:
                time.sleep(_backoff(attempt - 1, self.backoff))
            attempt += 1
            headers = {"Range": f"bytes={have}-", "If-Range": etag} if have else {}
            try:
                with self._http.stream("GET", url, headers=headers) as response:
                    if response.status_code in _TRANSIENT_STATUS:
                        last = self._fail(response)
                        continue
                    if response.status_code >= 400:
                        raise self._fail(response)
                    restart = response.status_code != 206
                    if restart and have:
                        progress.advance(-have)
                        have = 0
                    with dest.open("wb" if restart else "ab") as fh:
                        for (
                            chunk
                        ) in response.iter_bytes():  # no re-chunking: keep every byte on a cut
                            fh.write(chunk)
                            have += len(chunk)
                            progress.advance(len(chunk))
                            attempt = 0 if len(chunk) else attempt  # progress resets the budget
            except httpx.TransportError as exc:
                last = exc
                have = dest.stat().st_size if dest.exists() else 0
                continue
        progress.end()
        digest = hashlib.sha256()
        with dest.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != sha256 or dest.stat().st_size != size:
            dest.unlink()
            raise RegistryError(
                f"download of {name}@{version} from {self.ref.label} does not match the "
                "registry's sha256; try again"
            )
        return dest


# ---------------------------------------------------------------------------------------------
# Resolve, download, install


@dataclass(frozen=True)
class Resolved:
    """Which registry has which version of a pack."""

    ref: RegistryRef
    meta: dict[str, Any]
    yanked: bool


ClientFactory = Callable[[RegistryRef], RegistryClient]


def _resolve(spec: PackSpec, registries: list[RegistryRef], make: ClientFactory) -> Resolved:
    unreachable: list[RegistryUnreachable] = []
    seen: list[str] = []
    for ref in registries:
        with make(ref) as client:
            try:
                versions = client.versions(spec.name)
            except RegistryUnreachable as exc:
                unreachable.append(exc)
                continue
            except RegistryHTTPError as exc:
                if exc.status == 404:
                    continue
                raise
        pairs = [(m["version"], bool(m.get("yanked"))) for m in versions]
        chosen, yanked = newest_match(pairs, spec.range)
        if chosen is None:
            seen += [v for v, y in pairs if not y]
            continue
        meta = next(m for m in versions if m["version"] == chosen)
        return Resolved(ref, meta, yanked)
    if unreachable and not seen:
        if len(unreachable) == 1:
            raise unreachable[0]
        raise RegistryUnreachable(
            f"cannot reach any of {len(unreachable)} registries; installed packs keep working"
        )
    if seen:
        raise RegistryError(
            f"no version of {spec.name} matches {spec.range} "
            f"(available: {', '.join(sorted(set(seen))[-8:])})"
        )
    raise RegistryError(f"no registry has a pack named {spec.name}")


def _cache_dir(config: Config) -> Path:
    return config.remora_home / "cache" / "registry"


def install_from_registries(
    spec: PackSpec,
    registries: list[RegistryRef],
    config: Config,
    *,
    allow_unsigned: bool = False,
    progress: Progress = SILENT_PROGRESS,
    make_client: ClientFactory | None = None,
) -> tuple[InstallResult, Resolved]:
    """Resolve ``spec``, download it (resuming) and install it with the normal install path."""
    from remora_lsp.packs.install import install_pack_result

    make = make_client or RegistryClient
    resolved = _resolve(spec, registries, make)
    meta = resolved.meta
    part = _cache_dir(config) / f"{meta['name']}-{meta['version']}-{meta['sha256'][:16]}.part"
    with make(resolved.ref) as client:
        client.download(meta, part, progress)
    try:
        result = install_pack_result(part, config, allow_unsigned, progress=progress)
    finally:
        with suppress(FileNotFoundError):
            part.unlink()
    return result, resolved


def update_from_registries(
    names: list[str] | None,
    registries: list[RegistryRef],
    config: Config,
    *,
    allow_major: bool = False,
    allow_unsigned: bool = False,
    progress: Progress = SILENT_PROGRESS,
    make_client: ClientFactory | None = None,
) -> list[tuple[str, str, str | None]]:
    """Install newer versions of installed packs; return ``(name, old, new or None)`` each.

    By default an update stays within the active version's major (``^active``).
    """
    from remora_lsp.packs.store import active_versions, semver_key

    active = active_versions(config.packs_dir)
    wanted = names or sorted(active)
    out: list[tuple[str, str, str | None]] = []
    for name in wanted:
        if name not in active:
            raise RegistryError(f"pack {name} is not installed; use `remora install pack:{name}`")
        current = active[name].version
        major = int(current.split(".", 1)[0])
        bounds = ((">", current),) if allow_major else ((">", current), ("<", f"{major + 1}.0.0"))
        spec = PackSpec(name, VersionRange(f"newer than {current}", bounds))
        try:
            result, _ = install_from_registries(
                spec,
                registries,
                config,
                allow_unsigned=allow_unsigned,
                progress=progress,
                make_client=make_client,
            )
        except RegistryError as exc:
            if isinstance(exc, RegistryHTTPError | RegistryUnreachable):
                raise
            out.append((name, current, None))  # nothing newer
            continue
        new = result.pack.version
        out.append((name, current, new if semver_key(new) > semver_key(current) else None))
    return out
