"""SemanticService as the server holds it: packs loaded through the PackListener protocol,
hover and search over them, the workspace index, and bad packs reported as a status without
failing — all on real (small) indexes and the real default model."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from remora_lsp.retrieval.build import SEARCH, USAGES
from remora_lsp.retrieval.index import VECTORS_FILE, ChunkFilter
from remora_lsp.retrieval.service import SemanticService, SemanticSettings, load_settings
from tests.retrieval.helpers import document, make_pack

BLOCK = {
    "model": "sentence-transformers/all-MiniLM-L6-v2",
    "dims": 384,
    "chunks": 1,
    "files": ["embeddings/search/index.json"],
}


@pytest.fixture
def service(tmp_path: Path, minilm) -> SemanticService:  # type: ignore[no-untyped-def]
    return SemanticService(remora_home=tmp_path / "home", embedders={"default": minilm})


def copy_pack(
    fastapi_pack: Path, tmp_path: Path, block: dict | None = BLOCK, name: str = "fastapi"
):  # type: ignore[no-untyped-def]
    folder = tmp_path / name
    shutil.copytree(fastapi_pack / "embeddings", folder / "embeddings")
    return make_pack(folder, name, ["fastapi"], block)


HANDLER = """
from fastapi import FastAPI
app = FastAPI()

@app.post("/items")
async def create(raw_request):
    data = await raw_request.json()
    return {"headers": dict(‸raw_request.headers), "data": data}
