"""The registry's HTTP API: a FastAPI app built by :func:`create_app` around a Registry.

Handlers are thin: they authenticate the bearer token, call
:class:`~remora_lsp.registry.service.Registry` and turn its
:class:`~remora_lsp.registry.errors.RegistryHTTPError` into ``{"error": {"code", "message"}}``
with the matching status. Storage calls block, so they run in the thread pool (sync handlers,
sync streaming iterators); only the upload body is read on the event loop, written chunk by
chunk to a spool file while it is hashed and counted against the size cap. The OpenAPI schema
is served at ``/openapi.json`` and browsable at ``/docs``.

(No ``from __future__ import annotations`` here: FastAPI reads the handlers' annotations at
run time, and ``Request`` is imported inside :func:`create_app` to keep ``remora --help`` fast.)
"""

import hashlib
import logging
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remora_lsp.registry.errors import RegistryHTTPError
from remora_lsp.registry.service import (
    PUBLIC,
    Principal,
    Registry,
    check_name,
    check_namespace,
    check_version,
)
from remora_lsp.registry.storage import Storage

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["DEFAULT_MAX_UPLOAD", "create_app", "serve"]

DEFAULT_MAX_UPLOAD = 2 * 1024**3
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Any:
    from fastapi.responses import JSONResponse

    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=a-b`` range as inclusive offsets; None if unsatisfiable or unsupported."""
    match = _RANGE_RE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # suffix: the last N bytes
        n = int(last)
        return (max(size - n, 0), size - 1) if n > 0 and size > 0 else None
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    return (start, end) if start <= end else None


def create_app(
    storage: Storage,
    *,
    publish_token: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
    spool_dir: Path | None = None,
) -> "FastAPI":
    """Build the registry's ASGI app over ``storage``."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response, StreamingResponse

    from remora_lsp import __version__

    registry = Registry(storage, admin_token=publish_token)
    app = FastAPI(
        title="Remora pack registry",
        version=__version__,
        description=(
            "Publish, discover and download signed Remora Language Packs (.remorapack). "
            "Send tokens as `Authorization: Bearer <token>`. Errors are "
            '`{"error": {"code": ..., "message": ...}}`.'
        ),
    )
    publish_locks: dict[str, threading.Lock] = {}
    locks_guard = threading.Lock()

    @app.exception_handler(RegistryHTTPError)
    async def _registry_error(request: Request, exc: RegistryHTTPError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        response: Response = _error(exc.status, exc.code, str(exc), headers)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # A storage or programming failure: logged here, one generic line to the client.
        logging.getLogger("remora.registry").exception(
            "%s %s failed", request.method, request.url.path
        )
        response: Response = _error(500, "internal", f"internal error ({type(exc).__name__})")
        return response

    def who(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if header and scheme.lower() != "bearer":
            raise RegistryHTTPError(401, "bad_auth", "use Authorization: Bearer <token>")
        return registry.principal(secret.strip() or None)

    def readable(request: Request, name: str) -> str:
        check_name(name)
        namespace = registry.namespace_of(name)
        if namespace is None:
            raise RegistryHTTPError(404, "no_such_pack", f"no pack named {name}")
        registry.require_read(who(request), namespace, f"pack {name}")
        return namespace

    @app.get("/v1/health", tags=["meta"], summary="Liveness check")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/v1/packs", tags=["packs"], summary="List or search packs")
    def list_packs(request: Request, q: str = "") -> dict[str, Any]:
        """Packs the caller may read (public ones, plus private ones its token covers) whose
        name, description, library or import triggers contain ``q``."""
        return {"packs": registry.search(who(request), q)}

    @app.get("/v1/packs/{name}", tags=["packs"], summary="Versions of a pack")
    def pack_versions(request: Request, name: str) -> dict[str, Any]:
        """Every version with its metadata: manifest summary, size, sha256, signer key id and
        yanked flag (oldest first)."""
        namespace = readable(request, name)
        return {"name": name, "namespace": namespace, "versions": registry.versions(name)}

    @app.get("/v1/packs/{name}/{version}", tags=["packs"], summary="One version's metadata")
    def version_meta(request: Request, name: str, version: str) -> dict[str, Any]:
        readable(request, name)
        return registry.version(name, version)

    @app.get(
        "/v1/packs/{name}/{version}/download",
        tags=["packs"],
        summary="Download the .remorapack",
        responses={
            200: {"content": {"application/octet-stream": {}}},
            206: {"description": "The requested byte range"},
            304: {"description": "Not modified (If-None-Match)"},
            416: {"description": "Range not satisfiable"},
        },
    )
    def download(request: Request, name: str, version: str) -> Response:
        """Streams the archive. ``ETag`` is the quoted sha256; a single ``Range: bytes=a-b``
        is honoured (``206``), guarded by ``If-Range`` when given."""
        readable(request, name)
        meta = registry.version(name, version)
        key = registry.blob_key(meta)
        size = int(meta["size"])
        etag = f'"{meta["sha256"]}"'
        headers = {
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'attachment; filename="{name}-{version}.remorapack"',
            "Cache-Control": "public, max-age=31536000, immutable",
        }
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        start, end, status = 0, size - 1, 200
        wanted = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if wanted and (if_range is None or if_range == etag):
            parsed = _parse_range(wanted, size)
            if parsed is None:
                headers["Content-Range"] = f"bytes */{size}"
                return _error(416, "bad_range", f"range {wanted!r} not satisfiable", headers)
            start, end, status = parsed[0], parsed[1], 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)
        body = storage.open_range(key, start, end) if size else iter(())
        return StreamingResponse(
            body, status_code=status, media_type="application/octet-stream", headers=headers
        )

    async def receive_upload(request: Request) -> tuple[Path, str]:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_upload_bytes:
            raise RegistryHTTPError(
                413,
                "too_large",
                f"upload of {declared} bytes exceeds the cap of {max_upload_bytes}",
            )
        fd, raw_path = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=spool_dir)
        path = Path(raw_path)
        digest = hashlib.sha256()
        total = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in request.stream():
                    total += len(chunk)
                    if total > max_upload_bytes:
                        raise RegistryHTTPError(
                            413, "too_large", f"upload exceeds the cap of {max_upload_bytes} bytes"
                        )
                    digest.update(chunk)
                    fh.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if total == 0:
            path.unlink(missing_ok=True)
            raise RegistryHTTPError(422, "empty_upload", "the request body is empty")
        return path, digest.hexdigest()

    def publish_checked(
        name: str, version: str, namespace: str, upload: Path, sha256: str
    ) -> Response:
        with locks_guard:
            lock = publish_locks.setdefault(f"{name}@{version}", threading.Lock())
        with lock:
            outcome = registry.publish(name, version, namespace, upload, sha256)
        status = 201 if outcome.action == "created" else 200
        return JSONResponse({"action": outcome.action, **outcome.metadata}, status_code=status)

    async def do_publish(
        request: Request, name: str | None, version: str | None, namespace: str | None
    ) -> Response:
        from starlette.concurrency import run_in_threadpool

        principal = await run_in_threadpool(who, request)
        if name is not None:
            check_name(name)
        if version is not None:
            check_version(version)
        if namespace is not None:
            check_namespace(namespace)
        if not principal.authenticated:
            raise RegistryHTTPError(401, "token_required", "publishing needs a publish token")

        async def target_namespace(name: str) -> str:
            current = await run_in_threadpool(registry.namespace_of, name)
            if current is not None and namespace is not None and namespace != current:
                raise RegistryHTTPError(
                    409, "namespace_conflict", f"pack {name} belongs to namespace {current!r}"
                )
            target = current or namespace or PUBLIC
            registry.require_publish(principal, target)
            return target

        # Refuse what can be refused before a byte of the body is read.
        if name is not None:
            await target_namespace(name)
        elif principal.token is None or principal.token.scope != "publish":
            registry.require_publish(principal, namespace or PUBLIC)
        upload, sha256 = await receive_upload(request)
        try:
            if name is None or version is None:
                name, version = await run_in_threadpool(_peek_key, upload)
            assert name is not None and version is not None
            target = await target_namespace(name)
            response: Response = await run_in_threadpool(
                publish_checked, name, version, target, upload, sha256
            )
            return response
        finally:
            upload.unlink(missing_ok=True)

    upload_body = {
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        "responses": {
            "201": {"description": "Published"},
            "200": {"description": "Already published with identical bytes"},
            "401": {"description": "No or unknown token"},
            "403": {"description": "Token may not publish to this namespace"},
            "409": {"description": "Version exists with other bytes / namespace conflict"},
            "413": {"description": "Upload over the size cap"},
            "422": {"description": "Not a valid pack, or name/version mismatch"},
        },
    }

    @app.put(
        "/v1/packs/{name}/{version}",
        tags=["publish"],
        summary="Publish a version (raw .remorapack body)",
        openapi_extra=upload_body,
    )
    async def publish_put(
        request: Request, name: str, version: str, namespace: str | None = None
    ) -> Response:
        """The body is the archive, streamed. ``namespace`` (default ``public``) is fixed by the
        first publication of a name."""
        return await do_publish(request, name, version, namespace)

    @app.post(
        "/v1/packs",
        tags=["publish"],
        summary="Publish (name and version read from the manifest)",
        openapi_extra=upload_body,
    )
    async def publish_post(request: Request, namespace: str | None = None) -> Response:
        return await do_publish(request, None, None, namespace)

    def yank(request: Request, name: str, version: str, yanked: bool) -> dict[str, Any]:
        check_name(name)
        check_version(version)
        principal = who(request)
        namespace = registry.namespace_of(name)
        if namespace is None:
            raise RegistryHTTPError(404, "no_such_pack", f"no pack named {name}")
        registry.require_publish(principal, namespace)
        return registry.set_yanked(name, version, yanked)

    @app.post("/v1/packs/{name}/{version}/yank", tags=["publish"], summary="Yank a version")
    def yank_version(request: Request, name: str, version: str) -> dict[str, Any]:
        """A yanked version stays downloadable (pinned installs keep working) but range
        resolution skips it."""
        return yank(request, name, version, True)

    @app.delete("/v1/packs/{name}/{version}/yank", tags=["publish"], summary="Unyank a version")
    def unyank_version(request: Request, name: str, version: str) -> dict[str, Any]:
        return yank(request, name, version, False)

    return app


def _peek_key(upload: Path) -> tuple[str, str]:
    from remora_lsp.errors import PackError
    from remora_lsp.packs.archive import PackArchive

    try:
        with PackArchive(upload, label="upload") as archive:
            return archive.manifest.name, archive.manifest.version
    except PackError as exc:
        raise RegistryHTTPError(422, "invalid_pack", str(exc)) from exc


def serve(
    storage: Storage,
    host: str,
    port: int,
    *,
    publish_token: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
    log_level: str = "info",
) -> None:
    """Run the registry with uvicorn until interrupted."""
    import uvicorn

    app = create_app(storage, publish_token=publish_token, max_upload_bytes=max_upload_bytes)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
