"""The HTTP API on loopback: auth (401/403), namespaces, conflicts (409), validation (422),
size caps (413), downloads with ETag and Range, the OpenAPI schema, and concurrency."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from remora_lsp.registry.service import create_token
from remora_lsp.registry.storage import LocalStorage

from .conftest import PUBLISH_TOKEN, Publisher, serve_registry

ADMIN = {"Authorization": f"Bearer {PUBLISH_TOKEN}"}


@pytest.fixture
def local(local_storage: LocalStorage) -> Iterator[tuple[str, LocalStorage]]:
    with serve_registry(
        local_storage, publish_token=PUBLISH_TOKEN, max_upload_bytes=200_000
    ) as url:
        yield url, local_storage


def put(
    url: str, path: Path, headers: dict[str, str] | None = None, **params: str
) -> httpx.Response:
    name, version = path.name.split("-")[:2]
    return httpx.put(
        f"{url}/v1/packs/{name}/{version}", content=path.read_bytes(), headers=headers or {},
        params=params,
    )  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def test_auth_and_namespaces(local: tuple[str, LocalStorage], publisher: Publisher) -> None:
    url, storage = local
    pack = publisher.pack("1.0.0", name="secret")
    assert put(url, pack).status_code == 401
    assert put(url, pack, {"Authorization": "Basic abc"}).status_code == 401
    assert put(url, pack, bearer("rmr_not-a-token")).status_code == 401
    _, reader = create_token(storage, "read", ["acme"])
    assert put(url, pack, bearer(reader), namespace="acme").status_code == 403
    _, other_ns = create_token(storage, "publish", ["other"])
    assert put(url, pack, bearer(other_ns), namespace="acme").status_code == 403
    _, acme = create_token(storage, "publish", ["acme"])
    created = put(url, pack, bearer(acme), namespace="acme")
    assert created.status_code == 201, created.text
    assert created.json()["namespace"] == "acme" and created.json()["signed"] is True

    # private: anonymous gets 401, a token for another namespace 403, the right one 200
    assert httpx.get(f"{url}/v1/packs/secret").status_code == 401
    assert httpx.get(f"{url}/v1/packs/secret", headers=bearer(other_ns)).status_code == 403
    listing = httpx.get(f"{url}/v1/packs/secret", headers=bearer(reader))
    assert listing.status_code == 200 and listing.json()["versions"][0]["version"] == "1.0.0"
    download = f"{url}/v1/packs/secret/1.0.0/download"
    assert httpx.get(download).status_code == 401
    assert httpx.get(download, headers=bearer(reader)).content == pack.read_bytes()
    # search hides private packs from those who cannot read them
    assert httpx.get(f"{url}/v1/packs").json()["packs"] == []
    names = [
        p["name"] for p in httpx.get(f"{url}/v1/packs", headers=bearer(reader)).json()["packs"]
    ]
    assert names == ["secret"]
    # the namespace is fixed by the first publication
    again = put(url, publisher.pack("1.1.0", name="secret"), ADMIN, namespace="public")
    assert again.status_code == 409 and error_code(again) == "namespace_conflict"
    # a read token cannot yank
    yank = f"{url}/v1/packs/secret/1.0.0/yank"
    assert httpx.post(yank, headers=bearer(reader)).status_code == 403
    assert httpx.post(yank, headers=bearer(acme)).json()["yanked"] is True
    assert httpx.delete(yank, headers=bearer(acme)).json()["yanked"] is False
    # tokens are stored hashed: the secret is nowhere in the storage
    keys = storage.list("tokens/")
    assert f"tokens/{hashlib.sha256(acme.encode()).hexdigest()}.json" in keys
    for key in keys:
        assert acme.encode() not in (storage.get_bytes(key) or b"") and acme not in key


def test_conflicts_validation_and_caps(
    local: tuple[str, LocalStorage], publisher: Publisher
) -> None:
    url, _ = local
    first = publisher.pack("1.0.0")
    assert put(url, first, ADMIN).status_code == 201
    assert put(url, first, ADMIN).status_code == 200  # byte-identical: fine
    different = publisher.pack("1.0.0", description="other bytes")
    conflict = put(url, different, ADMIN)
    assert conflict.status_code == 409 and error_code(conflict) == "version_exists"

    # the manifest must name the URL's pack and version
    mismatch = httpx.put(f"{url}/v1/packs/demo/9.9.9", content=first.read_bytes(), headers=ADMIN)
    assert mismatch.status_code == 422 and error_code(mismatch) == "name_mismatch"
    garbage = httpx.put(f"{url}/v1/packs/demo/3.0.0", content=b"not a zip", headers=ADMIN)
    assert garbage.status_code == 422 and error_code(garbage) == "invalid_pack"
    for bad in ("Demo/1.0.0", "de%2E%2E/1.0.0", "demo/1.0", "demo/..%2F..%2Fetc", "a b/1.0.0"):
        response = httpx.put(f"{url}/v1/packs/{bad}", content=b"x", headers=ADMIN)
        assert response.status_code in (404, 422), (bad, response.status_code)
    assert httpx.get(f"{url}/v1/packs/demo/1.0/download").status_code == 422
    assert httpx.get(f"{url}/v1/packs/nope").status_code == 404
    assert httpx.get(f"{url}/v1/packs/demo/7.7.7").status_code == 404

    # POST takes name and version from the manifest
    posted = httpx.post(
        f"{url}/v1/packs", content=publisher.pack("1.5.0").read_bytes(), headers=ADMIN
    )
    assert posted.status_code == 201 and posted.json()["version"] == "1.5.0"

    # size cap: declared length and streamed (chunked) bodies
    big = b"x" * 300_000
    declared = httpx.put(f"{url}/v1/packs/demo/4.0.0", content=big, headers=ADMIN)
    assert declared.status_code == 413 and error_code(declared) == "too_large"

    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b"y" * 10_000

    streamed = httpx.put(f"{url}/v1/packs/demo/4.0.0", content=chunks(), headers=ADMIN)
    assert streamed.status_code == 413
    assert [v["version"] for v in httpx.get(f"{url}/v1/packs/demo").json()["versions"]] == [
        "1.0.0",
        "1.5.0",
    ]


def test_download_etag_range(local: tuple[str, LocalStorage], publisher: Publisher) -> None:
    url, _ = local
    pack = publisher.pack("1.0.0")
    data = pack.read_bytes()
    meta = put(url, pack, ADMIN).json()
    assert meta["sha256"] == hashlib.sha256(data).hexdigest() and meta["size"] == len(data)
    assert meta["manifest"]["library"]["name"] == "fastapi" and meta["key_id"]
    link = f"{url}/v1/packs/demo/1.0.0/download"
    full = httpx.get(link)
    assert full.status_code == 200 and full.content == data
    etag = full.headers["etag"]
    assert etag == f'"{meta["sha256"]}"' and full.headers["accept-ranges"] == "bytes"
    part = httpx.get(link, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert httpx.get(link, headers={"Range": "bytes=100-"}).content == data[100:]
    assert httpx.get(link, headers={"Range": "bytes=-5"}).content == data[-5:]
    bad = httpx.get(link, headers={"Range": f"bytes={len(data) + 5}-"})
    assert bad.status_code == 416
    stale = httpx.get(link, headers={"Range": "bytes=10-", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == data
    assert httpx.get(link, headers={"If-None-Match": etag}).status_code == 304


def test_openapi_schema(local: tuple[str, LocalStorage]) -> None:
    url, _ = local
    schema = httpx.get(f"{url}/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/v1/packs",
        "/v1/packs/{name}",
        "/v1/packs/{name}/{version}",
        "/v1/packs/{name}/{version}/download",
        "/v1/packs/{name}/{version}/yank",
    ):
        assert path in paths
    assert "put" in paths["/v1/packs/{name}/{version}"]
    assert "413" in paths["/v1/packs/{name}/{version}"]["put"]["responses"]
    assert httpx.get(f"{url}/v1/health").json()["status"] == "ok"


def test_parallel_publishes_one_winner(storage, publisher: Publisher) -> None:  # type: ignore[no-untyped-def]
    with serve_registry(storage, publish_token=PUBLISH_TOKEN) as url:
        variants = [publisher.pack("1.0.0", description=f"variant {i}") for i in range(8)]
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda p: put(url, p, ADMIN).status_code, variants))
        assert sorted(statuses) == [201] + [409] * 7
        same = publisher.pack("2.0.0")
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: put(url, same, ADMIN).status_code, range(8)))
        assert sorted(statuses) == [200] * 7 + [201]
        versions = httpx.get(f"{url}/v1/packs/demo").json()["versions"]
        assert [v["version"] for v in versions] == ["1.0.0", "2.0.0"]
        # the winner's metadata and bytes agree
        blob = httpx.get(f"{url}/v1/packs/demo/1.0.0/download").content
        assert hashlib.sha256(blob).hexdigest() == versions[0]["sha256"]


def test_fifty_parallel_downloads_identical(storage, publisher: Publisher) -> None:  # type: ignore[no-untyped-def]
    with serve_registry(storage, publish_token=PUBLISH_TOKEN) as url:
        pack = publisher.pack("1.0.0")
        assert put(url, pack, ADMIN).status_code == 201
        want = pack.read_bytes()
        link = f"{url}/v1/packs/demo/1.0.0/download"
        with (
            httpx.Client(limits=httpx.Limits(max_connections=60)) as client,
            ThreadPoolExecutor(50) as pool,
        ):
            results = list(pool.map(lambda _: client.get(link), range(50)))
        assert all(r.status_code == 200 for r in results)
        assert {r.content for r in results} == {want}


class BrokenStorage(LocalStorage):
    def list(self, prefix: str) -> list[str]:
        raise RuntimeError("disk on fire")


def test_storage_failure_is_a_json_500(tmp_path: Path) -> None:
    with serve_registry(BrokenStorage(tmp_path / "broken")) as url:
        response = httpx.get(f"{url}/v1/packs")
    assert response.status_code == 500
    assert response.json()["error"] == {
        "code": "internal",
        "message": "internal error (RuntimeError)",
    }