"""


def test_pack_loaded_hover_search_unload(
    service: SemanticService, fastapi_pack: Path, tmp_path: Path
) -> None:
    pack = copy_pack(fastapi_pack, tmp_path)
    assert service.pack_loaded(pack) is None
    status = service.status_fields("fastapi")["index"]
    assert status["state"] == "ready" and status["chunks"] == status[SEARCH] + status[USAGES] > 0
    assert service.status_fields("other") == {}
    doc, offset = document(HANDLER)
    result = service.hover(doc, offset, ["fastapi"])
    assert result is not None and result.type == "starlette.requests.Request"
    assert result.evidence and result.evidence[0].pack == "fastapi"
    edits = service.type_hint_edit(doc, result)
    assert [e.text for e in edits] == ["from fastapi import Request\n", ": Request"]
    hits = service.search("include a router in the application", k=5)
    assert hits and all(h.index == "fastapi" for h in hits)
    assert any("include_router" in h.chunk.label for h in hits)
    assert hits == sorted(hits, key=lambda h: -h.score)
    only_classes = service.search("application", ChunkFilter(kinds=frozenset({"class"})), k=5)
    assert only_classes and {h.chunk.kind for h in only_classes} == {"class"}
    assert service.search("x", ChunkFilter(packs=frozenset({"nope"}))) == []
    # a file that does not import fastapi does not consult the fastapi pack
    plain, off = document("def f(raw_request):\n    return ‸raw_request.headers\n")
    other = service.hover(plain, off, ["fastapi"])
    assert other is None or "." not in other.type
    service.pack_unloaded("fastapi")
    assert service.status_fields("fastapi") == {} and service.search("router") == []


def test_pack_without_index(service: SemanticService, tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    assert service.pack_loaded(make_pack(folder, "bare", ["bare"], None)) is None
    assert service.status_fields("bare") == {"index": {"state": "none"}}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate", "truncated"),
        ("manifest-dims", "says 512 dims"),
        ("manifest-model", "embedded with 'google/embeddinggemma-300m'"),
        ("missing-folder", "missing"),
        ("lexical-mismatch", "rebuild"),
    ],
)
def test_bad_pack_index_is_a_status_not_a_failure(
    service: SemanticService, fastapi_pack: Path, tmp_path: Path, damage: str, message: str
) -> None:
    block = dict(BLOCK)
    if damage == "manifest-dims":
        block["dims"] = 512
    if damage == "manifest-model":
        block["model"] = "google/embeddinggemma-300m"
    pack = copy_pack(fastapi_pack, tmp_path, block)
    emb = pack.path / "embeddings"
    if damage == "truncate":
        data = (emb / SEARCH / VECTORS_FILE).read_bytes()
        (emb / SEARCH / VECTORS_FILE).write_bytes(data[: len(data) // 2])
    elif damage == "missing-folder":
        shutil.rmtree(emb)
    elif damage == "lexical-mismatch":
        idf = emb / USAGES / "model" / "idf.json"
        table = json.loads(idf.read_text())
        table["extra-token"] = 1.0
        idf.write_text(json.dumps(table))
    note = service.pack_loaded(pack)
    assert note is not None and note.startswith("index unavailable") and message in note
    status = service.status_fields("fastapi")["index"]
    assert status["state"] == "error" and message in status["reason"]
    doc, offset = document(HANDLER)
    assert service.hover(doc, offset, ["fastapi"]) is None  # no index: nothing to say
    assert service.search("router") == []


def test_model_not_available_is_reported(
    service: SemanticService, fastapi_pack: Path, tmp_path: Path
) -> None:
    pack = copy_pack(fastapi_pack, tmp_path, None)
    meta_path = pack.path / "embeddings" / SEARCH / "index.json"
    meta = json.loads(meta_path.read_text())
    meta["model"] = "google/embeddinggemma-300m"
    meta_path.write_text(json.dumps(meta))
    note = service.pack_loaded(pack)
    assert note is not None and "semantic.models" in note


def test_settings_validation() -> None:
    settings, problems = load_settings(
        {"threshold": 0.9, "rerank": 0, "models": {"google/embeddinggemma-300m": "/m"}, "nope": 1}
    )
    assert settings.threshold == 0.9 and settings.rerank == SemanticSettings().rerank
    assert settings.models == {"google/embeddinggemma-300m": "/m"}
    assert any("rerank" in p for p in problems) and any("nope" in p for p in problems)


PROJECT = {
    "app/__init__.py": "",
    "app/models.py": ("class Account:\n    email: str\n    def deactivate(self) -> None: ...\n"),
    "app/services.py": (
        "from app.models import Account\n\n"
        "def notify(account: Account) -> None:\n"
        "    send(account.email)\n    account.deactivate()\n\n"
        "def close(account: Account) -> None:\n"
        "    account.deactivate()\n    log(account.email)\n"
    ),
    "README.md": "# Project\n\nAccounts can be deactivated and notified by email.\n",
}


def write_project(root: Path) -> None:
    for rel, text in PROJECT.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_workspace_index_learns_from_the_project(
    service: SemanticService, tmp_path: Path, minilm
) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "project"
    write_project(root)
    seen: list[tuple[int, int]] = []
    stats = service.index_workspace(root, progress=lambda d, t: seen.append((d, t)))
    assert stats["files"] == 4 and stats["chunks"] > 0
    assert seen[-1][0] == seen[-1][1] > 4  # files chunked, then chunks embedded
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    folder = service.workspace_folder(root)
    assert (folder / SEARCH / "index.json").is_file() and (folder / USAGES / "index.json").is_file()
    uri = (root / "app" / "jobs.py").as_uri()
    doc, offset = document(
        "from app.models import Account\n\ndef expire(acct):\n    acct.deactivate()\n    mail(‸acct.email)\n",  # noqa: E501
        uri=uri,
    )
    result = service.hover(doc, offset, [])
    assert result is not None and result.type == "app.models.Account"
    assert result.evidence[0].file == "app/services.py"
    hits = service.search("deactivate an account", k=3)
    assert hits and hits[0].index == "workspace"
    # an unchanged re-index does nothing; a save re-indexes one file; a delete drops it
    assert service.index_workspace(root)["changed"] == 0
    (root / "app" / "services.py").write_text("def nothing():\n    pass\n")
    assert (
        service.update_file(
            root / "app" / "services.py", (root / "app" / "services.py").read_text()
        )
        >= 1
    )
    assert (
        service.hover(doc, offset, []) is None
        or service.hover(doc, offset, []).type != "app.models.Account"
    )  # type: ignore[union-attr]
    assert service.remove_file(root / "README.md") >= 1
    assert all(h.chunk.file != "README.md" for h in service.search("email", k=20))
    # a new service reopens what was saved
    again = SemanticService(remora_home=service.remora_home, embedders={"default": minilm})
    again.open_workspace(root)
    assert again.workspace_status()["files"] == 3
    assert all(h.chunk.file != "README.md" for h in again.search("email", k=20))


def test_concurrent_hovers_and_updates(
    service: SemanticService, fastapi_pack: Path, tmp_path: Path
) -> None:
    service.pack_loaded(copy_pack(fastapi_pack, tmp_path))
    root = tmp_path / "project"
    write_project(root)
    service.index_workspace(root)
    doc, offset = document(HANDLER)
    errors: list[BaseException] = []

    def hover_loop() -> None:
        try:
            for _ in range(20):
                result = service.hover(doc, offset, ["fastapi"])
                assert result is not None and result.type == "starlette.requests.Request"
        except BaseException as exc:
            errors.append(exc)

    def update_loop() -> None:
        try:
            for i in range(5):
                service.update_file(
                    root / "app" / "services.py",
                    PROJECT["app/services.py"] + f"\n# {i}\n",
                    save=False,
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hover_loop) for _ in range(3)] + [
        threading.Thread(target=update_loop)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


def test_built_index_passes_the_pack_payload_rules(fastapi_pack: Path) -> None:
    """Every file an index build writes may travel inside a signed pack (no pickle, no .npy,
    sane safetensors headers)."""
    from remora_lsp.packs.content import PayloadCheck, check_member_path

    files = sorted(p for p in (fastapi_pack / "embeddings").rglob("*") if p.is_file())
    assert {p.suffix for p in files} == {".json", ".jsonl", ".safetensors"}
    for path in files:
        rel = path.relative_to(fastapi_pack).as_posix()
        check_member_path(rel)
        check = PayloadCheck(rel)
        data = path.read_bytes()
        check.feed(data)
        check.finish(len(data))
